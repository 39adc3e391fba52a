//! fork + confine + exec, with nothing but raw system calls between fork and
//! exec (no allocation, no locks: the parent may have other threads).
//!
//! The child places itself in its cgroups and confines itself at once, in
//! parallel with the parent's own setup, then waits on a gate pipe just
//! before exec until the parent has (with the monitor) registered its pid
//! and is ready; failures after fork come back through a close-on-exec
//! error pipe as (stage, errno).

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
    /// A second Landlock layer, applied after `landlock` (the session's
    /// own rules when the shared ruleset leaves them out).
    pub landlock_own: Option<OwnedFd>,
    /// seccomp filters, installed in order.
    pub seccomp: Vec<BpfProgram>,
    /// Highest capability number of the kernel.
    pub cap_last: u32,
    /// Descriptors to become the agent's stdin, stdout and stderr (the
    /// daemon's caller passes its own); None = inherit ours.
    pub stdio: Option<[OwnedFd; 3]>,
    /// Directory to start in (the daemon's caller's); None = ours.
    pub cwd: Option<CString>,
    /// The `tasks` files of the session's cgroup v1 directories, open for
    /// writing: the child moves itself into each before its gate opens.
    pub cgroup_tasks: Vec<OwnedFd>,
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
    /// Moving into the session's cgroup v1 directories.
    Cgroup = 13,
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
            Cgroup,
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
            Stage::Cgroup => "enter the session's cgroup",
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

/// A forked child waiting at its gate. It may share our memory (see
/// [`spawn_gated`]): what it reads (`ctx`, the spec it borrows) and its
/// stack stay alive until it has exec'd or exited.
pub struct GatedChild<'a> {
    /// Its pid.
    pub pid: libc::pid_t,
    /// Born in its cgroup v2 directory (clone3 CLONE_INTO_CGROUP).
    pub in_cgroup: bool,
    gate: Option<OwnedFd>,
    errors: OwnedFd,
    // Dropped after Drop::drop has made sure the child is gone or exec'd.
    _ctx: Box<ChildCtx<'a>>,
    _stack: Option<Stack>,
}

impl std::fmt::Debug for GatedChild<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedChild")
            .field("pid", &self.pid)
            .field("in_cgroup", &self.in_cgroup)
            .finish()
    }
}

