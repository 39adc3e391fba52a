//! eBPF monitor (issue 3): watches the agent's process tree in the kernel,
//! enforces exec / file / network rules there, and delivers every event
//! through a ring buffer.
//!
//! The kernel programs are C with CO-RE in `shieldd-ebpf/`, built by
//! `build.rs` and embedded here. Hooks used: tp_btf `sched_process_fork /
//! exec / exit` (tree tracking, exec allowlist with in-kernel SIGKILL),
//! the raw `sys_enter/sys_exit` tracepoints (tp_btf, no tracefs needed) for
//! `open/openat/openat2/creat` (deny paths), and
//! cgroup `connect4/6`, `sendmsg4/6`, `bind4/6`, `sock_create` on the
//! agent's cgroup v2 directory (network allowlist, EPERM). No BPF LSM or
//! fentry is needed, so kernels that refuse trampolines still work.
//!
//! Kernel needs: BTF, tp_btf, ring buffers (5.8) and `bpf_loop` (5.17);
//! root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN). Limits, by design:
//! - exec is checked on the file the kernel maps (`bprm->file`, resolved
//!   from its dentry): the ELF, the loader when run directly, a memfd, or the
//!   interpreter of a `#!` script (the script itself is not checked).
//! - a violating exec or open is killed (SIGKILL before the task returns to
//!   user space), not refused: refusing needs BPF LSM. Landlock (issue 2)
//!   is what makes a denied open fail.
//! - packet sockets are not seen by cgroup/sock_create: a tracked process
//!   that gets one from socket(2) is killed as the call returns (while the
//!   syscall hooks are attached; shieldd's seccomp baseline refuses them
//!   first in any case).
//! - the raw syscall hooks are attached only while needed (some live
//!   session records open events or has deny paths): attached, they cost
//!   every system call on the host a program run and the kernel's slow
//!   syscall path.
//! - paths are cut at 255 bytes (flagged `truncated`; a truncated exec path
//!   is never allowed).
//!
//! One load serves many sessions: each has a slot, the value of its pids
//! and cgroup in the tracking maps (a fork inherits its parent's), and every
//! rule map is keyed by slot, so sessions with different policies share the
//! programs. Every event carries its slot ([`EventMeta::slot`]).
//!
//! Load cost: the path walks are global BPF functions with their state in
//! map memory, so the verifier checks each once per program (about 5,500
//! instructions for all twelve programs, from 160,000), and programs are
//! loaded on parallel threads. [`Monitor::load_lazy`] (one-session
//! launcher) loads the syscall hooks and the cgroup programs only when
//! first needed. Lost records are counted per slot
//! ([`Monitor::lost_events_in`]). The loader never parses the whole kernel
//! BTF (5 MB, 150,000 types): `btf_trim` maps it and keeps only the
//! types the object's CO-RE relocations and tracepoints read (the whole
//! BTF is the fallback), and aya's constructor, which would parse it all
//! anyway, runs where the file reads as empty (`bare_loader`).
//!
//! Typical use: [`Monitor::load`] once; per session [`Monitor::add_session`]
//! (slot from [`Monitor::free_slot`], the agent's cgroup, its rules),
//! [`Monitor::track_pid_in`] the gated child before it execs, and
//! [`Monitor::remove_session`] when it ends; consume
//! [`Monitor::next_event`] (or [`Monitor::take_event_stream`] to read from
//! another task). The single-session methods ([`Monitor::attach_cgroup`],
//! [`Monitor::track_pid`], [`Monitor::set_connect_rules`], ...) act on slot
//! [`DEFAULT_SLOT`].

mod btf_trim;
mod events;
mod policy_rules;
pub mod pump;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::tp_btf::BtfTracePointLinkId;
use aya::programs::{BtfTracePoint, CgroupAttachMode, CgroupSock, CgroupSockAddr, ProgramError};
use aya::{Btf, Ebpf, EbpfLoader};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub use events::{Event, EventKind, EventMeta, NetOp, MAX_SLOTS};
pub use policy_rules::MonitorRules;
pub use rules::{expand_globs, ConnectRule, PathRule, Protocol};

use aya::programs::cgroup_sock::CgroupSockLinkId;
use aya::programs::cgroup_sock_addr::CgroupSockAddrLinkId;
use events::{BindKey, NetData, NetKeyData, PathData, PathKeyData, RawConfig};

/// The slot the single-session methods act on.
pub const DEFAULT_SLOT: u32 = 0;

/// A session registered with [`Monitor::add_session`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionSlot(u32);

impl SessionSlot {
    /// The handle of a slot given to [`Monitor::add_session`].
    pub fn from_raw(slot: u32) -> SessionSlot {
        SessionSlot(slot)
    }

    /// The slot number (what [`EventMeta::slot`] carries).
    pub fn slot(self) -> u32 {
        self.0
    }
}

/// What the monitor keeps per slot to update and clear its map entries.
#[derive(Default)]
struct SlotState {
    active: bool,
    /// Tasks may be tracked in this slot without [`Monitor::add_session`]
    /// (the single-session methods): it counts as live for the syscall hooks.
    tracking: bool,
    config: RawConfig,
    exec_keys: HashSet<(u32, PathData)>,
    deny_keys: HashSet<(u32, PathData)>,
    exec_deny_keys: HashSet<(u32, PathData)>,
    net_keys: HashSet<(u32, NetData)>,
    bind_set: HashSet<u16>,
    cgroup_ids: Vec<u64>,
    /// Pids user space put in the tracked map for this slot (the kernel's
    /// fork hook adds their children, its exit hook removes every one).
    pids: Vec<u32>,
    addr_links: Vec<(&'static str, CgroupSockAddrLinkId)>,
    sock_links: Vec<CgroupSockLinkId>,
    attached: Vec<PathBuf>,
}

/// The config of a slot no session holds: a straggler (a fork racing the
/// removal) can neither reach the network nor exec anything.
const INERT: RawConfig = RawConfig {
    isolated: 1,
    exec_enforce: 1,
    exec_kill: 1,
    file_kill: 0,
    bind_enforce: 1,
    deny_enforce: 0,
    quiet: 1,
};

/// The compiled kernel programs.
static BPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/shield.bpf.o"));

/// tp_btf programs attached at load: (program, tracepoint).
const BTF_TRACEPOINTS: &[(&str, &str)] = &[
    ("on_fork", "sched_process_fork"),
    ("on_exit", "sched_process_exit"),
    ("on_exec", "sched_process_exec"),
];

/// The raw syscall hooks (opens, packet sockets). They run for every system
/// call of every process on the host, and while any is attached every task
/// takes the kernel's slow syscall path; so they are attached only while
/// something needs them: both to record open events (not quiet), the exit
/// hook alone for deny paths of quiet sessions. See
/// [`Monitor::syscall_hooks_attached`].
const SYSCALL_HOOKS: &[(&str, &str)] =
    &[("on_sys_enter", "sys_enter"), ("on_sys_exit", "sys_exit")];

/// cgroup sock_addr programs, attached per agent cgroup.
const SOCK_ADDR_PROGRAMS: &[&str] = &[
    "connect4", "connect6", "sendmsg4", "sendmsg6", "bind4", "bind6",
];

/// Sizes of the kernel maps. Defaults fit one agent session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    /// Ring buffer bytes: a power of two, at least one page (4096).
    pub ring_bytes: u32,
    /// Processes of the tree tracked by pid at once.
    pub max_tracked_pids: u32,
    /// Entries of each path trie (exec allowlist, deny list).
    pub max_path_rules: u32,
    /// Entries of the network allow trie (each rule takes one per protocol).
    pub max_net_rules: u32,
    /// Ports in the bind allowlist.
    pub max_bind_ports: u32,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            ring_bytes: 1 << 20,
            max_tracked_pids: 8192,
            max_path_rules: 1024,
            max_net_rules: 1024,
            max_bind_ports: 256,
        }
    }
}

