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
    /// How often the policy's host names are resolved again while the
    /// agent runs (standalone; the daemon has its own period); zero = never.
    pub dns_refresh: Duration,
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

/// Load the programs for this one session: the same session API the
/// daemon uses, with the only slot.
fn start_monitor(
    policy: &Policy,
    base: &crate::policy::ResolveBase,
    cgroup: &std::path::Path,
    quiet: bool,
) -> Result<(Monitor, Vec<crate::monitor::ConnectRule>), String> {
    let cfg = MonitorConfig::default().with_sizes(&policy.sandbox.monitor);
    let mut m = Monitor::load_lazy(&cfg).map_err(|e| e.to_string())?;
    let rules = MonitorRules::from_policy(&policy.sandbox, &policy.response, base, resolve_host)
        .map_err(|e| e.to_string())?;
    m.add_session(crate::monitor::DEFAULT_SLOT, Some(cgroup), &rules, quiet)
        .map_err(|e| e.to_string())?;
    Ok((m, rules.connect))
}

/// Every address of a host name, through the system resolver, at launch.
/// Running sessions resolve their names again every
/// [`RunOptions::dns_refresh`] (see [`refresh_connect`]).
pub fn resolve_host(h: &str) -> Vec<std::net::IpAddr> {
    match lookup_host(h) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("shieldd: cannot resolve {h}: {e}; nothing is allowed for it");
            Vec::new()
        }
    }
}

