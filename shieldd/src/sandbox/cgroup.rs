//! The agent's own cgroup: limits, freeze and kill of the whole tree.
//!
//! The v2 hierarchy is required (cgroup.kill, cgroup.freeze, and the eBPF
//! programs attach to it). Controllers the v2 hierarchy lacks (`pids`,
//! `memory` on hybrid hosts) are taken from v1 hierarchies. Everything is
//! found through /proc/self/mountinfo and /proc/self/cgroup.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::policy::Limits;

/// Errors creating or driving a cgroup; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup2 mount.
    #[error("no cgroup v2 hierarchy is mounted (none in /proc/self/mountinfo); mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified` or boot with systemd's unified hierarchy")]
    NoV2,
    /// A controller the policy's limits need is in no hierarchy.
    #[error("the `{0}` cgroup controller is not available (neither in cgroup v2 nor as a v1 hierarchy), so `limits.{0}` cannot be enforced; enable the controller, remove the limit, or pass --allow-degraded=cgroup-limits")]
    NoController(&'static str),
    /// A session with this id is running: its cgroup has processes.
    #[error("session {session} is running already (its cgroup {} has processes); choose another --session, or end that one first (`shieldd kill {session}` through the daemon)", .path.display())]
    InUse {
        /// The session id.
        session: String,
        /// Its cgroup directory.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("cgroup {what} {path}: {source}{hint}")]
    Io {
        /// Operation.
        what: &'static str,
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: io::Error,
        /// Advice.
        hint: &'static str,
    },
}

fn io_err(what: &'static str, path: &Path, source: io::Error) -> CgroupError {
    let hint = if source.kind() == io::ErrorKind::PermissionDenied {
        " (shieldd needs root to manage cgroups)"
    } else {
        ""
    };
    CgroupError::Io {
        what,
        path: path.to_path_buf(),
        source,
        hint,
    }
}

/// Where the cgroup hierarchies are mounted and where this process sits in them.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// cgroup2 mount point.
    pub v2: Option<PathBuf>,
    /// v1 controller name -> (mount point, this process's path in it).
    pub v1: BTreeMap<String, (PathBuf, PathBuf)>,
}

/// The layout [`Layout::discover_cached`] found, what it was worked out
/// from, and the open mount table that tells when it may be stale.
struct Discovered {
    mounts: fs::File,
    own: String,
    layout: Layout,
}

static DISCOVERED: std::sync::Mutex<Option<Discovered>> = std::sync::Mutex::new(None);

