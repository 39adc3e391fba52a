//! fork + confine + exec, with nothing but raw system calls between fork and
//! exec (no allocation, no locks: the parent may have other threads).
//!
//! The child waits on a gate pipe until the parent has placed it in its
//! cgroup (and, with the monitor, registered its pid); failures after fork
//! come back through a close-on-exec error pipe as (stage, errno).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use seccompiler::BpfProgram;

/// Everything the child needs, prepared before fork.
#[derive(Debug)]
pub struct ChildSpec {
    /// Absolute path of the program.
    pub program: CString,
    /// argv, argv[0] included.
    pub argv: Vec<CString>,
    /// Complete environment, `NAME=value`.
    pub envp: Vec<CString>,
    /// uid, gid and supplementary groups to switch to.
    pub ids: Option<Ids>,
    /// A Landlock ruleset fd to restrict the child with.
    pub landlock: Option<OwnedFd>,
    /// seccomp filters, installed in order.
    pub seccomp: Vec<BpfProgram>,
    /// Highest capability number of the kernel.
    pub cap_last: u32,
    /// Descriptors to become the agent's stdin, stdout and stderr (the
    /// daemon's caller passes its own); None = inherit ours.
    pub stdio: Option<[OwnedFd; 3]>,
    /// Directory to start in (the daemon's caller's); None = ours.
    pub cwd: Option<CString>,
}

/// Credentials for `sandbox.user`.
#[derive(Debug, Clone)]
pub struct Ids {
    /// User id.
    pub uid: libc::uid_t,
    /// Primary group id.
    pub gid: libc::gid_t,
    /// Supplementary groups.
    pub groups: Vec<libc::gid_t>,
}

/// The step of the child's setup that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    /// prctl(PR_SET_PDEATHSIG).
    DeathSignal = 1,
    /// Marking descriptors close-on-exec.
    CloseFds = 2,
    /// PR_SET_SECUREBITS.
    Securebits = 3,
    /// Emptying the bounding set.
    BoundingSet = 4,
    /// Clearing ambient capabilities.
    Ambient = 5,
    /// setgroups/setresgid/setresuid.
    Ids = 6,
    /// capset to the empty set.
    Capabilities = 7,
    /// PR_SET_NO_NEW_PRIVS.
    NoNewPrivs = 8,
    /// landlock_restrict_self.
    Landlock = 9,
    /// Installing the seccomp filters.
    Seccomp = 10,
    /// execve.
    Exec = 11,
    /// chdir to the caller's working directory.
    Chdir = 12,
}

impl Stage {
    fn from_u8(v: u8) -> Option<Stage> {
        use Stage::*;
        [
            DeathSignal,
            CloseFds,
            Securebits,
            BoundingSet,
            Ambient,
            Ids,
            Capabilities,
            NoNewPrivs,
            Landlock,
            Seccomp,
            Exec,
            Chdir,
        ]
        .into_iter()
        .find(|s| *s as u8 == v)
    }

    /// What the step does, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Stage::DeathSignal => "set the parent-death signal",
            Stage::CloseFds => "close inherited file descriptors",
            Stage::Securebits => "lock the securebits",
            Stage::BoundingSet => "empty the capability bounding set",
            Stage::Ambient => "clear ambient capabilities",
            Stage::Ids => "switch to sandbox.user",
            Stage::Capabilities => "drop all capabilities",
            Stage::NoNewPrivs => "set no_new_privs",
            Stage::Landlock => "apply the Landlock ruleset",
            Stage::Seccomp => "install the seccomp filter",
            Stage::Exec => "execute",
            Stage::Chdir => "enter the working directory",
        }
    }
}

/// Errors of the launch.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A system call in the parent failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// Cause.
        source: io::Error,
    },
    /// The child reported a failed setup step.
    #[error("could not {}: {}", .stage.describe(), io::Error::from_raw_os_error(*.errno))]
    Child {
        /// The step.
        stage: Stage,
        /// errno.
        errno: i32,
    },
    /// The child died before exec without a report.
    #[error("the agent process died during setup")]
    Vanished,
}