/// Every address of `h`, sorted and deduplicated (getaddrinfo: files, then
/// DNS, as the host's nsswitch.conf says).
fn lookup_host(h: &str) -> std::io::Result<Vec<std::net::IpAddr>> {
    use std::net::ToSocketAddrs;
    let mut v: Vec<_> = (h, 0u16).to_socket_addrs()?.map(|a| a.ip()).collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// How often a session's host names are resolved again by default. The
/// system resolver gives no TTL, so the period stands in for it.
pub const DNS_REFRESH: Duration = Duration::from_secs(30);

/// Resolve the host names of `policy` again and, when the addresses
/// differ from `old`, put the new allowlist in the session's kernel maps
/// (new addresses in before stale ones go, so a destination allowed in
/// both is never refused) and record `dns_refresh`. A name that does not
/// resolve now keeps the session's current rules (a resolver outage must
/// not cut an agent off, nor open anything). Returns the rules now in
/// force when they changed.
pub fn refresh_connect(
    policy: &Policy,
    base: &crate::policy::ResolveBase,
    c: &Containment,
    old: &[crate::monitor::ConnectRule],
) -> Option<Vec<crate::monitor::ConnectRule>> {
    let m = c.monitor.as_ref()?;
    let named = policy
        .sandbox
        .network
        .connect
        .iter()
        .any(|r| matches!(r.target, crate::policy::ConnectTarget::Host(_)));
    if !named {
        return None;
    }
    let mut failed = Vec::new();
    let rules = MonitorRules::from_policy(&policy.sandbox, &policy.response, base, |h| {
        lookup_host(h).unwrap_or_else(|e| {
            failed.push(format!("{h}: {e}"));
            Vec::new()
        })
    })
    .ok()?;
    if !failed.is_empty() {
        tracing::warn!(
            session = %c.session,
            "host names did not resolve ({}); the session keeps its current addresses",
            failed.join("; ")
        );
        return None;
    }
    if rules.connect == old {
        return None;
    }
    if let Err(e) = m.lock().ok()?.set_connect_rules_in(c.slot, &rules.connect) {
        tracing::warn!(session = %c.session, "dns refresh: {e}");
        return None;
    }
    let nets: Vec<String> = rules.connect.iter().map(|r| r.net.to_string()).collect();
    c.record("dns_refresh", json!({"allowed": nets}), false);
    c.flush();
    Some(rules.connect)
}

/// Where a session's kernel monitor comes from.
#[derive(Clone)]
pub enum MonitorSource {
    /// Load the programs for this session alone (standalone `shieldd run`).
    Own,
    /// The daemon's monitor, loaded once and shared by its sessions; the
    /// session takes a free slot and registers its events' route.
    Shared {
        /// The loaded monitor.
        monitor: Arc<Mutex<Monitor>>,
        /// Where the shared event pump sends each slot's events.
        routes: pump::Routes,
        /// Waits for the shared pump to catch up.
        drain: pump::Drain,
    },
}

/// What a session is launched with besides its options.
pub struct LaunchEnv {
    /// The monitor.
    pub monitor: MonitorSource,
    /// The audit trail, if any.
    pub audit: Option<Arc<Mutex<AuditLog>>>,
    /// The daemon's observers and signals.
    pub hooks: Option<Arc<crate::service::hooks::Hooks>>,
    /// The runtime the scan API (and, standalone, the event pump) runs on.
    pub rt: tokio::runtime::Handle,
    /// The daemon's one watchdog for all sessions; None: a watchdog of the
    /// session's own is forked.
    pub watchdog: Option<Arc<crate::service::watchdog::SharedWatchdog>>,
}

/// A launched session: the agent runs; [`Launched::finish`] cleans up.
pub struct Launched {
    /// The agent's pid.
    pub pid: i32,
    /// The session's cgroups.
    pub cg: cgroup::SessionCgroup,
    /// The handles to record and contain it.
    pub containment: Containment,
    /// The scan API socket.
    pub socket: PathBuf,
    /// The uid the agent runs as.
    pub uid: u32,
    /// The session's scan API service (replaced on a policy reload).
    pub service: Arc<crate::service::registry::SwapService>,
    /// Where the policy's `~` and `./` pointed.
    pub base: Option<crate::policy::ResolveBase>,
    /// The outbound allowlist put in the kernel at launch (host names
    /// resolved), for [`refresh_connect`].
    pub connect: Vec<crate::monitor::ConnectRule>,
    monitor: Option<(Arc<Mutex<Monitor>>, crate::monitor::SessionSlot)>,
    shared: Option<(pump::Routes, pump::Drain)>,
    pump: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
    watchdog: Option<launch::Watchdog>,
    shared_watchdog: Option<Arc<crate::service::watchdog::SharedWatchdog>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _tmp: TmpGuard,
    _socket: SocketGuard,
}

/// Prepare, place and start one agent (SPEC section 3): everything that
/// can fail is checked before the agent exists. Standalone `run` and the
/// daemon both launch through here. `stdio` replaces the agent's
/// stdin/stdout/stderr (the daemon's caller passes its own).
pub fn launch_session(
    opts: &RunOptions,
    env: &LaunchEnv,
    stdio: Option<[std::os::fd::OwnedFd; 3]>,
) -> Result<Launched, SetupError> {
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
    let make_cgroup = || -> Result<cgroup::SessionCgroup, SetupError> {
        let layout = cgroup::Layout::discover_cached()?;
        Ok(cgroup::SessionCgroup::create(
            &layout,
            &req.session,
            &policy.sandbox.limits,
            req.degrade.contains(&sandbox::Degrade::CgroupLimits),
        )?)
    };
    let (prepared, cg) = std::thread::scope(|s| {
        let cg = std::thread::Builder::new()
            .name("cgroup-create".into())
            .spawn_scoped(s, make_cgroup);
        let prepared = sandbox::prepare(policy, &req);
        let cg = match cg {
            Ok(h) => h.join().unwrap_or_else(|_| {
                Err(SetupError::Other("the cgroup setup thread panicked".into()))
            }),
            // No thread to spare: one after the other.
            Err(_) => make_cgroup(),
        };
        (prepared, cg)
    });
    let mut prepared = prepared?;
    prepared.child.stdio = stdio;
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
    // From here on a failure must remove the cgroup.
    let r = launch_in(opts, env, req, prepared, &mut cg, socket, t0);
    match r {
        Ok((
            pid,
            containment,
            socket,
            uid,
            service,
            base,
            monitor,
            pump,
            watchdog,
            sock_guard,
            server,
            connect,
        )) => Ok(Launched {
            pid,
            cg,
            containment,
            socket,
            uid,
            service,
            base: Some(base),
            connect,
            shared: match &env.monitor {
                MonitorSource::Shared { routes, drain, .. } => {
                    Some((routes.clone(), drain.clone()))
                }
                MonitorSource::Own => None,
            },
            monitor,
            pump,
            shared_watchdog: match watchdog {
                None => env.watchdog.clone(),
                Some(_) => None,
            },
            watchdog,
            server,
            _tmp: tmp_guard,
            _socket: sock_guard,
        }),
        Err((e, monitor)) => {
            let _ = cg.remove();
            if let (Some((m, slot)), MonitorSource::Shared { routes, .. }) = (monitor, &env.monitor)
            {
                if let Ok(mut r) = routes.write() {
                    r.remove(&slot.slot());
                }
                if let Ok(mut m) = m.lock() {
                    let _ = m.remove_session(slot);
                }
            }
            Err(e)
        }
    }
}

type MonitorSlot = Option<(Arc<Mutex<Monitor>>, crate::monitor::SessionSlot)>;
type PumpHandle = Option<(
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
)>;
type LaunchParts = (
    i32,
    Containment,
    PathBuf,
    u32,
    Arc<crate::service::registry::SwapService>,
    crate::policy::ResolveBase,
    MonitorSlot,
    PumpHandle,
    Option<launch::Watchdog>,
    SocketGuard,
    tokio::task::JoinHandle<std::io::Result<()>>,
    Vec<crate::monitor::ConnectRule>,
);

#[allow(clippy::too_many_arguments)]
fn launch_in(
    opts: &RunOptions,
    env: &LaunchEnv,
    req: Request,
    prepared: sandbox::Prepared,
    cg: &mut cgroup::SessionCgroup,
    socket: PathBuf,
    t0: Instant,
) -> Result<LaunchParts, (SetupError, MonitorSlot)> {
    let policy = &opts.policy;
    let mut prepared = prepared;
    let kill_fd = cg.open_kill_file().map_err(|e| (e.into(), None))?;
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "cgroup created");
    // Fork the agent now, gated: born in its v2 cgroup, it moves itself
    // into the v1 ones while the monitor, runtime and socket are set up. It
    // runs nothing until released; dropped unreleased, it is killed.
    prepared.child.cgroup_tasks = cg.open_v1_tasks().map_err(|e| (e.into(), None))?;
    let cg_dir = cg.open_dir().map_err(|e| (e.into(), None))?;
    let gated = launch::spawn_gated(&prepared.child, Some(cg_dir.as_raw_fd()))
        .map_err(|e| (e.into(), None))?;
    let pid = gated.pid;
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "agent forked");
    let placement = cg.add_in_background(pid, gated.in_cgroup);

    let quiet = env.audit.is_none();
    let mut connect = Vec::new();
    let monitor: MonitorSlot = if req.monitor {
        let started = match &env.monitor {
            MonitorSource::Own => {
                start_monitor(policy, &prepared.base, &cg.v2_dir, quiet).map(|(m, rules)| {
                    connect = rules;
                    (Arc::new(Mutex::new(m)), crate::monitor::DEFAULT_SLOT)
                })
            }
            MonitorSource::Shared { monitor, .. } => MonitorRules::from_policy(
                &policy.sandbox,
                &policy.response,
                &prepared.base,
                resolve_host,
            )
            .map_err(|e| e.to_string())
            .and_then(|rules| {
                tracing::debug!(us = t0.elapsed().as_micros() as u64, "monitor rules built");
                let mut m = monitor
                    .lock()
                    .map_err(|_| "monitor lock poisoned".to_string())?;
                let slot = m
                    .free_slot()
                    .ok_or_else(|| "every session slot is in use".to_string())?;
                m.add_session(slot, Some(&cg.v2_dir), &rules, quiet)
                    .map_err(|e| e.to_string())?;
                connect = rules.connect;
                Ok((monitor.clone(), slot))
            }),
        };
        match started {
            Ok((m, slot)) => Some((m, crate::monitor::SessionSlot::from_raw(slot))),
            Err(e) => {
                return Err((
                    SetupError::Unsupported(format!(
                        "the eBPF monitor could not start: {e}; pass --allow-degraded=monitor to run without it"
                    )),
                    None,
                ))
            }
        }
    } else {
        warn("degraded (allowed by --allow-degraded): monitor: no eBPF monitor (no in-kernel address filter, exec/open checks or process events)");
        None
    };
    let fail = |e: SetupError, monitor: &MonitorSlot| Err((e, monitor.clone()));
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "monitor loaded");
    let containment = Containment {
        session: req.session.clone(),
        cgroup: cg.v2_dir.clone(),
        audit: env.audit.clone(),
        monitor: monitor.as_ref().map(|(m, _)| m.clone()),
        slot: monitor.as_ref().map(|(_, s)| s.slot()).unwrap_or(0),
        hooks: env.hooks.clone(),
    };

    let deferred = match DeferredService::new(policy, Some(containment.clone())) {
        Ok(s) => Arc::new(s),
        Err(e) => return fail(SetupError::Other(format!("policy `tools:`: {e}")), &monitor),
    };
    let service = Arc::new(crate::service::registry::SwapService::new(deferred.clone()));
    let std_listener = match api::bind_socket(&socket) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                SetupError::Other(format!("cannot listen on {}: {e}", socket.display())),
                &monitor,
            )
        }
    };
    let socket_guard = SocketGuard(socket.clone());
    if let Some(ids) = &prepared.child.ids {
        if let Err(e) = std::os::unix::fs::chown(&socket, Some(ids.uid), Some(ids.gid)) {
            return fail(
                SetupError::Other(format!("chown {}: {e}", socket.display())),
                &monitor,
            );
        }
    }
    let server = {
        let _g = env.rt.enter();
        let listener = match tokio::net::UnixListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => return fail(SetupError::Other(format!("scan API socket: {e}")), &monitor),
        };
        let server = api::Server::new(service.clone(), api::ServerConfig::default());
        env.rt.spawn(server.serve(listener))
    };
    // Stops serving when a later step fails (the session never existed).
    let fail = |e: SetupError, monitor: &MonitorSlot| {
        server.abort();
        fail(e, monitor)
    };
    let pump = match (&env.monitor, &monitor) {
        (MonitorSource::Own, Some((m, _))) => {
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
            let stream = m.lock().ok().and_then(|mut m| m.take_event_stream());
            match stream.map(|stream| {
                pump::spawn_dedicated(pump::run(
                    stream,
                    containment.clone(),
                    policy.response.clone(),
                    stop_rx,
                ))
            }) {
                Some(Ok(handle)) => Some((handle, stop_tx)),
                Some(Err(e)) => {
                    return fail(
                        SetupError::Other(format!("cannot start the event pump: {e}")),
                        &monitor,
                    )
                }
                None => None,
            }
        }
        (MonitorSource::Shared { routes, .. }, Some((_, slot))) => {
            if let Ok(mut r) = routes.write() {
                r.insert(slot.slot(), (containment.clone(), policy.response.clone()));
            }
            None
        }
        _ => None,
    };

    tracing::debug!(us = t0.elapsed().as_micros() as u64, "scan API listening");
    let dirs: Vec<std::ffi::CString> = cg
        .dirs()
        .filter_map(|d| std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).ok())
        .collect();
    // The daemon's shared watchdog is told the session's cgroups (a
    // write); without it (standalone, or it is gone) a watchdog of the
    // session's own is forked.
    let shared = env.watchdog.as_ref().and_then(|w| {
        let dirs: Vec<PathBuf> = cg.dirs().cloned().collect();
        match w.watch(&req.session, &dirs) {
            Ok(()) => Some(()),
            Err(e) => {
                warn(&format!(
                    "the daemon's watchdog is gone ({e}); this session gets one of its own"
                ));
                None
            }
        }
    });
    let watchdog = match shared {
        Some(()) => None,
        None => match launch::spawn_watchdog_unlinking(
            &kill_fd,
            &dirs,
            &std::ffi::CString::new(socket.as_os_str().as_encoded_bytes())
                .into_iter()
                .collect::<Vec<_>>(),
        ) {
            Ok(w) => Some(w),
            Err(e) => return fail(e.into(), &monitor),
        },
    };
    let stop_watchdog = |w: Option<launch::Watchdog>| {
        if let Some(w) = w {
            w.stop();
        }
        if shared.is_some() {
            if let Some(sw) = &env.watchdog {
                sw.unwatch(&req.session);
            }
        }
    };
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "watchdog started");
    deferred.start();
    let placed = placement
        .wait()
        .map_err(SetupError::from)
        .and_then(|_| match &monitor {
            Some((m, slot)) => m
                .lock()
                .map_err(|_| SetupError::Other("monitor lock poisoned".into()))?
                .track_pid_in(slot.slot(), pid as u32)
                .map_err(|e| SetupError::Other(format!("eBPF monitor: {e}"))),
            None => Ok(()),
        });
    if let Err(e) = placed {
        gated.abort();
        stop_watchdog(watchdog);
        return fail(e, &monitor);
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
        false,
    );
    // Written through (a daemon killed now leaves it in the trail for its
    // successor's cleanup), not fsync'd: that would cost the launch a disk
    // round trip; violations are fsync'd.
    containment.flush();
    tracing::debug!(
        us = t0.elapsed().as_micros() as u64,
        "session_start recorded"
    );
    let started = Instant::now();
    if let Err(e) = gated.release() {
        // The child has exited; make sure nothing of it remains.
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        stop_watchdog(watchdog);
        return fail(annotate_exec_error(e, &prepared), &monitor);
    }
    tracing::debug!(
        pid,
        setup_us = started.elapsed().as_micros() as u64,
        "agent started"
    );
    let uid = prepared.child.ids.as_ref().map(|i| i.uid).unwrap_or(0);
    Ok((
        pid,
        containment,
        socket,
        uid,
        service,
        prepared.base.clone(),
        monitor,
        pump,
        watchdog,
        socket_guard,
        server,
        connect,
    ))
}