impl MonitorConfig {
    /// The defaults with the sizes a policy or daemon config sets.
    pub fn with_sizes(mut self, sizes: &crate::policy::MonitorSizes) -> MonitorConfig {
        let set = |field: &mut u32, v: Option<u32>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut self.ring_bytes, sizes.ring_bytes);
        set(&mut self.max_tracked_pids, sizes.max_pids);
        set(&mut self.max_path_rules, sizes.max_path_rules);
        set(&mut self.max_net_rules, sizes.max_net_rules);
        set(&mut self.max_bind_ports, sizes.max_bind_ports);
        self
    }
}

/// Why the monitor could not load, attach or be updated.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The configuration is unusable.
    #[error("eBPF monitor: bad configuration: {0}")]
    Config(String),
    /// A policy rule cannot be expressed in the kernel maps.
    #[error("eBPF monitor: bad rule: {0}")]
    Rule(String),
    /// The kernel's BTF could not be read.
    #[error("eBPF monitor: cannot read kernel BTF (/sys/kernel/btf/vmlinux): {0}; the kernel needs CONFIG_DEBUG_INFO_BTF=y")]
    Btf(String),
    /// The object (maps, relocations) could not be loaded.
    #[error("eBPF monitor: loading the eBPF object failed: {detail}; run as root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)")]
    Object {
        /// The loader's message.
        detail: String,
    },
    /// One program could not be loaded or attached.
    #[error(
        "eBPF monitor: {action} of program {program} failed (errno {errno}): {detail}; {hint}"
    )]
    Program {
        /// Program name in shield.bpf.c.
        program: &'static str,
        /// "load" or "attach".
        action: &'static str,
        /// errno, or -1 when the error did not come from a syscall.
        errno: i32,
        /// The loader's message (for a verifier rejection, the log's tail).
        detail: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// A map is missing from the object or an update failed.
    #[error("eBPF monitor: map {map}: {detail}")]
    Map {
        /// Map name in shield.bpf.c.
        map: &'static str,
        /// What failed.
        detail: String,
    },
    /// The cgroup directory could not be used.
    #[error(
        "eBPF monitor: cgroup {path}: {source}; give a cgroup v2 directory (see cgroup2_mount())"
    )]
    Cgroup {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading the ring buffer failed.
    #[error("eBPF monitor: reading events failed: {0}")]
    Io(#[from] io::Error),
    /// The event stream was moved out with [`Monitor::take_event_stream`].
    #[error("eBPF monitor: the event stream was taken by take_event_stream()")]
    StreamTaken,
}

fn program_error(
    program: &'static str,
    action: &'static str,
    e: ProgramError,
    hint: &'static str,
) -> MonitorError {
    let (errno, detail) = match &e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            (
                io_error.raw_os_error().unwrap_or(-1),
                format!("{io_error}; verifier: {}", tail.join(" | ")),
            )
        }
        ProgramError::SyscallError(s) => (s.io_error.raw_os_error().unwrap_or(-1), e.to_string()),
        other => (-1, other.to_string()),
    };
    MonitorError::Program {
        program,
        action,
        errno,
        detail,
        hint,
    }
}

fn map_error(map: &'static str, e: impl std::fmt::Display) -> MonitorError {
    MonitorError::Map {
        map,
        detail: e.to_string(),
    }
}

/// The cgroup v2 mount point, from /proc/self/mountinfo (`/sys/fs/cgroup`
/// on unified hosts, `/sys/fs/cgroup/unified` on hybrid ones).
pub fn cgroup2_mount() -> Result<PathBuf, MonitorError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    for line in text.lines() {
        // "... mount_point options - fstype source superopts"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split(' ').next() != Some("cgroup2") {
            continue;
        }
        if let Some(mp) = left.split(' ').nth(4) {
            return Ok(PathBuf::from(mp.replace("\\040", " ")));
        }
    }
    Err(MonitorError::Io(io::Error::new(
        io::ErrorKind::NotFound,
        "no cgroup2 file system is mounted",
    )))
}

/// Whether the kernel runs the BPF LSM (`bpf` in /sys/kernel/security/lsm).
/// This monitor does not need it; an LSM program set (no TOCTOU for exec
/// and open) can be added where this is true.
pub fn bpf_lsm_enabled() -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .map(|s| lsm_list_has_bpf(&s))
        .unwrap_or(false)
}

fn lsm_list_has_bpf(list: &str) -> bool {
    list.trim().split(',').any(|l| l == "bpf")
}

/// The dynamic loaders present on this host (`ld-linux*.so*`, `ld-musl*`),
/// as exact rules for [`Monitor::set_exec_deny`]. Run directly, a loader
/// executes any file it is given, so allowing its directory would allow
/// everything.
pub fn dynamic_loaders() -> Vec<PathRule> {
    // Scanning the library directories costs tens of milliseconds; the
    // loaders of a host do not change while a daemon runs.
    static LOADERS: std::sync::OnceLock<Vec<PathRule>> = std::sync::OnceLock::new();
    LOADERS.get_or_init(find_dynamic_loaders).clone()
}

fn find_dynamic_loaders() -> Vec<PathRule> {
    let patterns = [
        "/lib/ld-linux*.so*",
        "/lib64/ld-linux*.so*",
        "/usr/lib/ld-linux*.so*",
        "/usr/lib64/ld-linux*.so*",
        "/lib/*/ld-linux*.so*",
        "/usr/lib/*/ld-linux*.so*",
        "/lib/ld-musl-*.so*",
        "/usr/lib/ld-musl-*.so*",
    ];
    let mut out = Vec::new();
    for p in patterns {
        let Ok(glob) = globset::Glob::new(p) else {
            continue;
        };
        let m = glob.compile_matcher();
        let dirs: Vec<PathBuf> = match p.split_once('*') {
            // "/lib/*/ld-linux..." style: every subdirectory of the base.
            Some((base, rest)) if rest.starts_with('/') => std::fs::read_dir(base)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default(),
            _ => Path::new(p)
                .parent()
                .map(|d| vec![d.to_path_buf()])
                .unwrap_or_default(),
        };
        for d in dirs {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let path = e.path();
                if m.is_match(&path) && !out.contains(&PathRule::Exact(path.clone())) {
                    out.push(PathRule::Exact(path));
                }
            }
        }
    }
    out
}

/// Reads decoded events from the kernel ring buffer, woken by epoll
/// through tokio (no polling loop).
pub struct EventStream {
    fd: Option<AsyncFd<RingBuf<MapData>>>,
    ring: Option<RingBuf<MapData>>,
}