fn sys(what: &'static str) -> LaunchError {
    LaunchError::Sys {
        what,
        source: io::Error::last_os_error(),
    }
}

fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(sys("pipe2"));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A forked child waiting at its gate.
#[derive(Debug)]
pub struct GatedChild {
    /// Its pid.
    pub pid: libc::pid_t,
    /// Born in its cgroup v2 directory (clone3 CLONE_INTO_CGROUP).
    pub in_cgroup: bool,
    gate: Option<OwnedFd>,
    errors: OwnedFd,
}

impl GatedChild {
    /// Let the child run its setup and exec; returns once it has exec'd, or
    /// with the step that failed.
    pub fn release(mut self) -> Result<libc::pid_t, LaunchError> {
        if let Some(gate) = self.gate.take() {
            let b = [1u8];
            // SAFETY: writing one byte from a live buffer to our pipe.
            let n = unsafe { libc::write(gate.as_raw_fd(), b.as_ptr().cast(), 1) };
            if n != 1 {
                return Err(sys("release the agent"));
            }
        }
        let mut buf = [0u8; 5];
        let mut got = 0;
        while got < buf.len() {
            // SAFETY: reading into the unfilled tail of a live buffer.
            let n = unsafe {
                libc::read(
                    self.errors.as_raw_fd(),
                    buf[got..].as_mut_ptr().cast(),
                    buf.len() - got,
                )
            };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(sys("read the agent's setup status"));
            }
            if n == 0 {
                break;
            }
            got += n as usize;
        }
        match got {
            0 => Ok(self.pid),
            5 => {
                let errno = i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]]);
                match Stage::from_u8(buf[0]) {
                    Some(stage) => Err(LaunchError::Child { stage, errno }),
                    None => Err(LaunchError::Vanished),
                }
            }
            _ => Err(LaunchError::Vanished),
        }
    }

    /// Abort: the child sees EOF on its gate and exits without running.
    pub fn abort(self) {
        // Drop does it.
    }
}

/// A child never released (the caller returned early) is killed and
/// reaped, not left waiting at its gate or as a zombie.
impl Drop for GatedChild {
    fn drop(&mut self) {
        if self.gate.take().is_some() {
            // SAFETY: signalling and reaping our own child, still gated.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;

/// Pointers into `ChildSpec`, built before fork so the child allocates nothing.
struct Prepared<'a> {
    spec: &'a ChildSpec,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    fprogs: Vec<libc::sock_fprog>,
}

#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(2), or, given a cgroup v2 directory fd, clone3 with
/// CLONE_INTO_CGROUP: the child is born in its cgroup. Moving a running
/// process by writing cgroup.procs takes the global threadgroup lock for
/// writing (an RCU grace period, tens of milliseconds on a busy host);
/// being born there costs nothing extra. Returns the pid (0 in the child)
/// and whether the child is already in the cgroup.
///
/// # Safety
/// Same contract as fork: the child may only make async-signal-safe calls.
unsafe fn fork_into(cgroup: Option<RawFd>) -> (libc::pid_t, bool) {
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: libc::SIGCHLD as u64,
            stack: 0,
            stack_size: 0,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: fd as u64,
        };
        let r = libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        );
        if r >= 0 {
            return (r as libc::pid_t, true);
        }
        // ENOSYS / E2BIG / EINVAL: an older kernel; place it the slow way.
    }
    (libc::fork(), false)
}

