//! `shieldd run`: prepare, launch, supervise, clean up, and return the
//! agent's exit status (SPEC section 1).

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::json;

use crate::audit::AuditLog;
use crate::policy::Policy;
use crate::sandbox::{self, cgroup, launch, Request, SetupError};

/// Everything `shieldd run` was asked.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The policy in force.
    pub policy: Policy,
    /// Where it came from (for events).
    pub policy_source: String,
    /// Command, session, user, degradations.
    pub request: Request,
    /// `--events FILE`.
    pub events: Option<PathBuf>,
    /// How long the agent has to exit after a forwarded SIGTERM/SIGINT
    /// before the tree is killed.
    pub grace: Duration,
}

/// How the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The agent exited with a status.
    Exited(i32),
    /// The agent died of a signal.
    Signaled(i32),
}

impl Outcome {
    /// Shell-style exit status: the code, or 128+N for signal N.
    pub fn exit_status(self) -> i32 {
        match self {
            Outcome::Exited(c) => c,
            Outcome::Signaled(s) => 128 + s,
        }
    }
}

fn warn(msg: &str) {
    eprintln!("shieldd: {msg}");
}

/// Run the agent; returns the exit status for `shieldd run`.
pub fn run(opts: RunOptions) -> i32 {
    let session = opts.request.session.clone();
    let mut audit = match &opts.events {
        Some(p) => match AuditLog::open(p, &session) {
            Ok(a) => Some(a),
            Err(e) => {
                warn(&format!("{e}"));
                return 125;
            }
        },
        None => None,
    };
    match supervise(&opts, audit.as_mut()) {
        Ok(outcome) => {
            let status = outcome.exit_status();
            if let Some(a) = audit.as_mut() {
                let sig = match outcome {
                    Outcome::Signaled(s) => json!(s),
                    Outcome::Exited(_) => json!(null),
                };
                if let Err(e) = a.record(
                    "session_end",
                    json!({"exit_status": status, "signal": sig}),
                    true,
                ) {
                    warn(&format!("{e}"));
                }
            }
            status
        }
        Err(e) => {
            warn(&format!("{e}"));
            if let Some(a) = audit.as_mut() {
                let _ = a.record(
                    "session_end",
                    json!({"exit_status": e.exit_code(), "error": e.to_string()}),
                    true,
                );
            }
            e.exit_code()
        }
    }
}