impl EventStream {
    /// The next event, waiting until one arrives. Must run inside a tokio
    /// runtime with I/O enabled.
    pub async fn next_event(&mut self) -> Result<Event, MonitorError> {
        if let Some(ring) = self.ring.take() {
            if tokio::runtime::Handle::try_current().is_err() {
                self.ring = Some(ring);
                return Err(MonitorError::Io(io::Error::other(
                    "next_event needs a tokio runtime with I/O enabled",
                )));
            }
            // SAFETY: the RingBuf owns its map fd (MapData) and keeps it open,
            // unchanged, until the RingBuf is dropped; the AsyncFd owns the
            // RingBuf, so the fd outlives the registration.
            let fd = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
                .map_err(|e| MonitorError::Io(io::Error::other(e.to_string())))?;
            self.fd = Some(fd);
        }
        let Some(fd) = self.fd.as_mut() else {
            return Err(MonitorError::StreamTaken);
        };
        loop {
            let mut guard = fd.readable_mut().await?;
            if let Some(item) = guard.get_inner_mut().next() {
                return Ok(events::decode(&item));
            }
            guard.clear_ready();
        }
    }

    /// An event if one is waiting, without blocking (usable outside tokio).
    pub fn try_next_event(&mut self) -> Option<Event> {
        let ring = match (self.ring.as_mut(), self.fd.as_mut()) {
            (Some(r), _) => r,
            (None, Some(fd)) => fd.get_mut(),
            (None, None) => return None,
        };
        ring.next().map(|item| events::decode(&item))
    }
}

/// Response switches applied in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelResponse {
    /// SIGKILL the process on an exec violation (else the exec is only reported).
    pub exec_kill: bool,
    /// SIGKILL the process on an open of a denied path (else reported only;
    /// Landlock is what makes the open fail).
    pub file_kill: bool,
}

impl Default for KernelResponse {
    fn default() -> Self {
        KernelResponse {
            exec_kill: true,
            file_kill: false,
        }
    }
}

/// The loaded monitor. Dropping it detaches every program.
pub struct Monitor {
    // Keeps the programs and their links alive.
    _ebpf: Ebpf,
    tracked_pids: BpfHashMap<MapData, u32, u32>,
    tracked_cgroups: BpfHashMap<MapData, u64, u32>,
    exec_allow: LpmTrie<MapData, PathKeyData, u32>,
    deny_paths: LpmTrie<MapData, PathKeyData, u32>,
    exec_deny: LpmTrie<MapData, PathKeyData, u32>,
    net_allow: LpmTrie<MapData, NetKeyData, u32>,
    bind_ports: BpfHashMap<MapData, BindKey, u32>,
    config_map: Array<MapData, RawConfig>,
    lost: PerCpuArray<MapData, u64>,
    stream: Option<EventStream>,
    slots: std::collections::HashMap<u32, SlotState>,
    attached: Vec<PathBuf>,
    /// Links of [`SYSCALL_HOOKS`] while attached.
    sys_links: Vec<(&'static str, BtfTracePointLinkId)>,
    /// Keep the syscall hooks once attached (daemon mode): detaching a
    /// tracepoint waits for an RCU grace period, milliseconds that every
    /// short session would otherwise pay at its start.
    sticky_hooks: bool,
    /// Program groups loaded (verified) so far.
    loaded: Vec<ProgramGroup>,
    /// Kept for the groups a lazy load has not loaded yet.
    btf: Option<Btf>,
}

/// Programs loaded together: the tree and exec tracepoints, the raw
/// syscall hooks, the cgroup network programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProgramGroup {
    Tree,
    Syscalls,
    Cgroup,
}

impl ProgramGroup {
    fn programs(self) -> Vec<&'static str> {
        match self {
            ProgramGroup::Tree => BTF_TRACEPOINTS.iter().map(|&(n, _)| n).collect(),
            ProgramGroup::Syscalls => SYSCALL_HOOKS.iter().map(|&(n, _)| n).collect(),
            ProgramGroup::Cgroup => SOCK_ADDR_PROGRAMS
                .iter()
                .copied()
                .chain(["sock_create"])
                .collect(),
        }
    }
}

/// The tp_btf tracepoint of a program, if it is one.
fn tracepoint_of(name: &str) -> Option<&'static str> {
    BTF_TRACEPOINTS
        .iter()
        .chain(SYSCALL_HOOKS)
        .find(|&&(n, _)| n == name)
        .map(|&(_, tp)| tp)
}

/// Load (verify) one program.
fn load_program(
    name: &'static str,
    prog: &mut aya::programs::Program,
    btf: &Btf,
) -> Result<(), MonitorError> {
    use aya::programs::Program;
    let t0 = std::time::Instant::now();
    let (r, hint) = match (prog, tracepoint_of(name)) {
        (Program::BtfTracePoint(p), Some(tp)) => (
            p.load(tp, btf),
            "the kernel needs BTF and tp_btf support (5.5+), and shieldd needs root",
        ),
        (Program::CgroupSockAddr(p), _) => {
            (p.load(), "cgroup sock_addr programs need CONFIG_CGROUP_BPF")
        }
        (Program::CgroupSock(p), _) => (p.load(), "cgroup sock programs need CONFIG_CGROUP_BPF"),
        _ => {
            return Err(map_error(
                "programs",
                format!("{name} has an unexpected program type"),
            ))
        }
    };
    let r = r.map_err(|e| program_error(name, "load", e, hint));
    tracing::debug!(
        program = name,
        us = t0.elapsed().as_micros() as u64,
        "program loaded"
    );
    r
}

/// Load every program of `groups`, on as many threads as there are CPUs:
/// the kernel verifies different programs concurrently.
fn load_groups(ebpf: &mut Ebpf, btf: &Btf, groups: &[ProgramGroup]) -> Result<(), MonitorError> {
    let names: Vec<&'static str> = groups.iter().flat_map(|g| g.programs()).collect();
    let mut progs: Vec<(&'static str, &mut aya::programs::Program)> = Vec::new();
    for (n, p) in ebpf.programs_mut() {
        if let Some(&name) = names.iter().find(|&&x| x == n) {
            progs.push((name, p));
        }
    }
    if let Some(missing) = names.iter().find(|&&n| !progs.iter().any(|&(p, _)| p == n)) {
        return Err(map_error("programs", format!("{missing} missing")));
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(progs.len());
    if threads <= 1 {
        return progs
            .into_iter()
            .try_for_each(|(n, p)| load_program(n, p, btf));
    }
    let mut chunks: Vec<Vec<(&'static str, &mut aya::programs::Program)>> =
        (0..threads).map(|_| Vec::new()).collect();
    for (i, p) in progs.into_iter().enumerate() {
        if let Some(c) = chunks.get_mut(i % threads) {
            c.push(p);
        }
    }
    std::thread::scope(|sc| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                sc.spawn(move || {
                    chunk
                        .into_iter()
                        .try_for_each(|(n, p)| load_program(n, p, btf))
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(map_error("programs", "a loader thread panicked")))
        })
    })
}

/// The kernel BTF cut down to what this object needs (see [`btf_trim`]),
/// or `None` when it cannot be cut (the caller then parses all of it).
fn trimmed_kernel_btf(raw: &[u8]) -> Option<Btf> {
    let tps: Vec<&str> = BTF_TRACEPOINTS
        .iter()
        .chain(SYSCALL_HOOKS)
        .map(|&(_, tp)| tp)
        .collect();
    let small = btf_trim::trim(raw, BPF_OBJECT, &tps)
        .map_err(|e| tracing::debug!(error = %e, "kernel BTF not trimmed"))
        .ok()?;
    Btf::parse(&small, aya::Endianness::default())
        .map_err(|e| tracing::debug!(error = %e, "trimmed kernel BTF unreadable"))
        .ok()
}

/// An `EbpfLoader` without aya's default BTF. `EbpfLoader::new` parses
/// all of /sys/kernel/btf/vmlinux even when the caller supplies its own (as
/// `load_object` does): about a third of a standalone launch's CPU. So it is
/// built on a short-lived thread with its own mount namespace in which that
/// file is /dev/null (aya then keeps no default). If the namespace cannot
/// be set up, aya's own constructor is used: slower, same result.
fn bare_loader() -> EbpfLoader<'static> {
    let quick = std::thread::scope(|s| {
        s.spawn(|| hide_kernel_btf().ok().map(|()| EbpfLoader::new()))
            .join()
            .ok()
            .flatten()
    });
    quick.unwrap_or_else(EbpfLoader::new)
}