impl Launched {
    /// After the agent has exited: kill what it left running, record what
    /// the kernel still had for it, take the session out of the monitor,
    /// stop the watchdog and remove the private temp dir.
    pub fn finish(self, rt: &tokio::runtime::Handle) {
        if let (Some(w), _) = self.finish_as(rt, false) {
            w.reap();
        }
    }

    /// [`Launched::finish`]; with `exiting` (standalone `run`, whose
    /// process ends next) a session watchdog of its own is told the
    /// directories are gone and returned to be reaped last, its exit
    /// overlapping the rest of the teardown.
    fn finish_as(
        mut self,
        rt: &tokio::runtime::Handle,
        exiting: bool,
    ) -> (Option<launch::Released>, bool) {
        let removed = self.cg.remove();
        // The daemon's runtime outlives the session: stop its scan API and
        // let its scanner go (an ended session's record stays listed).
        self.server.abort();
        self.service.close();
        if let Some((p, stop)) = self.pump.take() {
            let _ = stop.send(());
            let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), p).await });
        }
        if let Some((m, slot)) = self.monitor.take() {
            if let Some((routes, drain)) = &self.shared {
                // Let the shared pump deliver what the ring still holds.
                drain.wait(Duration::from_secs(2));
                if let Ok(mut r) = routes.write() {
                    r.remove(&slot.slot());
                }
                // This session's own kernel-counted loss (the daemon records
                // only what no session can be charged with).
                let lost = m.lock().ok().and_then(|mut m| {
                    let n = m.lost_events_in(slot.slot()).ok();
                    let _ = m.remove_session(slot);
                    n
                });
                if let Some(n) = lost.filter(|&n| n > 0) {
                    self.containment
                        .record("lost_events", json!({"count": n}), true);
                }
            } else if let Ok(n) = m.lock().map(|m| m.lost_events().unwrap_or(0)) {
                if n > 0 {
                    self.containment
                        .record("lost_events", json!({"count": n}), true);
                    warn(&format!("{n} kernel events were lost (ring buffer full)"));
                }
            }
        }
        let mut released = None;
        if let Some(w) = self.watchdog.take() {
            // Only once every directory is gone (the tree was killed and
            // was empty) is the watchdog left with nothing but its own
            // kill; otherwise it removes what is left, waited for.
            if exiting && removed.is_ok() {
                released = Some(w.release_clean());
            } else {
                w.stop();
            }
        }
        if let Some(w) = self.shared_watchdog.take() {
            w.unwatch(&self.containment.session);
        }
        // Nothing in flight on the runtime: no task alive but, at most, the
        // aborted accept loop (whose cancellation runs no code of ours).
        // Read in this order, a task that ends between the two reads only
        // makes the answer more cautious; the count never under-reports.
        let server_done = self.server.is_finished();
        let idle = rt.metrics().num_alive_tasks() <= usize::from(!server_done);
        (released, idle)
    }
}