impl GatedChild<'_> {
    /// Let the child run its setup and exec; returns once it has exec'd, or
    /// with the step that failed.
    pub fn release(mut self) -> Result<libc::pid_t, LaunchError> {
        let mut gate_err = None;
        if let Some(gate) = self.gate.take() {
            let b = [1u8];
            // SAFETY: writing one byte from a live buffer to our pipe.
            let n = unsafe { libc::write(gate.as_raw_fd(), b.as_ptr().cast(), 1) };
            if n != 1 {
                // A child that failed before its gate (placement or
                // confinement) has exited (EPIPE): its report says why.
                gate_err = Some(sys("release the agent"));
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
        if got != 0 {
            // It failed before exec and is exiting: it may still be running
            // on our memory until it has, so wait for it here.
            // SAFETY: reaping our own child; status pointer may be null.
            unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
        }
        match got {
            0 => match gate_err {
                // Not released, and no report: it may still be gated.
                Some(e) => {
                    // SAFETY: killing and reaping our own gated child.
                    unsafe {
                        libc::kill(self.pid, libc::SIGKILL);
                        libc::waitpid(self.pid, std::ptr::null_mut(), 0);
                    }
                    Err(e)
                }
                None => Ok(self.pid),
            },
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
impl Drop for GatedChild<'_> {
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

/// Pointers into `ChildSpec` and the pipe ends, built before the clone so
/// the child allocates nothing.
struct ChildCtx<'a> {
    spec: &'a ChildSpec,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    fprogs: Vec<libc::sock_fprog>,
    gate: RawFd,
    // Our copy of the gate's write end, closed first thing in the child so
    // that the parent's death reads as EOF at the gate.
    gate_w: RawFd,
    err: RawFd,
    parent: libc::pid_t,
}

/// The child's own stack when it shares our memory (an anonymous mapping
/// with a guard page below it).
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

const STACK_LEN: usize = 256 * 1024;

impl Stack {
    fn new() -> Option<Stack> {
        // SAFETY: a fresh private anonymous mapping; no memory of ours is
        // touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: the lowest page of the mapping we just made becomes the
        // guard (an overflow faults instead of running into other memory).
        unsafe { libc::mprotect(base, 4096, libc::PROT_NONE) };
        Some(Stack {
            base,
            len: STACK_LEN,
        })
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in Stack::new, once the child
        // that ran on it has exec'd or exited (GatedChild's contract).
        unsafe { libc::munmap(self.base, self.len) };
    }
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

/// Start the agent; it blocks at its gate until [`GatedChild::release`].
/// With `cgroup` (an fd of its cgroup v2 directory) it is born there;
/// [`GatedChild::in_cgroup`] says whether that worked.
///
/// Where the architecture allows (x86_64, aarch64) the child shares our
/// memory until it execs (clone3 with CLONE_VM on a stack of its own, as
/// posix_spawn does, but without suspending us): copying the parent's page
/// tables at fork and tearing the copy down at exec cost the daemon about
/// 2 ms a launch. The child then makes raw system calls only (no libc
/// wrapper: they would write errno into our thread's TLS) and runs with
/// every signal blocked until it has reset all handlers to default (a
/// handler of ours must not run on its stack). Elsewhere: fork.
pub fn spawn_gated(spec: &ChildSpec, cgroup: Option<RawFd>) -> Result<GatedChild<'_>, LaunchError> {
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
    let (gate_r, gate_w) = pipe_cloexec()?;
    let (err_r, err_w) = pipe_cloexec()?;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let ctx = Box::new(ChildCtx {
        spec,
        argv,
        envp,
        fprogs,
        gate: gate_r.as_raw_fd(),
        gate_w: gate_w.as_raw_fd(),
        err: err_w.as_raw_fd(),
        parent,
    });
    let stack = if raw::SHARED_VM { Stack::new() } else { None };
    let (pid, in_cgroup) = match &stack {
        // SAFETY: the child runs child_entry on its own stack, reads only
        // `ctx` and the spec (kept alive by the GatedChild until it has
        // exec'd or exited) and makes raw system calls only.
        Some(st) => unsafe { clone_vm_into(cgroup, st, &ctx) },
        None => {
            // SAFETY: the child runs only async-signal-safe system calls on
            // memory prepared above (see child_main) and never returns.
            let r = unsafe { fork_into(cgroup) };
            if r.0 == 0 {
                // SAFETY: we are the freshly forked child.
                unsafe { child_main(&ctx) }
            }
            r
        }
    };
    if pid < 0 {
        return Err(sys("fork"));
    }
    drop(gate_r);
    drop(err_w);
    Ok(GatedChild {
        pid,
        in_cgroup,
        gate: Some(gate_w),
        errors: err_r,
        _ctx: ctx,
        _stack: stack,
    })
}

/// The child's entry on its own stack (CLONE_VM).
extern "C" fn child_entry(arg: *mut libc::c_void) -> ! {
    // SAFETY: `arg` is the ChildCtx passed by clone_vm_into, alive until
    // this child has exec'd or exited.
    unsafe { child_main(&*(arg as *const ChildCtx<'_>)) }
}

/// clone3(CLONE_VM [| CLONE_INTO_CGROUP]) running child_entry(ctx) on
/// `stack`; falls back to a plain CLONE_VM clone when the kernel refuses
/// the cgroup. Every signal is blocked around the call so none is handled
/// on the child's side before it has reset its handlers.
///
/// # Safety
/// `ctx` and `stack` must outlive the child's use of them (until it has
/// exec'd or exited).
unsafe fn clone_vm_into(
    cgroup: Option<RawFd>,
    stack: &Stack,
    ctx: &ChildCtx<'_>,
) -> (libc::pid_t, bool) {
    let mut all: libc::sigset_t = std::mem::zeroed();
    let mut old: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    let arg = ctx as *const ChildCtx<'_> as *mut libc::c_void;
    let mut args = CloneArgs {
        flags: libc::CLONE_VM as u64,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.base as u64,
        stack_size: stack.len as u64,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    let mut in_cgroup = false;
    let mut r = -1;
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
        r = raw::clone3(&args, child_entry, arg);
        in_cgroup = r > 0;
    }
    if r < 0 {
        // No cgroup, or a kernel without CLONE_INTO_CGROUP: placed later.
        args.flags = libc::CLONE_VM as u64;
        args.cgroup = 0;
        r = raw::clone3(&args, child_entry, arg);
    }
    libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    if r < 0 {
        *libc::__errno_location() = (-r) as i32;
        return (-1, false);
    }
    (r as libc::pid_t, in_cgroup)
}

/// Report a failed step (`r` is the raw call's negative errno) to the
/// parent and exit.
///
/// # Safety
/// Only called in the child.
unsafe fn fail(err_fd: RawFd, stage: Stage, r: isize) -> ! {
    let e = (-r as i32).to_ne_bytes();
    let msg = [stage as u8, e[0], e[1], e[2], e[3]];
    raw::sys(
        libc::SYS_write,
        &[err_fd as usize, msg.as_ptr() as usize, msg.len()],
    );
    raw::exit(125)
}

/// Mark every descriptor from 3 up close-on-exec.
unsafe fn cloexec_from_3() -> isize {
    let r = raw::sys(
        libc::SYS_close_range,
        &[3, u32::MAX as usize, libc::CLOSE_RANGE_CLOEXEC as usize],
    );
    if r != -(libc::ENOSYS as isize) {
        return r;
    }
    // Kernels before 5.11: walk the table (up to a bound; descriptors of a
    // daemon are few and low).
    for fd in 3..65536usize {
        raw::sys(
            libc::SYS_fcntl,
            &[fd, libc::F_SETFD as usize, libc::FD_CLOEXEC as usize],
        );
    }
    0
}

/// The kernel's `struct sigaction` (x86_64 and the generic layout with
/// SA_RESTORER, as on aarch64).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// Reset what signal state survives exec: every handler to default (Rust
/// ignores SIGPIPE; the daemon has handlers), then unblock everything (the
/// parent blocks signals for its signalfd, and blocked all of them around
/// the clone).
unsafe fn reset_signals() {
    let dfl = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64usize {
        if sig != libc::SIGKILL as usize && sig != libc::SIGSTOP as usize {
            raw::sys(
                libc::SYS_rt_sigaction,
                &[sig, &dfl as *const KernelSigaction as usize, 0, 8],
            );
        }
    }
    let none = 0u64;
    raw::sys(
        libc::SYS_rt_sigprocmask,
        &[
            libc::SIG_SETMASK as usize,
            &none as *const u64 as usize,
            0,
            8,
        ],
    );
}

/// SIGKILL on the parent's death, then exit if the parent already died
/// (before the signal was armed). Raw system calls only, as in the child.
unsafe fn arm_death_signal(p: &ChildCtx<'_>) {
    let r = raw::sys(
        libc::SYS_prctl,
        &[libc::PR_SET_PDEATHSIG as usize, libc::SIGKILL as usize],
    );
    if r != 0 {
        fail(p.err, Stage::DeathSignal, r);
    }
    if raw::sys(libc::SYS_getppid, &[]) != p.parent as isize {
        raw::exit(125);
    }
}

unsafe fn child_main(p: &ChildCtx<'_>) -> ! {
    let (spec, gate, err) = (p.spec, p.gate, p.err);
    raw::sys(libc::SYS_close, &[p.gate_w as usize]);
    reset_signals();
    arm_death_signal(p);
    // Into the v1 hierarchies (the v2 one placed us at birth). Writing 0 to
    // `tasks` moves only the calling thread, the one thread of this
    // process, and the kernel then skips the global threadgroup lock that
    // a move by pid takes for writing (an RCU grace period, up to ~11 ms
    // here). Done before the gate, in parallel with the parent's setup; a
    // failure is reported and we exit, never running unplaced.
    for fd in &spec.cgroup_tasks {
        let zero = b"0";
        let r = raw::sys(
            libc::SYS_write,
            &[fd.as_raw_fd() as usize, zero.as_ptr() as usize, 1],
        );
        if r != 1 {
            fail(
                err,
                Stage::Cgroup,
                if r < 0 { r } else { -(libc::EIO as isize) },
            );
        }
    }
    if let Some(stdio) = &spec.stdio {
        // The passed descriptors are all >= 3 (0-2 are the daemon's own),
        // so no dup here overwrites one still to be copied (and dup3 never
        // sees equal descriptors).
        for (target, fd) in stdio.iter().enumerate() {
            let r = raw::sys(libc::SYS_dup3, &[fd.as_raw_fd() as usize, target, 0]);
            if r < 0 {
                fail(err, Stage::CloseFds, r);
            }
        }
    }
    if let Some(dir) = &spec.cwd {
        let r = raw::sys(libc::SYS_chdir, &[dir.as_ptr() as usize]);
        if r != 0 {
            fail(err, Stage::Chdir, r);
        }
    }
    let r = cloexec_from_3();
    if r != 0 {
        fail(err, Stage::CloseFds, r);
    }
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    let prctl = |a: libc::c_int, b: usize| raw::sys(libc::SYS_prctl, &[a as usize, b, 0, 0, 0]);
    let r = prctl(libc::PR_SET_SECUREBITS, bits as usize);
    if r != 0 {
        fail(err, Stage::Securebits, r);
    }
    for cap in 0..=spec.cap_last {
        let r = prctl(libc::PR_CAPBSET_DROP, cap as usize);
        if r != 0 && r != -(libc::EINVAL as isize) {
            fail(err, Stage::BoundingSet, r);
        }
    }
    let r = raw::sys(
        libc::SYS_prctl,
        &[
            libc::PR_CAP_AMBIENT as usize,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as usize,
            0,
            0,
            0,
        ],
    );
    if r != 0 {
        fail(err, Stage::Ambient, r);
    }
    if let Some(ids) = &spec.ids {
        // Raw system calls: glibc's wrappers broadcast credential changes to
        // every thread it believes exists, and after a raw clone3 its thread
        // list is the parent's, so they would wait forever.
        for (nr, args) in [
            (
                libc::SYS_setgroups,
                [ids.groups.len(), ids.groups.as_ptr() as usize, 0],
            ),
            (
                libc::SYS_setresgid,
                [ids.gid as usize, ids.gid as usize, ids.gid as usize],
            ),
            (
                libc::SYS_setresuid,
                [ids.uid as usize, ids.uid as usize, ids.uid as usize],
            ),
        ] {
            let r = raw::sys(nr, &args);
            if r != 0 {
                fail(err, Stage::Ids, r);
            }
        }
        // A change of uid clears the parent-death signal, and we still
        // wait at the gate: arm it again.
        arm_death_signal(p);
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
    let r = raw::sys(
        libc::SYS_capset,
        &[&hdr as *const CapHeader as usize, data.as_ptr() as usize],
    );
    if r != 0 {
        fail(err, Stage::Capabilities, r);
    }
    let r = prctl(libc::PR_SET_NO_NEW_PRIVS, 1);
    if r != 0 {
        fail(err, Stage::NoNewPrivs, r);
    }
    for fd in spec.landlock.iter().chain(spec.landlock_own.iter()) {
        let r = raw::sys(
            libc::SYS_landlock_restrict_self,
            &[fd.as_raw_fd() as usize, 0],
        );
        if r != 0 {
            fail(err, Stage::Landlock, r);
        }
    }
    for prog in &p.fprogs {
        let r = raw::sys(
            libc::SYS_seccomp,
            &[
                libc::SECCOMP_SET_MODE_FILTER as usize,
                0,
                prog as *const libc::sock_fprog as usize,
            ],
        );
        if r != 0 {
            fail(err, Stage::Seccomp, r);
        }
    }
    // Confined now; the gate opens once the parent has registered us
    // (monitor) and is ready: until then nothing of the agent runs. The
    // setup above overlaps the parent's (socket, watchdog).
    let mut b = [0u8; 1];
    loop {
        let n = raw::sys(libc::SYS_read, &[gate as usize, b.as_mut_ptr() as usize, 1]);
        if n == 1 {
            break;
        }
        if n == -(libc::EINTR as isize) {
            continue;
        }
        // The parent gave up (EOF): never run the agent.
        raw::exit(125);
    }
    raw::sys(libc::SYS_close, &[gate as usize]);
    let r = raw::sys(
        libc::SYS_execve,
        &[
            spec.program.as_ptr() as usize,
            p.argv.as_ptr() as usize,
            p.envp.as_ptr() as usize,
        ],
    );
    fail(err, Stage::Exec, r)
}

/// System calls without libc: they return `-errno` and touch no
/// thread-local state, which a child sharing our memory (and our thread's
/// TLS) must not write. Written here because libc's `syscall` sets errno
/// and no crate offers a clone3 that switches stacks.
mod raw {
    use super::CloneArgs;

    /// Whether [`clone3`] (a child on its own stack in our memory) exists
    /// on this architecture.
    pub const SHARED_VM: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

    /// A system call with up to six arguments (missing ones are 0).
    ///
    /// # Safety
    /// As the system call itself.
    #[inline(always)]
    pub unsafe fn sys(nr: libc::c_long, args: &[usize]) -> isize {
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        imp(nr as usize, a(0), a(1), a(2), a(3), a(4), a(5))
    }

    /// exit_group without running anything of ours.
    ///
    /// # Safety
    /// Ends the process.
    pub unsafe fn exit(code: i32) -> ! {
        loop {
            sys(libc::SYS_exit_group, &[code as usize]);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn imp(nr: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
        let r: isize;
        // SAFETY: the caller's; the kernel clobbers rcx and r11.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => r,
                in("rdi") a, in("rsi") b, in("rdx") c,
                in("r10") d, in("r8") e, in("r9") f,
                lateout("rcx") _, lateout("r11") _,
                options(nostack),
            );
        }
        r
    }

    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    unsafe fn imp(nr: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
        let r: isize;
        // SAFETY: the caller's.
        unsafe {
            core::arch::asm!(
                "svc #0",
                in("x8") nr,
                inlateout("x0") a as isize => r,
                in("x1") b, in("x2") c, in("x3") d, in("x4") e, in("x5") f,
                options(nostack),
            );
        }
        r
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    unsafe fn imp(nr: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
        // Only the forked child gets here (no shared memory): errno is its own.
        // SAFETY: the caller's.
        let r = unsafe { libc::syscall(nr as libc::c_long, a, b, c, d, e, f) };
        if r < 0 {
            // SAFETY: reading this thread's errno.
            -(unsafe { *libc::__errno_location() } as isize)
        } else {
            r as isize
        }
    }

    /// clone3 whose child calls `f(arg)` on the stack given in `args`
    /// (never returning); the parent gets the pid or `-errno`.
    ///
    /// # Safety
    /// `args` must describe a valid stack; `f` must never return and may
    /// only use that stack and memory that outlives its use.
    #[cfg(target_arch = "x86_64")]
    pub unsafe fn clone3(
        args: &CloneArgs,
        f: extern "C" fn(*mut libc::c_void) -> !,
        arg: *mut libc::c_void,
    ) -> isize {
        let r: isize;
        // SAFETY: the caller's. The child starts with rsp at the top of its
        // (16-byte aligned) stack and calls f, which never returns.
        unsafe {
            core::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "mov rdi, r13",
                "call r12",
                "ud2",
                "2:",
                inlateout("rax") libc::SYS_clone3 as isize => r,
                in("rdi") args as *const CloneArgs,
                in("rsi") std::mem::size_of::<CloneArgs>(),
                in("r12") f as usize,
                in("r13") arg,
                lateout("rcx") _, lateout("r11") _,
                options(nostack),
            );
        }
        r
    }

    /// See the x86_64 version.
    ///
    /// # Safety
    /// As there.
    #[cfg(target_arch = "aarch64")]
    pub unsafe fn clone3(
        args: &CloneArgs,
        f: extern "C" fn(*mut libc::c_void) -> !,
        arg: *mut libc::c_void,
    ) -> isize {
        let r: isize;
        // SAFETY: the caller's. The child starts with sp at the top of its
        // (16-byte aligned) stack and branches to f, which never returns.
        unsafe {
            core::arch::asm!(
                "svc #0",
                "cbnz x0, 2f",
                "mov x0, x21",
                "blr x20",
                "brk #0",
                "2:",
                in("x8") libc::SYS_clone3,
                inlateout("x0") args as *const CloneArgs as isize => r,
                in("x1") std::mem::size_of::<CloneArgs>(),
                in("x20") f as usize,
                in("x21") arg,
                options(nostack),
            );
        }
        r
    }

    /// Not used where SHARED_VM is false.
    ///
    /// # Safety
    /// Never call it.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub unsafe fn clone3(
        _args: &CloneArgs,
        _f: extern "C" fn(*mut libc::c_void) -> !,
        _arg: *mut libc::c_void,
    ) -> isize {
        -(libc::ENOSYS as isize)
    }
}

/// A process outside the agent's cgroup that kills the whole tree when
/// shieldd dies by any means, SIGKILL included: it blocks reading a pipe
/// only shieldd holds open, and at EOF writes `cgroup.kill`.
///
/// Where the architecture allows it shares our memory (clone3 with
/// CLONE_VM, as the agent does until exec): a fork copied the page tables
/// of the whole 126 MB image and then made every page shieldd wrote
/// afterwards a copy-on-write fault. It runs on a mapping of its own that
/// also holds everything it reads, raw system calls only; the mapping is
/// unmapped only once it has been reaped (never while it may run).
#[derive(Debug)]
pub struct Watchdog {
    /// Its pid.
    pub pid: libc::pid_t,
    /// Our end of the pipe; closing it (or dying) fires the watchdog.
    pub lifeline: OwnedFd,
    /// Its stack and context (address, length).
    mem: (usize, usize),
}

/// The byte that tells the watchdog the session ended cleanly and its
/// cgroup directories are gone: it still writes `cgroup.kill` at EOF, but
/// removes nothing (a directory of that name may already be the next
/// session's).
const DONE: u8 = b'D';

/// Most cgroup directories a session has (v2 plus the v1 hierarchies).
const MAX_DIRS: usize = 8;

/// Most files the watchdog unlinks (the session's scan API socket).
const MAX_FILES: usize = 2;

/// What the watchdog reads, in its own mapping.
#[repr(C)]
struct WatchdogCtx {
    life: RawFd,
    kill: RawFd,
    life_w: RawFd,
    ndirs: usize,
    dirs: [*const libc::c_char; MAX_DIRS],
    nfiles: usize,
    files: [*const libc::c_char; MAX_FILES],
}

impl Watchdog {
    /// Fire it (close the lifeline) and wait until it has killed the tree
    /// and removed what is left of the cgroup directories.
    pub fn stop(self) {
        let Watchdog { pid, lifeline, mem } = self;
        drop(lifeline);
        reap(pid);
        unmap(mem);
    }

    /// The session ended and shieldd removed its cgroup directories
    /// itself: tell the watchdog so, and fire it. It then only writes
    /// `cgroup.kill` and exits, while shieldd finishes its own teardown;
    /// [`Released::reap`] collects it afterwards.
    pub fn release_clean(self) -> Released {
        let Watchdog { pid, lifeline, mem } = self;
        let done = [DONE];
        // SAFETY: writing one byte from a live buffer to our pipe end.
        unsafe { libc::write(lifeline.as_raw_fd(), done.as_ptr().cast(), 1) };
        drop(lifeline);
        Released { pid, mem }
    }
}

/// A fired watchdog still to be reaped (see [`Watchdog::release_clean`]).
/// Dropped without [`Released::reap`], its memory stays mapped for it.
#[derive(Debug)]
#[must_use = "reap the watchdog, or it stays a zombie"]
pub struct Released {
    pid: libc::pid_t,
    mem: (usize, usize),
}

impl Released {
    /// Wait for the watchdog's exit (already under way) and free its memory.
    pub fn reap(self) {
        reap(self.pid);
        unmap(self.mem);
    }
}

fn unmap((base, len): (usize, usize)) {
    if base != 0 {
        // SAFETY: the watchdog that ran on this mapping has been reaped.
        unsafe { libc::munmap(base as *mut libc::c_void, len) };
    }
}

/// Start the watchdog for a session whose `cgroup.kill` is open as
/// `kill_fd`; after the kill it removes `dirs` (the session's cgroup
/// directories, v2 first) once they are empty.
pub fn spawn_watchdog(kill_fd: &OwnedFd, dirs: &[CString]) -> Result<Watchdog, LaunchError> {
    spawn_watchdog_unlinking(kill_fd, dirs, &[])
}

/// [`spawn_watchdog`] that also unlinks `files` (at most two: the
/// session's socket) when shieldd dies or [`Watchdog::stop`] fires it; a
/// clean release ([`Watchdog::release_clean`]) leaves them to shieldd.
pub fn spawn_watchdog_unlinking(
    kill_fd: &OwnedFd,
    dirs: &[CString],
    files: &[CString],
) -> Result<Watchdog, LaunchError> {
    let (life_r, life_w) = pipe_cloexec()?;
    let stack = Stack::new().ok_or_else(|| sys("map the watchdog's stack"))?;
    let mem = (stack.base as usize, stack.len);
    // From here the mapping is the Watchdog's (unmapped only after a reap).
    std::mem::forget(stack);
    let Some(ctx) = write_ctx(
        mem,
        life_r.as_raw_fd(),
        kill_fd.as_raw_fd(),
        life_w.as_raw_fd(),
        dirs,
        files,
    ) else {
        unmap(mem);
        return Err(LaunchError::Sys {
            what: "lay out the watchdog",
            source: io::Error::from_raw_os_error(libc::E2BIG),
        });
    };
    // SAFETY: the child only reads `ctx` (in the mapping above, which
    // stays mapped while it runs) and makes raw system calls.
    let pid = unsafe { clone_watchdog(mem, ctx) };
    if pid < 0 {
        let e = sys("start the watchdog");
        unmap(mem);
        return Err(e);
    }
    drop(life_r);
    Ok(Watchdog {
        pid,
        lifeline: life_w,
        mem,
    })
}

/// Copy the descriptors and directory names into the watchdog's mapping,
/// just above its guard page (the stack grows down from the top).
fn write_ctx(
    (base, len): (usize, usize),
    life: RawFd,
    kill: RawFd,
    life_w: RawFd,
    dirs: &[CString],
    files: &[CString],
) -> Option<*const WatchdogCtx> {
    if dirs.len() > MAX_DIRS || files.len() > MAX_FILES {
        return None;
    }
    let start = base.checked_add(4096)?;
    // Keep at least half the mapping for the stack.
    let limit = base.checked_add(len / 2)?;
    let mut at = start.checked_add(std::mem::size_of::<WatchdogCtx>())?;
    let mut ptrs = [std::ptr::null::<libc::c_char>(); MAX_DIRS];
    let mut fptrs = [std::ptr::null::<libc::c_char>(); MAX_FILES];
    let slots = ptrs.iter_mut().zip(dirs).chain(fptrs.iter_mut().zip(files));
    for (slot, d) in slots {
        let bytes = d.as_bytes_with_nul();
        let end = at.checked_add(bytes.len())?;
        if end > limit {
            return None;
        }
        // SAFETY: [at, end) lies inside our fresh writable mapping, past
        // the context, and does not overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len()) };
        *slot = at as *const libc::c_char;
        at = end;
    }
    let ctx = WatchdogCtx {
        life,
        kill,
        life_w,
        ndirs: dirs.len(),
        dirs: ptrs,
        nfiles: files.len(),
        files: fptrs,
    };
    // SAFETY: `start` is page-aligned, writable and in our mapping, with
    // room for the context (checked above).
    unsafe { std::ptr::write(start as *mut WatchdogCtx, ctx) };
    Some(start as *const WatchdogCtx)
}

extern "C" fn watchdog_entry(arg: *mut libc::c_void) -> ! {
    // SAFETY: `arg` is the context clone_watchdog was given, in a mapping
    // that outlives this process.
    unsafe { watchdog_main(&*(arg as *const WatchdogCtx)) }
}

/// clone3(CLONE_VM) on the watchdog's own stack where the architecture
/// allows, else fork. Every signal is blocked around the call so no
/// handler of ours runs on the watchdog's side before it resets them.
/// Returns the pid or -1 (errno set).
///
/// # Safety
/// `ctx` must point into `mem`, which must stay mapped while the child runs.
unsafe fn clone_watchdog(mem: (usize, usize), ctx: *const WatchdogCtx) -> libc::pid_t {
    if !raw::SHARED_VM {
        let pid = libc::fork();
        if pid == 0 {
            watchdog_main(&*ctx);
        }
        return pid;
    }
    let mut all: libc::sigset_t = std::mem::zeroed();
    let mut old: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    let args = CloneArgs {
        flags: libc::CLONE_VM as u64,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: mem.0 as u64,
        stack_size: mem.1 as u64,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    let r = raw::clone3(&args, watchdog_entry, ctx as *mut libc::c_void);
    libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    if r < 0 {
        *libc::__errno_location() = (-r) as i32;
        return -1;
    }
    r as libc::pid_t
}

/// The watchdog: raw system calls only (it may share our memory and our
/// thread's TLS, where a libc wrapper would write errno).
unsafe fn watchdog_main(ctx: &WatchdogCtx) -> ! {
    let (life, kill) = (ctx.life, ctx.kill);
    raw::sys(libc::SYS_close, &[ctx.life_w as usize]);
    reset_signals();
    // Out of the terminal's process group: a Ctrl-C meant for shieldd must
    // not take the watchdog first.
    raw::sys(libc::SYS_setsid, &[]);
    let null = raw::sys(
        libc::SYS_openat,
        &[
            libc::AT_FDCWD as usize,
            c"/dev/null".as_ptr() as usize,
            libc::O_RDWR as usize,
        ],
    );
    if null >= 0 {
        for fd in 0..3 {
            if fd != life && fd != kill && fd as isize != null {
                raw::sys(libc::SYS_dup3, &[null as usize, fd as usize, 0]);
            }
        }
    }
    // Keep only the lifeline and cgroup.kill: holding the agent's stdout
    // pipe open would keep a reader waiting after shieldd exits.
    let (lo, hi) = (life.min(kill), life.max(kill));
    let close = |a: RawFd, b: RawFd| {
        let a = a.max(3);
        if a <= b {
            raw::sys(libc::SYS_close_range, &[a as usize, b as usize, 0]);
        }
    };
    close(3, lo - 1);
    close(lo + 1, hi - 1);
    raw::sys(
        libc::SYS_close_range,
        &[(hi + 1).max(3) as usize, u32::MAX as usize, 0],
    );
    let mut b = [0u8; 16];
    let mut done = false;
    loop {
        let n = raw::sys(
            libc::SYS_read,
            &[life as usize, b.as_mut_ptr() as usize, b.len()],
        );
        if n > 0 {
            done |= b.iter().take(n as usize).any(|&c| c == DONE);
            continue;
        }
        if n == -(libc::EINTR as isize) {
            continue;
        }
        break;
    }
    let one = b"1";
    raw::sys(libc::SYS_write, &[kill as usize, one.as_ptr() as usize, 1]);
    if done {
        raw::exit(0);
    }
    // shieldd died (or gave up on a clean end): nobody else removes the
    // session's socket file.
    for f in ctx.files.iter().take(ctx.nfiles) {
        raw::sys(
            libc::SYS_unlinkat,
            &[libc::AT_FDCWD as usize, *f as usize, 0],
        );
    }
    // A cgroup can be removed once its last task is gone (EBUSY until then).
    // After a normal exit shieldd has removed them already (ENOENT).
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 5_000_000,
    };
    for d in ctx.dirs.iter().take(ctx.ndirs) {
        for _ in 0..1000 {
            let r = raw::sys(
                libc::SYS_unlinkat,
                &[
                    libc::AT_FDCWD as usize,
                    *d as usize,
                    libc::AT_REMOVEDIR as usize,
                ],
            );
            if r != -(libc::EBUSY as isize) {
                break;
            }
            raw::sys(
                libc::SYS_nanosleep,
                &[&pause as *const libc::timespec as usize, 0],
            );
        }
    }
    raw::exit(0)
}

/// Wait for the watchdog after closing its lifeline.
pub fn reap(pid: libc::pid_t) {
    // SAFETY: reaping our own child; status pointer may be null.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cgroup_tasks: Vec<OwnedFd>) -> ChildSpec {
        ChildSpec {
            program: CString::from(c"/bin/true"),
            argv: vec![CString::from(c"true")],
            envp: Vec::new(),
            ids: None,
            landlock: None,
            landlock_own: None,
            seccomp: Vec::new(),
            cap_last: 0,
            stdio: None,
            cwd: None,
            cgroup_tasks,
        }
    }

    /// A child that cannot enter its cgroup reports it and never runs the
    /// program, though it fails before its gate (the release then meets a
    /// closed pipe and must still return the child's report).
    #[test]
    fn failed_cgroup_entry_is_reported_and_nothing_runs() {
        // Read-only: the child's write of "0" fails with EBADF.
        let ro = std::fs::File::open("/dev/null").map(OwnedFd::from);
        let Ok(ro) = ro else { return };
        let s = spec(vec![ro]);
        let child = match spawn_gated(&s, None) {
            Ok(c) => c,
            Err(e) => panic!("spawn: {e}"),
        };
        // Give it time to fail and exit before its gate.
        std::thread::sleep(std::time::Duration::from_millis(100));
        match child.release() {
            Err(LaunchError::Child { stage, errno }) => {
                assert_eq!(stage, Stage::Cgroup);
                assert_eq!(errno, libc::EBADF);
            }
            other => panic!("expected the cgroup stage to fail, got {other:?}"),
        }
    }

    /// The look-alike that must not fail: no v1 cgroup to enter.
    #[test]
    fn nothing_to_enter_reaches_exec() {
        let s = spec(Vec::new());
        let child = match spawn_gated(&s, None) {
            Ok(c) => c,
            Err(e) => panic!("spawn: {e}"),
        };
        let pid = child.pid;
        // Without root the capability steps may refuse; only a cgroup
        // failure would be this change's fault.
        match child.release() {
            Ok(p) => {
                assert_eq!(p, pid);
                let mut status = 0;
                // SAFETY: reaping our own child with a valid status pointer.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
            }
            Err(LaunchError::Child { stage, .. }) => assert_ne!(stage, Stage::Cgroup),
            Err(e) => panic!("release: {e}"),
        }
    }

    use crate::testing::root_or_skip;

    /// A session cgroup (v2 plus this host's v1 pids hierarchy, if any)
    /// holding a `sleep` that is not our child (it was started through a
    /// shell that exited), so only a kill can end it.
    fn session_with_sleeper(tag: &str) -> (super::super::cgroup::SessionCgroup, i32) {
        use super::super::cgroup::{Layout, SessionCgroup};
        let layout = Layout::discover().expect("cgroup layout");
        let limits = crate::policy::Limits {
            pids: Some(64),
            memory: None,
        };
        let session = format!("launch-test-{}-{tag}", std::process::id());
        let cg = SessionCgroup::create(&layout, &session, &limits, true).expect("cgroup");
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 300 >/dev/null 2>&1 & echo $!"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh");
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pid");
        cg.add(pid, false).expect("place the sleeper");
        (cg, pid)
    }

    /// Running (not a zombie, not gone).
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(s) => !s
                .rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    fn eventually(mut f: impl FnMut() -> bool) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        f()
    }

    fn exited(pid: i32) -> bool {
        let mut status = 0;
        // SAFETY: waitpid without blocking on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        r == pid || r < 0
    }

    fn dir_args(cg: &super::super::cgroup::SessionCgroup) -> Vec<CString> {
        cg.dirs()
            .map(|d| CString::new(d.as_os_str().as_encoded_bytes()).expect("path"))
            .collect()
    }

    /// The watchdog (sharing our memory) fires when its lifeline closes:
    /// the tree dies and every directory goes; `stop` returns only after it
    /// exited.
    #[test]
    fn watchdog_kills_the_tree_and_removes_the_dirs() {
        if !root_or_skip("watchdog_kills_the_tree_and_removes_the_dirs") {
            return;
        }
        let (mut cg, sleeper) = session_with_sleeper("fire");
        let dirs: Vec<std::path::PathBuf> = cg.dirs().cloned().collect();
        let kill = cg.open_kill_file().expect("cgroup.kill");
        let sock = sock_file("fire");
        let w =
            spawn_watchdog_unlinking(&kill, &dir_args(&cg), &[c_path(&sock)]).expect("watchdog");
        let pid = w.pid;
        assert!(alive(pid), "the watchdog waits on its lifeline");
        assert!(alive(sleeper));
        w.stop();
        assert!(!alive(sleeper), "the tree is killed");
        assert!(exited(pid), "stop reaped the watchdog");
        for d in &dirs {
            assert!(!d.exists(), "{} left behind", d.display());
        }
        assert!(!sock.exists(), "the session's socket is unlinked");
        let _ = cg.remove();
    }

    /// A file standing for the session's socket, made afresh.
    fn sock_file(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("shieldd-wd-{tag}-{}.sock", std::process::id()));
        std::fs::write(&p, b"").expect("socket stand-in");
        p
    }

    fn c_path(p: &std::path::Path) -> CString {
        CString::new(p.as_os_str().as_encoded_bytes()).expect("no NUL")
    }

    /// A clean release: the watchdog still kills (a process that somehow
    /// remained dies) but removes no directory (by then a directory of
    /// that name could be the next session's); reaped afterwards, it
    /// leaves no zombie.
    #[test]
    fn released_watchdog_kills_but_removes_nothing() {
        if !root_or_skip("released_watchdog_kills_but_removes_nothing") {
            return;
        }
        let (mut cg, sleeper) = session_with_sleeper("release");
        let dirs: Vec<std::path::PathBuf> = cg.dirs().cloned().collect();
        let kill = cg.open_kill_file().expect("cgroup.kill");
        let sock = sock_file("release");
        let w =
            spawn_watchdog_unlinking(&kill, &dir_args(&cg), &[c_path(&sock)]).expect("watchdog");
        let pid = w.pid;
        let released = w.release_clean();
        assert!(eventually(|| !alive(sleeper)), "the kill still lands");
        assert!(cg.wait_empty(std::time::Duration::from_secs(5)));
        // Give a wrongly removing watchdog the time to do it.
        std::thread::sleep(std::time::Duration::from_millis(50));
        for d in &dirs {
            assert!(d.exists(), "{} was removed", d.display());
        }
        assert!(
            sock.exists(),
            "a clean release leaves the socket to shieldd"
        );
        let _ = std::fs::remove_file(&sock);
        released.reap();
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_err(),
            "reaped, no zombie"
        );
        cg.remove().expect("remove");
        for d in &dirs {
            assert!(!d.exists(), "{} left behind", d.display());
        }
    }

    /// The watchdog must hold neither our stdout nor any other descriptor
    /// but its two: a reader of our output would otherwise wait for it.
    #[test]
    fn watchdog_keeps_only_its_two_descriptors() {
        if !root_or_skip("watchdog_keeps_only_its_two_descriptors") {
            return;
        }
        let (mut cg, _sleeper) = session_with_sleeper("fds");
        let kill = cg.open_kill_file().expect("cgroup.kill");
        let (_r, w_end) = pipe_cloexec().expect("pipe");
        let w = spawn_watchdog(&kill, &dir_args(&cg)).expect("watchdog");
        let fd_dir = format!("/proc/{}/fd", w.pid);
        let only_two = eventually(|| {
            std::fs::read_dir(&fd_dir)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                        .filter(|&fd| fd >= 3)
                        .count()
                        == 2
                })
                .unwrap_or(false)
        });
        drop(w_end);
        w.stop();
        let _ = cg.remove();
        assert!(
            only_two,
            "the watchdog kept more than its lifeline and cgroup.kill"
        );
    }
}