/// Times [`Layout::discover_cached`] read the mount table (for tests).
static MOUNT_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Layout {
    /// Read /proc/self/mountinfo and /proc/self/cgroup.
    pub fn discover() -> Result<Layout, CgroupError> {
        let mi = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| io_err("read", Path::new("/proc/self/mountinfo"), e))?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| io_err("read", Path::new("/proc/self/cgroup"), e))?;
        Ok(Layout::parse(&mi, &own))
    }

    /// [`Layout::discover`], reusing the mount table read last while the
    /// kernel reports no mount or unmount since (a descriptor kept open on
    /// /proc/self/mountinfo polls POLLPRI once the table changes); this
    /// process's /proc/self/cgroup is read every time. The daemon asks for
    /// every session, and formatting and parsing the mount table was a tenth
    /// of a millisecond each time.
    pub fn discover_cached() -> Result<Layout, CgroupError> {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| io_err("read", Path::new("/proc/self/cgroup"), e))?;
        let mut guard = DISCOVERED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = guard.as_ref() {
            let mut pfd = libc::pollfd {
                fd: d.mounts.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: poll on one pollfd we own, without waiting.
            let n = unsafe { libc::poll(&mut pfd, 1, 0) };
            if n == 0 && d.own == own {
                return Ok(d.layout.clone());
            }
        }
        // Opened before it is read: a change in between is reported by
        // the next poll (one extra read), never missed.
        let path = Path::new("/proc/self/mountinfo");
        let mut mounts = fs::File::open(path).map_err(|e| io_err("open", path, e))?;
        let mut mi = String::new();
        mounts
            .read_to_string(&mut mi)
            .map_err(|e| io_err("read", path, e))?;
        MOUNT_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let layout = Layout::parse(&mi, &own);
        *guard = Some(Discovered {
            mounts,
            own,
            layout: layout.clone(),
        });
        Ok(layout)
    }

    /// Parse the two files (separate for tests).
    pub fn parse(mountinfo: &str, self_cgroup: &str) -> Layout {
        let mut own_v1: BTreeMap<String, String> = BTreeMap::new();
        for line in self_cgroup.lines() {
            let mut it = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            for c in ctrls.split(',').filter(|c| !c.is_empty()) {
                own_v1.insert(c.to_string(), path.to_string());
            }
        }
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            // Fields: id parent major:minor root mount-point options ... - fstype source super-options
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let (Some(root), Some(mnt), Some(fstype)) = (pre.get(3), pre.get(4), post.first())
            else {
                continue;
            };
            let mnt = PathBuf::from(unescape_mountinfo(mnt));
            match *fstype {
                "cgroup2" if layout.v2.is_none() => layout.v2 = Some(mnt),
                "cgroup" => {
                    let opts = post.get(2).copied().unwrap_or("");
                    for c in opts.split(',') {
                        if matches!(c, "pids" | "memory" | "freezer") {
                            let own = own_v1.get(c).map(String::as_str).unwrap_or("/");
                            // Inside a cgroup namespace the mount's root is
                            // not "/": our path is relative to it.
                            let rel = own.strip_prefix(*root).unwrap_or(own);
                            layout.v1.insert(
                                c.to_string(),
                                (mnt.clone(), PathBuf::from(rel.trim_start_matches('/'))),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// Whether the v2 hierarchy offers `controller`.
    fn v2_has(&self, controller: &str) -> bool {
        let Some(v2) = &self.v2 else { return false };
        fs::read_to_string(v2.join("cgroup.controllers"))
            .map(|s| s.split_whitespace().any(|c| c == controller))
            .unwrap_or(false)
    }
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup directories of one session.
#[derive(Debug)]
pub struct SessionCgroup {
    /// The v2 directory (kill, freeze, eBPF attach point).
    pub v2_dir: PathBuf,
    /// v1 directories holding limits the v2 hierarchy cannot.
    pub v1_dirs: Vec<PathBuf>,
    /// Limits that could not be applied (only with --allow-degraded=cgroup-limits).
    pub missing_limits: Vec<&'static str>,
    removed: bool,
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|e| io_err("write", path, e))
}

fn mkdir(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err("create", path, e)),
    }
}

/// Create a session's cgroup directory, which must not exist; a leftover
/// of a dead session is removed first (rmdir succeeds only on a cgroup
/// without processes or children), a live one is [`CgroupError::InUse`].
fn claim_dir(dir: &Path, session: &str) -> Result<(), CgroupError> {
    for _ in 0..3 {
        match fs::create_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs::remove_dir(dir) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "removed the empty cgroup of an earlier session");
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(CgroupError::InUse {
                        session: session.to_string(),
                        path: dir.to_path_buf(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove the leftover", dir, e)),
            },
            Err(e) => return Err(io_err("create", dir, e)),
        }
    }
    Err(CgroupError::InUse {
        session: session.to_string(),
        path: dir.to_path_buf(),
    })
}

/// Whether the session `id` has a cgroup with processes in it (a running
/// session of this host, standalone or the daemon's).
pub fn session_running(id: &str) -> bool {
    let Ok(layout) = Layout::discover() else {
        return false;
    };
    let Some(v2) = layout.v2 else { return false };
    fs::read_to_string(v2.join("shieldd").join(id).join("cgroup.events"))
        .map(|s| s.lines().any(|l| l.trim() == "populated 1"))
        .unwrap_or(false)
}

impl SessionCgroup {
    /// Create `shieldd/<session>` in each hierarchy the limits need and apply them.
    ///
    /// v2: under the mount root, because a v2 cgroup that holds processes
    /// (ours, on systemd hosts) cannot delegate controllers to children.
    /// v1: under this process's own cgroup, so limits set on us still bound the agent.
    pub fn create(
        layout: &Layout,
        session: &str,
        limits: &Limits,
        allow_missing_limits: bool,
    ) -> Result<SessionCgroup, CgroupError> {
        let v2 = layout.v2.as_ref().ok_or(CgroupError::NoV2)?;
        let parent = v2.join("shieldd");
        mkdir(&parent)?;
        // The session's own directory must be new: one left by a session
        // that died (its watchdog could not remove it) is taken over only
        // once it is empty, and a running session's is never shared (its
        // cleanup would kill both).
        let v2_dir = parent.join(session);
        claim_dir(&v2_dir, session)?;
        let mut cg = SessionCgroup {
            v2_dir,
            v1_dirs: Vec::new(),
            missing_limits: Vec::new(),
            removed: false,
        };
        let wanted: Vec<(&'static str, u64)> = [("pids", limits.pids), ("memory", limits.memory)]
            .into_iter()
            .filter_map(|(c, v)| v.map(|v| (c, v)))
            .collect();
        // Controllers must be enabled on every ancestor's subtree_control.
        let mut v2_ctrls = Vec::new();
        for (c, _) in &wanted {
            if layout.v2_has(c) {
                v2_ctrls.push(*c);
            }
        }
        if !v2_ctrls.is_empty() {
            let spec: String = v2_ctrls.iter().map(|c| format!("+{c} ")).collect();
            write(&v2.join("cgroup.subtree_control"), spec.trim_end())?;
            write(&parent.join("cgroup.subtree_control"), spec.trim_end())?;
        }
        for (c, value) in wanted {
            if v2_ctrls.contains(&c) {
                let file = if c == "pids" {
                    "pids.max"
                } else {
                    "memory.max"
                };
                write(&cg.v2_dir.join(file), &value.to_string())?;
                if c == "memory" {
                    // Without this the limit is escaped by swapping.
                    let swap = cg.v2_dir.join("memory.swap.max");
                    if swap.exists() {
                        write(&swap, "0")?;
                    }
                }
            } else if let Some((mnt, own)) = layout.v1.get(c) {
                let dir = mnt.join(own).join("shieldd").join(session);
                if let Some(p) = dir.parent() {
                    mkdir(p)?;
                }
                claim_dir(&dir, session)?;
                cg.v1_dirs.push(dir.clone());
                if c == "pids" {
                    write(&dir.join("pids.max"), &value.to_string())?;
                } else {
                    write(&dir.join("memory.limit_in_bytes"), &value.to_string())?;
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &value.to_string())?;
                    }
                }
            } else if allow_missing_limits {
                cg.missing_limits.push(c);
            } else {
                let _ = cg.remove();
                return Err(CgroupError::NoController(c));
            }
        }
        Ok(cg)
    }

    /// Every directory, v2 first.
    pub fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.v2_dir).chain(self.v1_dirs.iter())
    }

    /// Move `pid` into every hierarchy of the session; `skip_v2` when it
    /// was born in the v2 directory already.
    pub fn add(&self, pid: i32, skip_v2: bool) -> Result<(), CgroupError> {
        for d in self.dirs().skip(usize::from(skip_v2)) {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Move `pid` into the v2 directory on a thread of its own (the v1
    /// ones are entered by the child itself, see
    /// [`SessionCgroup::open_v1_tasks`]); nothing to do when it was born
    /// there (`born_in_v2`). A move by pid takes the global threadgroup
    /// lock for writing (an RCU grace period), so a gated child is placed
    /// while the caller prepares the rest. [`Placement::wait`] must
    /// succeed before the child is released.
    pub fn add_in_background(&self, pid: i32, born_in_v2: bool) -> Placement {
        if born_in_v2 {
            return Placement(None);
        }
        let dir = self.v2_dir.clone();
        let placed = move || write(&dir.join("cgroup.procs"), &pid.to_string());
        match std::thread::Builder::new()
            .name("cgroup-place".into())
            .spawn(placed.clone())
        {
            Ok(h) => Placement(Some(PlacementState::Thread(h))),
            // No thread: place it now.
            Err(_) => Placement(Some(PlacementState::Done(placed()))),
        }
    }

    /// The `tasks` file of each v1 directory, open for writing, for
    /// [`crate::sandbox::launch::ChildSpec::cgroup_tasks`]: a
    /// single-threaded child that writes `0` there moves itself without
    /// the global threadgroup lock that writing its pid to `cgroup.procs`
    /// takes for writing (and the RCU grace period that costs).
    pub fn open_v1_tasks(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        self.v1_dirs
            .iter()
            .map(|d| {
                let p = d.join("tasks");
                fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map(OwnedFd::from)
                    .map_err(|e| io_err("open", &p, e))
            })
            .collect()
    }

    /// An fd of the v2 directory, for clone3's CLONE_INTO_CGROUP.
    pub fn open_dir(&self) -> Result<OwnedFd, CgroupError> {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&self.v2_dir)
            .map(OwnedFd::from)
            .map_err(|e| io_err("open", &self.v2_dir, e))
    }

    /// Open `cgroup.kill` now so a watchdog can kill the tree later without
    /// allocating or resolving paths.
    pub fn open_kill_file(&self) -> Result<OwnedFd, CgroupError> {
        let p = self.v2_dir.join("cgroup.kill");
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .map(OwnedFd::from)
            .map_err(|e| io_err("open", &p, e))
    }

    /// The pids in the session.
    pub fn procs(&self) -> Vec<i32> {
        fs::read_to_string(self.v2_dir.join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kill every process of the session at once.
    pub fn kill(&self) -> Result<(), CgroupError> {
        let kill = self.v2_dir.join("cgroup.kill");
        if kill.exists() {
            return write(&kill, "1");
        }
        // Before Linux 5.14: freeze so nothing forks while we walk the list.
        let _ = self.set_frozen(true);
        for _ in 0..100 {
            let procs = self.procs();
            if procs.is_empty() {
                break;
            }
            for p in procs {
                // SAFETY: kill(2) with a pid read from our own cgroup; no memory is touched.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        Ok(())
    }

    /// Freeze (true) or thaw (false) the tree.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        write(
            &self.v2_dir.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )
    }

    /// Whether the tree is frozen, as the kernel reports it.
    pub fn is_frozen(&self) -> bool {
        fs::read_to_string(self.v2_dir.join("cgroup.events"))
            .map(|s| s.lines().any(|l| l.trim() == "frozen 1"))
            .unwrap_or(false)
    }

    /// Whether the tree has a process, as `cgroup.events` says (None when
    /// it cannot be read).
    fn populated(&self) -> Option<bool> {
        fs::read_to_string(self.v2_dir.join("cgroup.events"))
            .ok()
            .map(|s| s.lines().any(|l| l.trim() == "populated 1"))
    }

    /// Wait until no process is left, up to `timeout`.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.populated().unwrap_or(false) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kill what is left and remove the directories.
    pub fn remove(&mut self) -> Result<(), CgroupError> {
        if self.removed {
            return Ok(());
        }
        // Already empty (the usual end: the agent exited and left nothing):
        // no kill to write. An empty cgroup gains no task by itself: only a
        // fork inside it (there is no one left) or a move by root.
        if self.populated() != Some(false) {
            let _ = self.kill();
            self.wait_empty(Duration::from_secs(5));
        }
        let mut first_err = None;
        for d in self.dirs() {
            if let Err(e) = fs::remove_dir(d) {
                if e.kind() != io::ErrorKind::NotFound && first_err.is_none() {
                    first_err = Some(io_err("remove", d, e));
                }
            }
        }
        self.removed = true;
        first_err.map_or(Ok(()), Err)
    }
}

/// A placement started by [`SessionCgroup::add_in_background`]. Dropping
/// it waits for the thread, so a child is never moved after its session
/// gave up on it.
#[derive(Debug)]
pub struct Placement(Option<PlacementState>);

#[derive(Debug)]
enum PlacementState {
    Thread(std::thread::JoinHandle<Result<(), CgroupError>>),
    Done(Result<(), CgroupError>),
}

impl Placement {
    /// Wait until the child is in every hierarchy of the session.
    pub fn wait(mut self) -> Result<(), CgroupError> {
        match self.0.take() {
            None => Ok(()),
            Some(PlacementState::Done(r)) => r,
            Some(PlacementState::Thread(h)) => h.join().unwrap_or_else(|_| {
                Err(io_err(
                    "place the agent in",
                    Path::new("cgroup.procs"),
                    io::Error::other("the placing thread panicked"),
                ))
            }),
        }
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        if let Some(PlacementState::Thread(h)) = self.0.take() {
            let _ = h.join();
        }
    }
}

impl Drop for SessionCgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached layout is the one read afresh; it is reused while no
    /// mount changes, and read again after a mount and after the unmount.
    #[test]
    fn cached_layout_is_read_again_after_a_mount() {
        use std::os::unix::ffi::OsStrExt;
        use std::sync::atomic::Ordering::Relaxed;
        const NAME: &str = "cached_layout_is_read_again_after_a_mount";
        if !crate::testing::root_or_skip(NAME) {
            return;
        }
        let fresh = Layout::discover().unwrap();
        let cached = Layout::discover_cached().unwrap();
        assert_eq!((&cached.v2, &cached.v1), (&fresh.v2, &fresh.v1));
        let reads = MOUNT_READS.load(Relaxed);
        let again = Layout::discover_cached().unwrap();
        assert_eq!((&again.v2, &again.v1), (&fresh.v2, &fresh.v1));
        assert_eq!(MOUNT_READS.load(Relaxed), reads, "no mount since: reused");
        let dir = std::env::temp_dir().join(format!("shieldd-cg-mnt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"none".as_ptr(),
                c.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", io::Error::last_os_error());
        let _ = Layout::discover_cached().unwrap();
        let after_mount = MOUNT_READS.load(Relaxed);
        // SAFETY: umount2 of the mount made above.
        let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        assert_eq!(rc, 0);
        let _ = fs::remove_dir(&dir);
        assert!(after_mount > reads, "a mount makes it read again");
        let _ = Layout::discover_cached().unwrap();
        assert!(
            MOUNT_READS.load(Relaxed) > after_mount,
            "so does the unmount"
        );
    }

    #[test]
    fn hybrid_layout() {
        let mi = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let own = "8:pids:/\n4:memory:/process_api/abc\n0::/\n";
        let l = Layout::parse(mi, own);
        assert_eq!(l.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(
            l.v1.get("memory"),
            Some(&(
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("process_api/abc")
            ))
        );
        assert_eq!(l.v1.get("pids").map(|x| x.1.clone()), Some(PathBuf::new()));
    }

    #[test]
    fn unified_layout_and_escapes() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = Layout::parse(mi, "0::/user.slice/x.scope\n");
        assert_eq!(l.v2.as_deref(), Some(Path::new("/sys/fs/cgroup")));
        assert!(l.v1.is_empty());
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/a\\"), "/a\\");
    }
}