/// Whether [`hide_kernel_btf`] works here and really empties the file
/// (on a thread of its own).
#[cfg(test)]
fn hide_kernel_btf_probe() -> bool {
    std::thread::spawn(|| {
        hide_kernel_btf().is_ok()
            && std::fs::read("/sys/kernel/btf/vmlinux").is_ok_and(|b| b.is_empty())
    })
    .join()
    .unwrap_or(false)
}

/// On the calling thread only: a private mount namespace where the kernel
/// BTF reads as empty. Nothing propagates out: /sys is made private in the
/// copy before the bind mount, and the namespace ends with the thread.
fn hide_kernel_btf() -> nix::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/sys",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    mount(
        Some("/dev/null"),
        "/sys/kernel/btf/vmlinux",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
}

/// Relocate the object against `btf` and create its maps.
fn load_object(cfg: &MonitorConfig, btf: &Btf) -> Result<Ebpf, MonitorError> {
    bare_loader()
        .btf(Some(btf))
        .map_max_entries("events", cfg.ring_bytes)
        .map_max_entries("tracked_pids", cfg.max_tracked_pids)
        .map_max_entries("exec_allow", cfg.max_path_rules)
        .map_max_entries("deny_paths", cfg.max_path_rules)
        // The dynamic loaders, per session: sized like the other path
        // maps so that every slot can hold its entries.
        .map_max_entries("exec_deny", cfg.max_path_rules)
        .map_max_entries("net_allow", cfg.max_net_rules)
        .map_max_entries("bind_ports", cfg.max_bind_ports)
        .load(BPF_OBJECT)
        .map_err(|e| {
            let mut detail = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                detail.push_str(": ");
                detail.push_str(&s.to_string());
                src = s.source();
            }
            MonitorError::Object { detail }
        })
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, MonitorError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| map_error(name, "missing from the eBPF object"))?;
    T::try_from(map).map_err(|e| map_error(name, e))
}

impl Monitor {
    /// Load and verify every program, attach the tracepoints (tree, exec)
    /// and size the maps. The syscall hooks (open) are attached once a live
    /// slot needs them; the cgroup programs are loaded here and attached by
    /// [`Monitor::attach_cgroup`] or [`Monitor::add_session`]. Nothing is enforced until
    /// rules are set, except that an attached cgroup has no network until
    /// [`Monitor::set_connect_rules`] allows some.
    pub fn load(cfg: &MonitorConfig) -> Result<Monitor, MonitorError> {
        Monitor::load_with(cfg, true)
    }

    /// [`Monitor::load`], but only the process-tree and exec programs are
    /// loaded now; the syscall hooks are loaded when a session first needs
    /// them (it records opens or has deny paths) and the network programs
    /// when a cgroup is first attached. For a one-session launcher this
    /// saves verifying what its policy never uses. A program that fails to
    /// load then fails the call that needed it ([`Monitor::add_session`],
    /// [`Monitor::attach_cgroup`], a rule setter), so nothing runs without
    /// the enforcement it asked for.
    pub fn load_lazy(cfg: &MonitorConfig) -> Result<Monitor, MonitorError> {
        Monitor::load_with(cfg, false)
    }

    fn load_with(cfg: &MonitorConfig, eager: bool) -> Result<Monitor, MonitorError> {
        if cfg.ring_bytes < 4096 || !cfg.ring_bytes.is_power_of_two() {
            return Err(MonitorError::Config(format!(
                "ring_bytes {} must be a power of two of at least 4096",
                cfg.ring_bytes
            )));
        }
        for (name, v) in [
            ("max_tracked_pids", cfg.max_tracked_pids),
            ("max_path_rules", cfg.max_path_rules),
            ("max_net_rules", cfg.max_net_rules),
            ("max_bind_ports", cfg.max_bind_ports),
        ] {
            if v == 0 {
                return Err(MonitorError::Config(format!("{name} must be > 0")));
            }
        }
        let t0 = std::time::Instant::now();
        let blob = btf_trim::KernelBlob::open("/sys/kernel/btf/vmlinux")
            .map_err(|e| MonitorError::Btf(e.to_string()))?;
        let raw = blob.bytes();
        let mut btf = trimmed_kernel_btf(raw);
        tracing::debug!(
            us = t0.elapsed().as_micros() as u64,
            trimmed = btf.is_some(),
            "kernel BTF parsed"
        );
        let t0 = std::time::Instant::now();
        let mut ebpf = match &btf {
            Some(small) => match load_object(cfg, small) {
                Ok(e) => Some(e),
                Err(e) => {
                    // Never fail on the cut: retry with the whole BTF.
                    tracing::debug!(error = %e, "trimmed BTF refused; parsing all of it");
                    None
                }
            },
            None => None,
        };
        if ebpf.is_none() {
            let full = Btf::parse(raw, aya::Endianness::default())
                .map_err(|e| MonitorError::Btf(e.to_string()))?;
            ebpf = Some(load_object(cfg, &full)?);
            btf = Some(full);
        }
        drop(blob);
        let (Some(mut ebpf), Some(btf)) = (ebpf, btf) else {
            return Err(MonitorError::Btf("no BTF".into()));
        };

        // The tree programs always; the rest now (eager) or when first
        // needed (lazy). Either way a program that fails to load fails the
        // call that needed it: nothing runs without its enforcement.
        tracing::debug!(
            us = t0.elapsed().as_micros() as u64,
            "object relocated, maps created"
        );
        let mut groups = vec![ProgramGroup::Tree];
        if eager {
            groups.extend([ProgramGroup::Syscalls, ProgramGroup::Cgroup]);
        }
        load_groups(&mut ebpf, &btf, &groups)?;
        for &(name, _) in BTF_TRACEPOINTS {
            let hint = "the kernel needs BTF and tp_btf support (5.5+), and shieldd needs root";
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(name)
                .ok_or_else(|| map_error("programs", format!("{name} missing")))?
                .try_into()
                .map_err(|e| program_error(name, "attach", e, hint))?;
            prog.attach()
                .map_err(|e| program_error(name, "attach", e, hint))?;
        }

        let ring: RingBuf<MapData> = take(&mut ebpf, "events")?;
        let mut mon = Monitor {
            tracked_pids: take(&mut ebpf, "tracked_pids")?,
            tracked_cgroups: take(&mut ebpf, "tracked_cgroups")?,
            exec_allow: take(&mut ebpf, "exec_allow")?,
            deny_paths: take(&mut ebpf, "deny_paths")?,
            exec_deny: take(&mut ebpf, "exec_deny")?,
            net_allow: take(&mut ebpf, "net_allow")?,
            bind_ports: take(&mut ebpf, "bind_ports")?,
            config_map: take(&mut ebpf, "shield_cfg")?,
            lost: take(&mut ebpf, "lost")?,
            _ebpf: ebpf,
            stream: Some(EventStream {
                fd: None,
                ring: Some(ring),
            }),
            slots: std::collections::HashMap::new(),
            attached: Vec::new(),
            sys_links: Vec::new(),
            sticky_hooks: false,
            loaded: groups,
            btf: if eager { None } else { Some(btf) },
        };
        mon.slot_mut(DEFAULT_SLOT)?.config = RawConfig {
            exec_kill: 1,
            ..RawConfig::default()
        };
        mon.write_config(DEFAULT_SLOT)?;
        Ok(mon)
    }