fn supervise(
    opts: &RunOptions,
    audit: Option<Arc<Mutex<AuditLog>>>,
) -> Result<Outcome, SetupError> {
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
    let t0 = Instant::now();
    let env = LaunchEnv {
        monitor: MonitorSource::Own,
        audit,
        hooks: None,
        rt: rt.handle().clone(),
        watchdog: None,
    };
    let launched = launch_session(opts, &env, None)?;
    let refresher = spawn_dns_refresh(opts, &launched);
    let outcome = wait_agent(launched.pid, &mut sfd, &launched.cg, opts.grace);
    drop(refresher);
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "agent exited");
    let (watchdog, idle) = launched.finish_as(rt.handle(), true);
    // Nothing in flight: the idle workers are not joined (their wake-up and
    // exit cost the way out ~0.5 ms; the process exits next). A connection
    // still running may be recording a verdict: then wait for it, as before.
    if idle {
        rt.shutdown_background();
    } else {
        rt.shutdown_timeout(Duration::from_millis(500));
    }
    tracing::debug!(idle, "runtime shut down");
    if let Some(w) = watchdog {
        w.reap();
    }
    tracing::debug!(us = t0.elapsed().as_micros() as u64, "session done");
    let _ = mask.thread_unblock();
    Ok(outcome)
}