/// Fork the agent; it blocks at its gate until [`GatedChild::release`].
/// With `cgroup` (an fd of its cgroup v2 directory) it is born there;
/// [`GatedChild::in_cgroup`] says whether that worked.
pub fn spawn_gated(spec: &ChildSpec, cgroup: Option<RawFd>) -> Result<GatedChild, LaunchError> {
    let mut argv: Vec<*const libc::c_char> = spec.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = spec.envp.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let fprogs = spec
        .seccomp
        .iter()
        .map(|p| libc::sock_fprog {
            len: p.len() as u16,
            filter: p.as_ptr() as *mut libc::sock_filter,
        })
        .collect();
    let prepared = Prepared {
        spec,
        argv,
        envp,
        fprogs,
    };
    let (gate_r, gate_w) = pipe_cloexec()?;
    let (err_r, err_w) = pipe_cloexec()?;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child runs only async-signal-safe system calls on memory
    // prepared above (see child_main) and never returns.
    let (pid, in_cgroup) = unsafe { fork_into(cgroup) };
    if pid < 0 {
        return Err(sys("fork"));
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked child.
        unsafe { child_main(&prepared, gate_r.as_raw_fd(), err_w.as_raw_fd(), parent) }
    }
    drop(gate_r);
    drop(err_w);
    Ok(GatedChild {
        pid,
        in_cgroup,
        gate: Some(gate_w),
        errors: err_r,
    })
}

/// Report a failed step to the parent and exit.
///
/// # Safety
/// Only called in the forked child.
unsafe fn fail(err_fd: RawFd, stage: Stage, errno: i32) -> ! {
    let e = errno.to_ne_bytes();
    let msg = [stage as u8, e[0], e[1], e[2], e[3]];
    libc::write(err_fd, msg.as_ptr().cast(), msg.len());
    libc::_exit(125)
}

unsafe fn errno() -> i32 {
    *libc::__errno_location()
}

/// Mark every descriptor from 3 up close-on-exec.
unsafe fn cloexec_from_3() -> bool {
    if libc::syscall(
        libc::SYS_close_range,
        3u32,
        u32::MAX,
        libc::CLOSE_RANGE_CLOEXEC,
    ) == 0
    {
        return true;
    }
    // Kernels before 5.11: walk the table.
    let mut rl: libc::rlimit = std::mem::zeroed();
    let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
        rl.rlim_cur.min(65536) as i32
    } else {
        4096
    };
    for fd in 3..max {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    true
}

/// Reset what signal state survives exec: the parent blocks signals for its
/// signalfd, and Rust ignores SIGPIPE.
unsafe fn reset_signals() {
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    for sig in 1..libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

unsafe fn child_main(p: &Prepared, gate: RawFd, err: RawFd, parent: libc::pid_t) -> ! {
    let spec = p.spec;
    reset_signals();
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
        fail(err, Stage::DeathSignal, errno());
    }
    // The parent may have died before PDEATHSIG was armed.
    if libc::getppid() != parent {
        libc::_exit(125);
    }
    let mut b = [0u8; 1];
    loop {
        let n = libc::read(gate, b.as_mut_ptr().cast(), 1);
        if n == 1 {
            break;
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        // The parent gave up (EOF): never run unconfined or unplaced.
        libc::_exit(125);
    }
    libc::close(gate);
    if let Some(stdio) = &spec.stdio {
        // The passed descriptors are all >= 3 (0-2 are the daemon's own),
        // so no dup2 here overwrites one still to be copied.
        for (target, fd) in stdio.iter().enumerate() {
            if libc::dup2(fd.as_raw_fd(), target as RawFd) < 0 {
                fail(err, Stage::CloseFds, errno());
            }
        }
    }
    if let Some(dir) = &spec.cwd {
        if libc::chdir(dir.as_ptr()) != 0 {
            fail(err, Stage::Chdir, errno());
        }
    }
    if !cloexec_from_3() {
        fail(err, Stage::CloseFds, errno());
    }
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0) != 0 {
        fail(err, Stage::Securebits, errno());
    }
    for cap in 0..=spec.cap_last {
        if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
            && errno() != libc::EINVAL
        {
            fail(err, Stage::BoundingSet, errno());
        }
    }
    if libc::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
        0,
        0,
    ) != 0
    {
        fail(err, Stage::Ambient, errno());
    }
    if let Some(ids) = &spec.ids {
        // Raw system calls: glibc's wrappers broadcast credential changes to
        // every thread it believes exists, and after a raw clone3 its thread
        // list is the parent's, so they would wait forever.
        if libc::syscall(libc::SYS_setgroups, ids.groups.len(), ids.groups.as_ptr()) != 0
            || libc::syscall(libc::SYS_setresgid, ids.gid, ids.gid, ids.gid) != 0
            || libc::syscall(libc::SYS_setresuid, ids.uid, ids.uid, ids.uid) != 0
        {
            fail(err, Stage::Ids, errno());
        }
    }
    let hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    if libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) != 0 {
        fail(err, Stage::Capabilities, errno());
    }
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
        fail(err, Stage::NoNewPrivs, errno());
    }
    if let Some(fd) = &spec.landlock {
        if libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) != 0 {
            fail(err, Stage::Landlock, errno());
        }
    }
    for prog in &p.fprogs {
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            prog as *const libc::sock_fprog,
        ) != 0
        {
            fail(err, Stage::Seccomp, errno());
        }
    }
    libc::execve(spec.program.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
    fail(err, Stage::Exec, errno())
}