    fn slot_mut(&mut self, slot: u32) -> Result<&mut SlotState, MonitorError> {
        if slot >= MAX_SLOTS {
            return Err(MonitorError::Config(format!(
                "session slot {slot} is out of range (0..{MAX_SLOTS})"
            )));
        }
        Ok(self.slots.entry(slot).or_default())
    }

    /// Write a slot's config to the kernel, attaching the syscall hooks
    /// first when some live slot needs them (so a rule is never in force
    /// without its hook) and detaching them after when none does.
    fn write_config(&mut self, slot: u32) -> Result<(), MonitorError> {
        let cfg = self.slot_mut(slot)?.config;
        let need = self.syscall_hooks_needed();
        self.attach_syscall_hooks(&need)?;
        self.config_map
            .set(slot, cfg, 0)
            .map_err(|e| map_error("shield_cfg", e))?;
        if !self.sticky_hooks {
            self.detach_syscall_hooks(&need)?;
        }
        Ok(())
    }

    /// Keep the syscall hooks attached once a session has needed them, for
    /// a long-running daemon where sessions come and go: an idle host then
    /// pays the hooks' early exit for untracked tasks on every system call,
    /// and each session start saves the attach and detach.
    pub fn keep_syscall_hooks(&mut self, keep: bool) {
        self.sticky_hooks = keep;
    }