/// Removes the private temp dir however the session ends.
struct TmpGuard(PathBuf);
impl Drop for TmpGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn supervise(opts: &RunOptions, mut audit: Option<&mut AuditLog>) -> Result<Outcome, SetupError> {
    let req = &opts.request;
    let policy = &opts.policy;
    let t0 = Instant::now();
    let prepared = sandbox::prepare(policy, req)?;
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "prepared");
    let tmp_guard = TmpGuard(prepared.private_tmp.clone());
    for d in &prepared.degraded {
        warn(&format!("degraded (allowed by --allow-degraded): {d}"));
    }
    for n in &prepared.notes {
        tracing::info!("{n}");
    }

    let layout = cgroup::Layout::discover()?;
    let mut cg = cgroup::SessionCgroup::create(
        &layout,
        &req.session,
        &policy.sandbox.limits,
        req.degrade.contains(&sandbox::Degrade::CgroupLimits),
    )?;
    for m in &cg.missing_limits {
        warn(&format!(
            "degraded (allowed by --allow-degraded): cgroup-limits: limits.{m} not enforced"
        ));
    }
    let kill_fd = cg.open_kill_file()?;
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "cgroup created");

    // Signals are taken through a signalfd; block them before fork so none
    // is lost between fork and the supervision loop (the child unblocks).
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGCHLD,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| SetupError::Other(format!("cannot block signals: {e}")))?;
    let mut sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| SetupError::Other(format!("signalfd: {e}")))?;

    let dirs: Vec<std::ffi::CString> = cg
        .dirs()
        .filter_map(|d| std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).ok())
        .collect();
    let watchdog = launch::spawn_watchdog(&kill_fd, &dirs)?;
    let gated = match launch::spawn_gated(&prepared.child) {
        Ok(g) => g,
        Err(e) => {
            drop(watchdog.lifeline);
            launch::reap(watchdog.pid);
            return Err(e.into());
        }
    };
    let pid = gated.pid;
    if let Err(e) = cg.add(pid) {
        gated.abort();
        drop(watchdog.lifeline);
        launch::reap(watchdog.pid);
        return Err(e.into());
    }
    if let Some(a) = audit.as_mut() {
        let cmd: Vec<String> = req
            .command
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        let _ = a.record(
            "session_start",
            json!({
                "pid": pid,
                "ppid": std::process::id(),
                "exe": cmd.first(),
                "argv": cmd,
                "policy": policy.name,
                "policy_source": opts.policy_source,
                "cgroup": cg.v2_dir.display().to_string(),
                "degraded": prepared.degraded,
                "credentials": prepared.credentials,
            }),
            true,
        );
    }
    let started = Instant::now();
    if let Err(e) = gated.release() {
        // The child has exited; make sure nothing of it remains.
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        let _ = cg.remove();
        drop(watchdog.lifeline);
        launch::reap(watchdog.pid);
        return Err(annotate_exec_error(e, &prepared));
    }
    tracing::debug!(
        pid,
        setup_us = started.elapsed().as_micros() as u64,
        "agent started"
    );

    let outcome = wait_agent(pid, &mut sfd, &cg, opts.grace);
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "agent exited");
    // The agent is gone; whatever it left running goes with it.
    let _ = cg.remove();
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "cgroup removed");
    drop(watchdog.lifeline);
    launch::reap(watchdog.pid);
    drop(tmp_guard);
    let _ = mask.thread_unblock();
    Ok(outcome)
}

fn annotate_exec_error(e: launch::LaunchError, p: &sandbox::Prepared) -> SetupError {
    if let launch::LaunchError::Child {
        stage: launch::Stage::Exec,
        errno,
    } = e
    {
        let prog = p.child.program.to_string_lossy();
        if errno == libc::EACCES && p.child.landlock.is_some() {
            return SetupError::NotExecutable(format!(
                "cannot execute {prog}: permission denied by the policy (not under `exec.allow`, or under no `read` path when exec.allow is absent)"
            ));
        }
    }
    SetupError::Launch(e)
}

fn wait_agent(
    pid: i32,
    sfd: &mut SignalFd,
    cg: &cgroup::SessionCgroup,
    grace: Duration,
) -> Outcome {
    let mut deadline: Option<Instant> = None;
    let mut killed = false;
    loop {
        if let Some(o) = try_wait(pid) {
            return o;
        }
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                    .unwrap_or(PollTimeout::NONE)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, timeout);
        while let Ok(Some(info)) = sfd.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGCHLD {
                continue;
            }
            if deadline.is_some() && !killed && signo != libc::SIGHUP {
                // A second interrupt: the user means it.
                let _ = cg.kill();
                killed = true;
                continue;
            }
            // SAFETY: forwarding a signal to our own child.
            unsafe { libc::kill(pid, signo) };
            deadline.get_or_insert(Instant::now() + grace);
        }
        if let Some(d) = deadline {
            if Instant::now() >= d && !killed {
                let _ = cg.kill();
                killed = true;
            }
        }
    }
}

fn try_wait(pid: i32) -> Option<Outcome> {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r == pid {
        if libc::WIFEXITED(status) {
            return Some(Outcome::Exited(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Some(Outcome::Signaled(libc::WTERMSIG(status)));
        }
    }
    if r < 0 {
        // ECHILD: already reaped (cannot happen with one waiter); treat as gone.
        return Some(Outcome::Exited(125));
    }
    None
}