/// The standalone session's own resolver loop; dropping it stops the loop
/// (and waits for a refresh in progress).
struct DnsRefresh(Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>);

impl Drop for DnsRefresh {
    fn drop(&mut self) {
        if let Some((stop, h)) = self.0.take() {
            drop(stop);
            let _ = h.join();
        }
    }
}

fn spawn_dns_refresh(opts: &RunOptions, l: &Launched) -> DnsRefresh {
    let named = opts
        .policy
        .sandbox
        .network
        .connect
        .iter()
        .any(|r| matches!(r.target, crate::policy::ConnectTarget::Host(_)));
    let (Some(base), true, false) = (
        l.base.clone(),
        named && l.containment.monitor.is_some(),
        opts.dns_refresh.is_zero(),
    ) else {
        return DnsRefresh(None);
    };
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (policy, c, period) = (opts.policy.clone(), l.containment.clone(), opts.dns_refresh);
    let mut current = l.connect.clone();
    let h = std::thread::Builder::new()
        .name("dns-refresh".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(period) {
                if let Some(new) = refresh_connect(&policy, &base, &c, &current) {
                    current = new;
                }
            }
        });
    match h {
        Ok(h) => DnsRefresh(Some((tx, h))),
        Err(e) => {
            warn(&format!(
                "cannot start the DNS refresh ({e}); host names stay as resolved at launch"
            ));
            DnsRefresh(None)
        }
    }
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