    /// The syscall hooks some live slot (a registered session, or one whose
    /// tasks are tracked through the single-session methods) needs: both
    /// when it records open events (not quiet), only the exit hook when it
    /// is quiet with deny paths (the exit hook reads the call's arguments
    /// from the saved registers), none otherwise. Slots nobody holds are
    /// inert (quiet, no deny paths) and need nothing.
    fn syscall_hooks_needed(&self) -> Vec<&'static str> {
        let (mut enter, mut exit) = (false, false);
        for st in self.slots.values().filter(|st| st.active || st.tracking) {
            enter |= st.config.quiet == 0;
            exit |= st.config.quiet == 0 || st.config.deny_enforce != 0;
        }
        SYSCALL_HOOKS
            .iter()
            .map(|&(n, _)| n)
            .filter(|&n| if n == "on_sys_enter" { enter } else { exit })
            .collect()
    }

    /// Mark a slot as having tasks (single-session use) and bring the
    /// syscall hooks in line before any of its tasks is tracked.
    fn start_tracking(&mut self, slot: u32) -> Result<(), MonitorError> {
        self.slot_mut(slot)?.tracking = true;
        let need = self.syscall_hooks_needed();
        self.attach_syscall_hooks(&need)
    }

    /// Load a program group a lazy load left out, once.
    fn ensure_loaded(&mut self, group: ProgramGroup) -> Result<(), MonitorError> {
        if self.loaded.contains(&group) {
            return Ok(());
        }
        let Some(btf) = self.btf.as_ref() else {
            return Err(map_error(
                "programs",
                "kernel BTF dropped before every program loaded",
            ));
        };
        load_groups(&mut self._ebpf, btf, &[group])?;
        self.loaded.push(group);
        if self.loaded.len() == 3 {
            // Everything is loaded: the parsed kernel BTF (megabytes) can go.
            self.btf = None;
        }
        Ok(())
    }

    /// Attach the hooks in `need` that are not attached yet.
    fn attach_syscall_hooks(&mut self, need: &[&'static str]) -> Result<(), MonitorError> {
        if need.is_empty() {
            return Ok(());
        }
        self.ensure_loaded(ProgramGroup::Syscalls)?;
        let hint = "the kernel needs BTF and tp_btf support (5.5+), and shieldd needs root";
        for &name in need {
            if self.sys_links.iter().any(|&(n, _)| n == name) {
                continue;
            }
            let prog: &mut BtfTracePoint = self
                ._ebpf
                .program_mut(name)
                .ok_or_else(|| map_error("programs", format!("{name} missing")))?
                .try_into()
                .map_err(|e| program_error(name, "attach", e, hint))?;
            let link = prog
                .attach()
                .map_err(|e| program_error(name, "attach", e, hint))?;
            self.sys_links.push((name, link));
        }
        Ok(())
    }

    /// Detach the attached hooks not in `need`.
    fn detach_syscall_hooks(&mut self, need: &[&'static str]) -> Result<(), MonitorError> {
        let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sys_links)
            .into_iter()
            .partition(|(n, _)| need.contains(n));
        self.sys_links = keep;
        for (name, link) in drop {
            let prog: &mut BtfTracePoint = self
                ._ebpf
                .program_mut(name)
                .ok_or_else(|| map_error("programs", format!("{name} missing")))?
                .try_into()
                .map_err(|e| program_error(name, "detach", e, "a bug in shieldd"))?;
            prog.detach(link)
                .map_err(|e| program_error(name, "detach", e, "a bug in shieldd"))?;
        }
        Ok(())
    }

    /// Whether the raw syscall hooks (open checks and events, packet-socket
    /// kill) are attached: only while some live session records open events
    /// (not quiet) or has deny paths. When they are not, the agent's seccomp filter
    /// and missing capabilities already refuse packet sockets.
    pub fn syscall_hooks_attached(&self) -> bool {
        !self.sys_links.is_empty()
    }

    /// Whether a program of shield.bpf.c (by its C name) is loaded, i.e.
    /// verified by the kernel: all of them after [`Monitor::load`], only
    /// those needed so far after [`Monitor::load_lazy`].
    pub fn program_loaded(&self, name: &str) -> bool {
        self._ebpf.program(name).is_some_and(|p| p.fd().is_ok())
    }

    /// The lowest slot no session holds, if any is left.
    pub fn free_slot(&self) -> Option<u32> {
        (0..MAX_SLOTS).find(|s| !self.slots.get(s).is_some_and(|st| st.active))
    }

    /// Register a session: its slot's rules and quiet switch, then (given a
    /// cgroup v2 directory) the network programs attached to that cgroup
    /// and every task in it tracked under the slot. Track the agent with
    /// [`Monitor::track_pid_in`] before it execs. On error nothing of the
    /// session is left in the maps.
    pub fn add_session(
        &mut self,
        slot: u32,
        cgroup_v2_dir: Option<&Path>,
        rules: &MonitorRules,
        quiet: bool,
    ) -> Result<SessionSlot, MonitorError> {
        if self.slots.get(&slot).is_some_and(|s| s.active) {
            return Err(MonitorError::Config(format!(
                "session slot {slot} is in use"
            )));
        }
        let st = self.slot_mut(slot)?;
        st.active = true;
        // Isolated, exec enforced, until its own rules are in: a freed slot
        // keeps the rule entries of its last session (see remove_session),
        // and they must not be in force for anyone meanwhile.
        st.config = RawConfig {
            quiet: u32::from(quiet),
            isolated: 1,
            exec_enforce: 1,
            exec_kill: 1,
            bind_enforce: 1,
            ..RawConfig::default()
        };
        let handle = SessionSlot(slot);
        let t0 = std::time::Instant::now();
        let r = self
            .reset_lost(slot)
            .and_then(|_| self.write_config(slot))
            .and_then(|_| {
                self.apply_slot(slot, rules)?;
                self.slot_mut(slot)?.config.isolated = 0;
                self.write_config(slot)?;
                tracing::debug!(
                    us = t0.elapsed().as_micros() as u64,
                    "session rules in the maps"
                );
                match cgroup_v2_dir {
                    Some(dir) => self.attach_cgroup_slot(slot, dir),
                    None => Ok(()),
                }
            });
        if let Err(e) = r {
            let _ = self.remove_session(handle);
            return Err(e);
        }
        Ok(handle)
    }

    /// Unregister a session: detach its cgroup programs, drop its tracked
    /// pids and cgroups, and leave the slot inert (no network, no exec)
    /// until it is given to another session. Its rule entries stay in the
    /// maps, out of force (isolated, every exec denied by a `/` entry in the
    /// exec denylist, deny paths off): the next session in the slot, most
    /// often under the same policy, then changes only what differs instead
    /// of deleting and re-inserting every entry (a system call each). Free
    /// slots are given out lowest first, so the maps hold no more entries
    /// than at the peak of live sessions (plus the `/` entry of each freed
    /// slot).
    pub fn remove_session(&mut self, handle: SessionSlot) -> Result<(), MonitorError> {
        let slot = handle.0;
        let mut st = std::mem::take(self.slot_mut(slot)?);
        let mut first_err: Option<MonitorError> = None;
        let mut keep = |r: Result<(), MonitorError>| {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        };
        for (name, link) in std::mem::take(&mut st.addr_links) {
            let r = self
                ._ebpf
                .program_mut(name)
                .and_then(|p| <&mut CgroupSockAddr>::try_from(p).ok())
                .map(|p| p.detach(link));
            if let Some(Err(e)) = r {
                keep(Err(program_error(name, "detach", e, "")));
            }
        }
        for link in std::mem::take(&mut st.sock_links) {
            let r = self
                ._ebpf
                .program_mut("sock_create")
                .and_then(|p| <&mut CgroupSock>::try_from(p).ok())
                .map(|p| p.detach(link));
            if let Some(Err(e)) = r {
                keep(Err(program_error("sock_create", "detach", e, "")));
            }
        }
        for id in std::mem::take(&mut st.cgroup_ids) {
            keep(remove_key(
                &mut self.tracked_cgroups,
                &id,
                "tracked_cgroups",
            ));
        }
        // Only the pids put in from here: the exit hook removed every
        // tracked task that exited, a pid put in here may have died before
        // it went in (and would stay, for the next process given that pid).
        // Walking the whole map instead cost a scan of all its buckets
        // (65,536 in the daemon) in the kernel per session, and a task of
        // the session still alive would have left it untracked rather than
        // inert.
        for p in std::mem::take(&mut st.pids) {
            // Not a reused pid another session's fork put in since.
            if self.tracked_pids.get(&p, 0).ok() == Some(slot) {
                keep(remove_key(&mut self.tracked_pids, &p, "tracked_pids"));
            }
        }
        // Every exec of the slot denied from now on; should that entry not
        // go in, the allowlist goes instead (an empty one admits nothing).
        let mut exec_deny = std::mem::take(&mut st.exec_deny_keys);
        let sealed = rules::path_entries(&[PathRule::Dir(PathBuf::from("/"))]).and_then(|all| {
            let mut sealed = exec_deny.clone();
            sealed.extend(all);
            sync_paths(
                &mut self.exec_deny,
                slot,
                &mut exec_deny,
                sealed,
                "exec_deny",
            )
        });
        if let Err(e) = sealed {
            keep(Err(e));
            keep(sync_paths(
                &mut self.exec_allow,
                slot,
                &mut st.exec_keys,
                HashSet::new(),
                "exec_allow",
            ));
        }
        st.exec_deny_keys = exec_deny;
        self.attached.retain(|a| !st.attached.contains(a));
        let inert = self.slot_mut(slot)?;
        inert.config = INERT;
        inert.exec_keys = st.exec_keys;
        inert.deny_keys = st.deny_keys;
        inert.exec_deny_keys = st.exec_deny_keys;
        inert.net_keys = st.net_keys;
        inert.bind_set = st.bind_set;
        keep(self.write_config(slot));
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Attach the network programs (connect, sendmsg, bind, sock_create) to
    /// a cgroup v2 directory and track every task in it. From now on the
    /// cgroup's sockets may only reach what the connect rules allow.
    pub fn attach_cgroup(&mut self, cgroup_v2_dir: &Path) -> Result<(), MonitorError> {
        self.attach_cgroup_slot(DEFAULT_SLOT, cgroup_v2_dir)
    }

    fn attach_cgroup_slot(&mut self, slot: u32, cgroup_v2_dir: &Path) -> Result<(), MonitorError> {
        let cg_err = |source| MonitorError::Cgroup {
            path: cgroup_v2_dir.to_path_buf(),
            source,
        };
        let file = File::open(cgroup_v2_dir).map_err(cg_err)?;
        let id = file.metadata().map_err(cg_err)?.ino();
        self.ensure_loaded(ProgramGroup::Cgroup)?;
        self.start_tracking(slot)?;
        self.tracked_cgroups
            .insert(id, slot, 0)
            .map_err(|e| map_error("tracked_cgroups", e))?;
        self.slot_mut(slot)?.cgroup_ids.push(id);
        let hint = "give a cgroup v2 directory and run as root";
        for &name in SOCK_ADDR_PROGRAMS {
            let prog: &mut CgroupSockAddr = self
                ._ebpf
                .program_mut(name)
                .ok_or_else(|| map_error("programs", format!("{name} missing")))?
                .try_into()
                .map_err(|e| program_error(name, "attach", e, hint))?;
            let link = prog
                .attach(&file, CgroupAttachMode::Single)
                .map_err(|e| program_error(name, "attach", e, hint))?;
            self.slot_mut(slot)?.addr_links.push((name, link));
        }
        let prog: &mut CgroupSock = self
            ._ebpf
            .program_mut("sock_create")
            .ok_or_else(|| map_error("programs", "sock_create missing"))?
            .try_into()
            .map_err(|e| program_error("sock_create", "attach", e, hint))?;
        let link = prog
            .attach(&file, CgroupAttachMode::Single)
            .map_err(|e| program_error("sock_create", "attach", e, hint))?;
        let st = self.slot_mut(slot)?;
        st.sock_links.push(link);
        st.attached.push(cgroup_v2_dir.to_path_buf());
        self.attached.push(cgroup_v2_dir.to_path_buf());
        Ok(())
    }

    /// Track a process (and, through fork, its descendants). Call it for the
    /// gated agent child before it execs.
    pub fn track_pid(&mut self, pid: u32) -> Result<(), MonitorError> {
        self.track_pid_in(DEFAULT_SLOT, pid)
    }

    /// Track a process (and its descendants) as part of a session's slot.
    pub fn track_pid_in(&mut self, slot: u32, pid: u32) -> Result<(), MonitorError> {
        if slot >= MAX_SLOTS {
            return Err(MonitorError::Config(format!(
                "session slot {slot} is out of range"
            )));
        }
        self.start_tracking(slot)?;
        self.tracked_pids
            .insert(pid, slot, 0)
            .map_err(|e| map_error("tracked_pids", e))?;
        let mut pids = std::mem::take(&mut self.slot_mut(slot)?.pids);
        // A long single-session run may track many: keep the list bounded
        // by those still in the map for this slot (the exit hook removed
        // the rest).
        if pids.len() >= 1024 {
            pids.retain(|p| self.tracked_pids.get(p, 0).ok() == Some(slot));
        }
        pids.push(pid);
        self.slot_mut(slot)?.pids = pids;
        Ok(())
    }

    /// Stop tracking one process (its descendants stay tracked).
    pub fn untrack_pid(&mut self, pid: u32) -> Result<(), MonitorError> {
        match self.tracked_pids.remove(&pid) {
            Ok(()) => Ok(()),
            Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(map_error("tracked_pids", e)),
        }
    }

    /// Whether a pid is currently in the tracked map.
    pub fn is_tracked(&self, pid: u32) -> bool {
        self.tracked_pids.get(&pid, 0).is_ok()
    }

    /// Replace the outbound allowlist (connect and unconnected sendmsg, TCP
    /// and UDP, v4, v6 and v4-mapped v6). New entries go in before stale
    /// ones are removed, so nothing allowed in both is ever refused.
    pub fn set_connect_rules(&mut self, rules: &[ConnectRule]) -> Result<(), MonitorError> {
        self.set_connect_rules_in(DEFAULT_SLOT, rules)
    }

    /// [`Monitor::set_connect_rules`] for one slot.
    pub fn set_connect_rules_in(
        &mut self,
        slot: u32,
        rules: &[ConnectRule],
    ) -> Result<(), MonitorError> {
        let new: HashSet<(u32, NetData)> = rules::net_entries(rules).into_iter().collect();
        let mut cur = std::mem::take(&mut self.slot_mut(slot)?.net_keys);
        let r = sync_net(&mut self.net_allow, slot, &mut cur, new);
        self.slot_mut(slot)?.net_keys = cur;
        r
    }

    /// Replace the ports the agent may bind, and enforce them.
    pub fn set_bind_ports(&mut self, ports: &[u16]) -> Result<(), MonitorError> {
        self.set_bind_ports_in(DEFAULT_SLOT, ports)
    }

    /// [`Monitor::set_bind_ports`] for one slot.
    pub fn set_bind_ports_in(&mut self, slot: u32, ports: &[u16]) -> Result<(), MonitorError> {
        let new: HashSet<u16> = ports.iter().copied().collect();
        let mut cur = std::mem::take(&mut self.slot_mut(slot)?.bind_set);
        let key = |port: u16| BindKey {
            slot,
            port,
            _pad: 0,
        };
        let mut r = Ok(());
        let add: Vec<u16> = new.difference(&cur).copied().collect();
        for port in add {
            if let Err(e) = self.bind_ports.insert(key(port), 1, 0) {
                r = Err(map_error("bind_ports", e));
                break;
            }
            cur.insert(port);
        }
        if r.is_ok() {
            let stale: Vec<u16> = cur.difference(&new).copied().collect();
            for port in stale {
                if let Err(e) = remove_key(&mut self.bind_ports, &key(port), "bind_ports") {
                    r = Err(e);
                    break;
                }
                cur.remove(&port);
            }
        }
        let st = self.slot_mut(slot)?;
        st.bind_set = cur;
        r?;
        st.config.bind_enforce = 1;
        self.write_config(slot)
    }

    /// Replace the exec allowlist and enforce it: any other program a
    /// tracked process executes is a violation (killed unless
    /// [`KernelResponse::exec_kill`] is off). Symlinked rules are also
    /// entered in resolved form. See [`expand_globs`] for policy patterns.
    pub fn set_exec_allow(&mut self, rules: &[PathRule]) -> Result<(), MonitorError> {
        self.set_exec_allow_in(DEFAULT_SLOT, rules)
    }

    /// [`Monitor::set_exec_allow`] for one slot.
    pub fn set_exec_allow_in(&mut self, slot: u32, rules: &[PathRule]) -> Result<(), MonitorError> {
        let new: HashSet<(u32, PathData)> = rules::path_entries(rules)?.into_iter().collect();
        let mut cur = std::mem::take(&mut self.slot_mut(slot)?.exec_keys);
        let r = sync_paths(&mut self.exec_allow, slot, &mut cur, new, "exec_allow");
        let st = self.slot_mut(slot)?;
        st.exec_keys = cur;
        r?;
        st.config.exec_enforce = 1;
        self.write_config(slot)
    }

    /// Replace the exec denylist: these programs are violations even when
    /// [`Monitor::set_exec_allow`] admits them through a directory or
    /// prefix rule. Give it [`dynamic_loaders`] so that `ld.so FILE` cannot
    /// run a FILE the allowlist does not admit.
    pub fn set_exec_deny(&mut self, rules: &[PathRule]) -> Result<(), MonitorError> {
        self.set_exec_deny_in(DEFAULT_SLOT, rules)
    }

    /// [`Monitor::set_exec_deny`] for one slot.
    pub fn set_exec_deny_in(&mut self, slot: u32, rules: &[PathRule]) -> Result<(), MonitorError> {
        let new: HashSet<(u32, PathData)> = rules::path_entries(rules)?.into_iter().collect();
        let mut cur = std::mem::take(&mut self.slot_mut(slot)?.exec_deny_keys);
        let r = sync_paths(&mut self.exec_deny, slot, &mut cur, new, "exec_deny");
        self.slot_mut(slot)?.exec_deny_keys = cur;
        r
    }

    /// Replace the deny list: an open of one of these paths (as given,
    /// joined to the cwd, or as resolved after the open) is a violation.
    pub fn set_deny_paths(&mut self, rules: &[PathRule]) -> Result<(), MonitorError> {
        self.set_deny_paths_in(DEFAULT_SLOT, rules)
    }

    /// [`Monitor::set_deny_paths`] for one slot.
    pub fn set_deny_paths_in(&mut self, slot: u32, rules: &[PathRule]) -> Result<(), MonitorError> {
        let new: HashSet<(u32, PathData)> = rules::path_entries(rules)?.into_iter().collect();
        let any = !new.is_empty();
        let mut cur = std::mem::take(&mut self.slot_mut(slot)?.deny_keys);
        let r = sync_paths(&mut self.deny_paths, slot, &mut cur, new, "deny_paths");
        let st = self.slot_mut(slot)?;
        st.deny_keys = cur;
        r?;
        st.config.deny_enforce = u32::from(any);
        self.write_config(slot)
    }

    /// Isolate (true): every connect, sendmsg and bind of the cgroup is
    /// refused, allowlist or not. Release with false.
    pub fn set_isolated(&mut self, isolated: bool) -> Result<(), MonitorError> {
        self.set_isolated_in(DEFAULT_SLOT, isolated)
    }

    /// [`Monitor::set_isolated`] for one slot.
    pub fn set_isolated_in(&mut self, slot: u32, isolated: bool) -> Result<(), MonitorError> {
        self.slot_mut(slot)?.config.isolated = u32::from(isolated);
        self.write_config(slot)
    }

    /// Quiet (true): the kernel sends only violations, not every open,
    /// connect and bind, for sessions whose events nobody records. Opens
    /// then skip the path walk unless deny rules need it.
    pub fn set_quiet(&mut self, quiet: bool) -> Result<(), MonitorError> {
        self.set_quiet_in(DEFAULT_SLOT, quiet)
    }

    /// [`Monitor::set_quiet`] for one slot.
    pub fn set_quiet_in(&mut self, slot: u32, quiet: bool) -> Result<(), MonitorError> {
        self.slot_mut(slot)?.config.quiet = u32::from(quiet);
        self.write_config(slot)
    }

    /// Choose what the kernel does on exec and file violations.
    pub fn set_response(&mut self, r: KernelResponse) -> Result<(), MonitorError> {
        self.set_response_in(DEFAULT_SLOT, r)
    }

    /// [`Monitor::set_response`] for one slot.
    pub fn set_response_in(&mut self, slot: u32, r: KernelResponse) -> Result<(), MonitorError> {
        let st = self.slot_mut(slot)?;
        st.config.exec_kill = u32::from(r.exec_kill);
        st.config.file_kill = u32::from(r.file_kill);
        self.write_config(slot)
    }

    /// Records the kernel could not put in the ring buffer (it was full),
    /// summed over CPUs and every session slot since load.
    pub fn lost_events(&self) -> Result<u64, MonitorError> {
        let mut total = 0u64;
        for per_cpu in self.lost.iter() {
            let per_cpu = per_cpu.map_err(|e| map_error("lost", e))?;
            total = per_cpu.iter().fold(total, |a, v| a.saturating_add(*v));
        }
        Ok(total)
    }

    /// Records of one session slot the kernel could not put in the ring
    /// buffer, since the slot was last given to a session
    /// ([`Monitor::add_session`] starts it at 0).
    pub fn lost_events_in(&self, slot: u32) -> Result<u64, MonitorError> {
        if slot >= MAX_SLOTS {
            return Err(MonitorError::Config(format!(
                "session slot {slot} is out of range (0..{MAX_SLOTS})"
            )));
        }
        self.lost_at(slot)
    }

    /// Records lost for tasks in no session slot (a task of an attached
    /// cgroup whose slot was not set up yet, or already removed).
    pub fn lost_events_unattributed(&self) -> Result<u64, MonitorError> {
        self.lost_at(events::LOST_UNKNOWN)
    }

    fn lost_at(&self, index: u32) -> Result<u64, MonitorError> {
        let per_cpu = self.lost.get(&index, 0).map_err(|e| map_error("lost", e))?;
        Ok(per_cpu.iter().fold(0u64, |a, v| a.saturating_add(*v)))
    }

    /// Zero a slot's lost counters, so that a new session's count is its own.
    fn reset_lost(&mut self, slot: u32) -> Result<(), MonitorError> {
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| map_error("lost", e))?;
        let zeros = aya::maps::PerCpuValues::try_from(vec![0u64; cpus])
            .map_err(|e| map_error("lost", e))?;
        self.lost
            .set(slot, zeros, 0)
            .map_err(|e| map_error("lost", e))
    }

    /// The next event (see [`EventStream::next_event`]).
    pub async fn next_event(&mut self) -> Result<Event, MonitorError> {
        match self.stream.as_mut() {
            Some(s) => s.next_event().await,
            None => Err(MonitorError::StreamTaken),
        }
    }

    /// An event if one is waiting, without blocking.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.stream.as_mut().and_then(EventStream::try_next_event)
    }

    /// Move the event stream out, to read it in its own task while this
    /// handle keeps updating rules. Returns None the second time.
    pub fn take_event_stream(&mut self) -> Option<EventStream> {
        self.stream.take()
    }

    /// The cgroup directories the network programs are attached to.
    pub fn attached_cgroups(&self) -> &[PathBuf] {
        &self.attached
    }
}

