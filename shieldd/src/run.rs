//! `shieldd run`: prepare, launch, supervise, clean up, and return the
//! agent's exit status (SPEC section 1).

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::json;

use std::sync::{Arc, Mutex};

use crate::api::{self, service::DeferredService};
use crate::audit::AuditLog;
use crate::monitor::MonitorRules;
use crate::monitor::{pump, Monitor, MonitorConfig};
use crate::policy::Policy;
use crate::respond::Containment;
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
    /// `--socket PATH` for the session's scan API.
    pub socket: Option<PathBuf>,
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
    let audit = match &opts.events {
        Some(p) => match AuditLog::open(p, &session) {
            Ok(a) => Some(Arc::new(Mutex::new(a))),
            Err(e) => {
                warn(&format!("{e}"));
                return 125;
            }
        },
        None => None,
    };
    let record = |fields: serde_json::Value| {
        if let Some(a) = &audit {
            if let Ok(mut a) = a.lock() {
                if let Err(e) = a.record("session_end", fields, true) {
                    warn(&format!("{e}"));
                }
            }
        }
    };
    match supervise(&opts, audit.clone()) {
        Ok(outcome) => {
            let status = outcome.exit_status();
            let sig = match outcome {
                Outcome::Signaled(s) => json!(s),
                Outcome::Exited(_) => json!(null),
            };
            record(json!({"exit_status": status, "signal": sig}));
            status
        }
        Err(e) => {
            warn(&format!("{e}"));
            record(json!({"exit_status": e.exit_code(), "error": e.to_string()}));
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

/// Where the session's scan API socket goes unless `--socket` says.
fn default_socket(session: &str) -> PathBuf {
    let run = PathBuf::from("/run/shieldd");
    let dir = if std::fs::create_dir_all(&run).is_ok() {
        run
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("{session}.sock"))
}

fn start_monitor(
    policy: &Policy,
    base: &crate::policy::ResolveBase,
    cgroup: &std::path::Path,
) -> Result<Monitor, String> {
    let mut m = Monitor::load(&MonitorConfig::default()).map_err(|e| e.to_string())?;
    m.attach_cgroup(cgroup).map_err(|e| e.to_string())?;
    let rules = MonitorRules::from_policy(&policy.sandbox, &policy.response, base, resolve_host)
        .map_err(|e| e.to_string())?;
    m.apply(&rules).map_err(|e| e.to_string())?;
    Ok(m)
}

/// Every address of a host name, through the system resolver. Names are
/// resolved once, at launch (re-resolution on TTL is not done yet).
fn resolve_host(h: &str) -> Vec<std::net::IpAddr> {
    use std::net::ToSocketAddrs;
    match (h, 0u16).to_socket_addrs() {
        Ok(it) => {
            let mut v: Vec<_> = it.map(|a| a.ip()).collect();
            v.sort();
            v.dedup();
            v
        }
        Err(e) => {
            eprintln!("shieldd: cannot resolve {h}: {e}; nothing is allowed for it");
            Vec::new()
        }
    }
}

fn supervise(
    opts: &RunOptions,
    audit: Option<Arc<Mutex<AuditLog>>>,
) -> Result<Outcome, SetupError> {
    let mut req = opts.request.clone();
    req.monitor = !req.degrade.contains(&sandbox::Degrade::Monitor);
    let policy = &opts.policy;
    let socket = opts
        .socket
        .clone()
        .unwrap_or_else(|| default_socket(&req.session));
    req.extra_env.push((
        "SHIELD_SOCKET".into(),
        socket.to_string_lossy().into_owned(),
    ));
    let t0 = Instant::now();
    // The Landlock ruleset and the cgroup directories do not depend on each
    // other (about a millisecond of kernel work each): side by side.
    let (prepared, cg) = std::thread::scope(|s| {
        let cg = s.spawn(|| -> Result<cgroup::SessionCgroup, SetupError> {
            let layout = cgroup::Layout::discover()?;
            Ok(cgroup::SessionCgroup::create(
                &layout,
                &req.session,
                &policy.sandbox.limits,
                req.degrade.contains(&sandbox::Degrade::CgroupLimits),
            )?)
        });
        let prepared = sandbox::prepare(policy, &req);
        let cg = cg
            .join()
            .unwrap_or_else(|_| Err(SetupError::Other("the cgroup setup thread panicked".into())));
        (prepared, cg)
    });
    let prepared = prepared?;
    let tmp_guard = TmpGuard(prepared.private_tmp.clone());
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "prepared");
    for d in &prepared.degraded {
        warn(&format!("degraded (allowed by --allow-degraded): {d}"));
    }
    for n in &prepared.notes {
        tracing::info!("{n}");
    }

    let mut cg = cg?;
    for m in &cg.missing_limits {
        warn(&format!(
            "degraded (allowed by --allow-degraded): cgroup-limits: limits.{m} not enforced"
        ));
    }
    let kill_fd = cg.open_kill_file()?;
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "cgroup created");
    // Fork the agent now, gated, and place it in the v1 hierarchies (an RCU
    // grace period) while the monitor, runtime and socket are set up. It
    // runs nothing until released; dropped unreleased, it is killed.
    let cg_dir = cg.open_dir()?;
    let gated = launch::spawn_gated(&prepared.child, Some(cg_dir.as_raw_fd()))?;
    let pid = gated.pid;
    let placement = cg.add_in_background(pid, gated.in_cgroup);

    let monitor = if req.monitor {
        match start_monitor(policy, &prepared.base, &cg.v2_dir).and_then(|mut m| {
            m.set_quiet(audit.is_none()).map_err(|e| e.to_string())?;
            Ok(m)
        }) {
            Ok(m) => Some(Arc::new(Mutex::new(m))),
            Err(e) => {
                return Err(SetupError::Unsupported(format!(
                    "the eBPF monitor could not start: {e}; pass --allow-degraded=monitor to run without it"
                )))
            }
        }
    } else {
        warn("degraded (allowed by --allow-degraded): monitor: no eBPF monitor (no in-kernel address filter, exec/open checks or process events)");
        None
    };
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "monitor loaded");
    let containment = Containment {
        session: req.session.clone(),
        cgroup: cg.v2_dir.clone(),
        audit: audit.clone(),
        monitor: monitor.clone(),
    };

    // Signals are taken through a signalfd; block them before any thread
    // or child exists so none is lost or delivered elsewhere (the child
    // unblocks its own).
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

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| SetupError::Other(format!("cannot start the runtime: {e}")))?;
    let service = Arc::new(
        DeferredService::new(policy, Some(containment.clone()))
            .map_err(|e| SetupError::Other(format!("policy `tools:`: {e}")))?,
    );
    let std_listener = api::bind_socket(&socket)
        .map_err(|e| SetupError::Other(format!("cannot listen on {}: {e}", socket.display())))?;
    let _socket_guard = SocketGuard(socket.clone());
    if let Some(ids) = &prepared.child.ids {
        std::os::unix::fs::chown(&socket, Some(ids.uid), Some(ids.gid))
            .map_err(|e| SetupError::Other(format!("chown {}: {e}", socket.display())))?;
    }
    {
        let _g = rt.enter();
        let listener = tokio::net::UnixListener::from_std(std_listener)
            .map_err(|e| SetupError::Other(format!("scan API socket: {e}")))?;
        let server = api::Server::new(service.clone(), api::ServerConfig::default());
        rt.spawn(server.serve(listener));
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let pump = monitor.as_ref().and_then(|m| {
        let stream = m.lock().ok()?.take_event_stream()?;
        Some(rt.spawn(pump::run(
            stream,
            containment.clone(),
            policy.response.clone(),
            stop_rx,
        )))
    });

    tracing::debug!(us = t0.elapsed().as_micros() as u64, "scan API listening");
    let dirs: Vec<std::ffi::CString> = cg
        .dirs()
        .filter_map(|d| std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).ok())
        .collect();
    let watchdog = launch::spawn_watchdog(&kill_fd, &dirs)?;
    service.start();
    let placed = placement
        .wait()
        .map_err(SetupError::from)
        .and_then(|_| match &monitor {
            Some(m) => m
                .lock()
                .map_err(|_| SetupError::Other("monitor lock poisoned".into()))?
                .track_pid(pid as u32)
                .map_err(|e| SetupError::Other(format!("eBPF monitor: {e}"))),
            None => Ok(()),
        });
    if let Err(e) = placed {
        gated.abort();
        drop(watchdog.lifeline);
        launch::reap(watchdog.pid);
        return Err(e);
    }
    let cmd: Vec<String> = req
        .command
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    containment.record(
        "session_start",
        json!({
            "pid": pid,
            "ppid": std::process::id(),
            "exe": prepared.child.program.to_string_lossy(),
            "argv": cmd,
            "policy": policy.name,
            "policy_source": opts.policy_source,
            "cgroup": cg.v2_dir.display().to_string(),
            "socket": socket.display().to_string(),
            "monitor": monitor.is_some(),
            "degraded": prepared.degraded,
            "credentials": prepared.credentials,
        }),
        true,
    );
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
    // Let the pump record what the ring still holds, then count losses.
    let _ = stop_tx.send(());
    if let Some(p) = pump {
        let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), p).await });
    }
    if let Some(m) = &monitor {
        if let Ok(n) = m.lock().map(|m| m.lost_events().unwrap_or(0)) {
            if n > 0 {
                containment.record("lost_events", json!({"count": n}), true);
                warn(&format!("{n} kernel events were lost (ring buffer full)"));
            }
        }
    }
    rt.shutdown_timeout(Duration::from_millis(500));
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "runtime stopped");
    drop(watchdog.lifeline);
    launch::reap(watchdog.pid);
    drop(tmp_guard);
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "session done");
    let _ = mask.thread_unblock();
    Ok(outcome)
}

/// Removes the socket file at the end of the session.
struct SocketGuard(PathBuf);
impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