/// A process outside the agent's cgroup that kills the whole tree when
/// shieldd dies by any means, SIGKILL included: it blocks reading a pipe
/// only shieldd holds open, and at EOF writes `cgroup.kill`.
#[derive(Debug)]
pub struct Watchdog {
    /// Its pid.
    pub pid: libc::pid_t,
    /// Our end of the pipe; closing it (or dying) fires the watchdog.
    pub lifeline: OwnedFd,
}

/// Start the watchdog for a session whose `cgroup.kill` is open as
/// `kill_fd`; after the kill it removes `dirs` (the session's cgroup
/// directories, v2 first) once they are empty.
pub fn spawn_watchdog(kill_fd: &OwnedFd, dirs: &[CString]) -> Result<Watchdog, LaunchError> {
    let dir_ptrs: Vec<*const libc::c_char> = dirs.iter().map(|d| d.as_ptr()).collect();
    let (life_r, life_w) = pipe_cloexec()?;
    // SAFETY: the child only makes async-signal-safe system calls on fds and
    // constants, then _exit()s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys("fork the watchdog"));
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked watchdog child.
        unsafe {
            watchdog_main(
                life_r.as_raw_fd(),
                kill_fd.as_raw_fd(),
                life_w.as_raw_fd(),
                &dir_ptrs,
            )
        }
    }
    drop(life_r);
    Ok(Watchdog {
        pid,
        lifeline: life_w,
    })
}

unsafe fn watchdog_main(
    life: RawFd,
    kill: RawFd,
    life_w: RawFd,
    dirs: &[*const libc::c_char],
) -> ! {
    libc::close(life_w);
    reset_signals();
    // Out of the terminal's process group: a Ctrl-C meant for shieldd must
    // not take the watchdog first.
    libc::setsid();
    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
    if null >= 0 {
        for fd in 0..3 {
            if fd != life && fd != kill {
                libc::dup2(null, fd);
            }
        }
    }
    // Keep only the lifeline and cgroup.kill: holding the agent's stdout
    // pipe open would keep a reader waiting after shieldd exits.
    let (lo, hi) = (life.min(kill), life.max(kill));
    let close = |a: RawFd, b: u32| {
        if a >= 3 && (a as u32) <= b {
            libc::syscall(libc::SYS_close_range, a as u32, b, 0u32);
        }
    };
    close(3, (lo - 1).max(0) as u32);
    close(lo + 1, (hi - 1).max(0) as u32);
    close(hi + 1, u32::MAX);
    let mut b = [0u8; 16];
    loop {
        let n = libc::read(life, b.as_mut_ptr().cast(), b.len());
        if n > 0 || (n < 0 && errno() == libc::EINTR) {
            continue;
        }
        break;
    }
    let one = b"1";
    libc::write(kill, one.as_ptr().cast(), 1);
    // A cgroup can be removed once its last task is gone (EBUSY until then).
    // After a normal exit shieldd has removed them already (ENOENT).
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 5_000_000,
    };
    for d in dirs {
        for _ in 0..1000 {
            if libc::rmdir(*d) == 0 || errno() != libc::EBUSY {
                break;
            }
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
    }
    libc::_exit(0)
}

/// Wait for the watchdog after closing its lifeline.
pub fn reap(pid: libc::pid_t) {
    // SAFETY: reaping our own child; status pointer may be null.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}