fn remove_key<K: aya::Pod>(
    map: &mut BpfHashMap<MapData, K, u32>,
    k: &K,
    name: &'static str,
) -> Result<(), MonitorError> {
    match map.remove(k) {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(e) => Err(map_error(name, e)),
    }
}

/// Bring a slot's part of a path trie to `new`: insert first, then remove
/// what is stale. Prefix lengths in `new` count the path only; the slot's
/// 32 bits are added here.
fn sync_paths(
    trie: &mut LpmTrie<MapData, PathKeyData, u32>,
    slot: u32,
    current: &mut HashSet<(u32, PathData)>,
    new: HashSet<(u32, PathData)>,
    name: &'static str,
) -> Result<(), MonitorError> {
    let key = |bits: u32, path: PathData| Key::new(32 + bits, PathKeyData { slot, path });
    // `current` is kept equal to what the map holds, even on an error, so
    // that nothing inserted is ever forgotten (and left in force).
    let add: Vec<(u32, PathData)> = new.difference(current).copied().collect();
    for (bits, data) in add {
        trie.insert(&key(bits, data), 1, 0)
            .map_err(|e| map_error(name, e))?;
        current.insert((bits, data));
    }
    let stale: Vec<(u32, PathData)> = current.difference(&new).copied().collect();
    for (bits, data) in stale {
        match trie.remove(&key(bits, data)) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_error(name, e)),
        }
        current.remove(&(bits, data));
    }
    Ok(())
}

/// [`sync_paths`] for the network trie (prefix lengths count from proto).
fn sync_net(
    trie: &mut LpmTrie<MapData, NetKeyData, u32>,
    slot: u32,
    current: &mut HashSet<(u32, NetData)>,
    new: HashSet<(u32, NetData)>,
) -> Result<(), MonitorError> {
    let key = |bits: u32, net: NetData| Key::new(32 + bits, NetKeyData { slot, net });
    let add: Vec<(u32, NetData)> = new.difference(current).copied().collect();
    for (bits, data) in add {
        trie.insert(&key(bits, data), 1, 0)
            .map_err(|e| map_error("net_allow", e))?;
        current.insert((bits, data));
    }
    let stale: Vec<(u32, NetData)> = current.difference(&new).copied().collect();
    for (bits, data) in stale {
        match trie.remove(&key(bits, data)) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(map_error("net_allow", e)),
        }
        current.remove(&(bits, data));
    }
    Ok(())
}
