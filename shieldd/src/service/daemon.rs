//! `shieldd daemon`: load the kernel programs once, keep the registry of
//! sessions, write one audit trail for all of them, serve the control
//! socket, and hand the operator-facing modules (D-Bus, metrics, alerts,
//! systemd) their hooks through [`wire_extensions`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal as Sig};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::sync::broadcast;

use super::config::DaemonConfig;
use super::control::{self, Access};
use super::hooks::Hooks;
use super::registry::{clean_up_previous, Registry};
use super::{Manager, SessionState, Signal};
use crate::audit::AuditLog;
use crate::monitor::{pump, Monitor, MonitorConfig};

/// What the operator-facing modules get from the daemon.
pub struct DaemonHandles {
    /// The configuration the daemon runs with.
    pub config: Arc<DaemonConfig>,
    /// The session registry: every control operation goes through it.
    pub manager: Arc<dyn Manager>,
    /// Observers and signals: `hooks.add_observer(o)` tells `o` every audit
    /// record of every session after it is written.
    pub hooks: Arc<Hooks>,
    /// Signals: the daemon sends `Violation`, `SessionStarted` and
    /// `SessionEnded`; alerts send `Alert`. `subscribe()` to receive.
    pub signals: broadcast::Sender<Signal>,
    /// The daemon's tokio runtime (spawn servers on it).
    pub runtime: tokio::runtime::Handle,
    /// The audit trail file (`<audit_dir>/audit.jsonl`).
    pub audit_trail: PathBuf,
    /// The audit trail itself, for records that belong to no session's
    /// containment (alerts).
    pub audit: Arc<Mutex<AuditLog>>,
}

/// Where the lead wires the operator-facing modules in: called once, when
/// the kernel programs are loaded, the registry exists and the control
/// socket listens (so this is also the moment to tell systemd READY=1).
/// An error stops the daemon (fail closed).
pub fn wire_extensions(h: &DaemonHandles) -> Result<(), String> {
    use super::{alerts, dbus, metrics, Alert};

    let metrics = metrics::Metrics::new(Some(h.manager.clone()));
    h.hooks.add_observer(metrics.clone());

    // An alert is an `alert` record of its session (host-wide ones are the
    // daemon's), told to the observers (metrics count it) and a D-Bus signal.
    let (audit, hooks) = (h.audit.clone(), h.hooks.clone());
    let sink: alerts::AlertSink = Arc::new(move |a: Alert| {
        let session = a.session.clone().unwrap_or_else(|| "daemon".into());
        let fields = serde_json::to_value(&a).unwrap_or(serde_json::Value::Null);
        if let Ok(mut t) = audit.lock() {
            if let Err(e) = t.record_for(&session, "alert", fields.clone(), true) {
                eprintln!("shieldd daemon: {e}");
            }
        }
        hooks.observe(&session, "alert", &fields);
        hooks.signal(Signal::Alert(a));
    });
    let engine = alerts::AlertEngine::new(&h.config.alerts, sink).map_err(|e| e.to_string())?;
    h.hooks.add_observer(engine);

    if let Some(addr) = h.config.metrics.listen {
        let m = metrics.clone();
        serve_forever(&h.runtime, async move {
            metrics::serve_metrics(addr, m)
                .await
                .map_err(|e| format!("metrics on {addr}: {e}"))
        })?;
    }
    if h.config.dbus.enabled {
        let gid = dbus::admin_gid(h.config.admin_group.as_deref()).map_err(|e| e.to_string())?;
        let (cfg, manager, signals) = (
            h.config.dbus.clone(),
            h.manager.clone(),
            h.signals.subscribe(),
        );
        serve_forever(&h.runtime, async move {
            dbus::serve_dbus(&cfg, gid, manager, signals)
                .await
                .map_err(|e| {
                    format!(
                        "D-Bus ({}): {e}; set `dbus: {{enabled: false}}` in the config to run without it",
                        cfg.bus
                    )
                })
        })?;
    }
    super::systemd::notify_ready();
    let _ = super::systemd::spawn_watchdog();
    Ok(())
}

/// How long a server (D-Bus connection, metrics listener) may take to start.
const SERVER_START: Duration = Duration::from_secs(15);

/// Start a server on the runtime and wait until it is up (or failed); its
/// handle then lives as long as the runtime does.
fn serve_forever<H: Send + 'static>(
    rt: &tokio::runtime::Handle,
    start: impl std::future::Future<Output = Result<H, String>> + Send + 'static,
) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let start = async {
            tokio::time::timeout(SERVER_START, start)
                .await
                .unwrap_or_else(|_| Err(format!("not up within {SERVER_START:?}")))
        };
        match start.await {
            Ok(handle) => {
                let _ = tx.send(Ok(()));
                std::future::pending::<()>().await;
                drop(handle);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    rx.recv()
        .map_err(|_| "a server task ended before it started".to_string())?
}

fn fail(msg: &str) -> i32 {
    eprintln!("shieldd daemon: {msg}");
    1
}

/// The kernel runs cgroup BPF programs behind static keys that are on only
/// while some cgroup has a program of that type attached. With nothing but
/// sessions attached, every session's first attach turns them on and its
/// last detach off again: code patched on every CPU with IPIs, measured as
/// the daemon's largest CPU cost per launch (a tenth of it) and milliseconds
/// of latency on a loaded host. The daemon keeps the programs attached to
/// an empty cgroup of its own (`shieldd/.daemon`, a name no session id can
/// take), in an inert slot of its own, so the keys stay on. Returns the
/// slot and directory to release at the end; None (with a warning) if that
/// cannot be done, which costs speed only.
fn hold_cgroup_bpf_keys(m: &mut Monitor) -> Option<(crate::monitor::SessionSlot, PathBuf)> {
    let v2 = crate::sandbox::cgroup::Layout::discover().ok()?.v2?;
    let dir = v2.join("shieldd").join(".daemon");
    let made = std::fs::create_dir_all(&dir);
    let slot = m.free_slot();
    let rules = crate::monitor::MonitorRules {
        connect: Vec::new(),
        bind: Vec::new(),
        exec_allow: Vec::new(),
        exec_deny: Vec::new(),
        deny_paths: Vec::new(),
        response: crate::monitor::KernelResponse::default(),
    };
    match (made, slot) {
        (Ok(()), Some(slot)) => match m.add_session(slot, Some(&dir), &rules, true) {
            Ok(h) => Some((h, dir)),
            Err(e) => {
                tracing::warn!("cannot keep the cgroup programs attached ({e}); each launch will switch the kernel's cgroup-BPF keys");
                None
            }
        },
        (Err(e), _) => {
            tracing::warn!("cannot create {}: {e}", dir.display());
            None
        }
        (_, None) => None,
    }
}

/// Run the daemon until SIGTERM/SIGINT; the process exit status.
pub fn run_daemon(config: Option<&Path>) -> i32 {
    run_daemon_with(config, wire_extensions)
}

/// [`run_daemon`] with another wiring function (tests, embedders).
pub fn run_daemon_with(
    config: Option<&Path>,
    wire: impl FnOnce(&DaemonHandles) -> Result<(), String>,
) -> i32 {
    let cfg = match DaemonConfig::load(config) {
        Ok(c) => Arc::new(c),
        Err(e) => return fail(&e.to_string()),
    };
    // What the unit (or whoever started us) really left the daemon: logged,
    // and a start refused with the option to change when it rules out the
    // daemon's kernel work.
    // Sessions share their policy's built Landlock ruleset; each adds a
    // small layer for its own temporary directory.
    crate::sandbox::landlock::set_layered(true);
    let hardening = super::hardening::probe();
    eprintln!("shieldd daemon: {}", hardening.summary());
    if let Err(e) = hardening.check() {
        return fail(&e.to_string());
    }
    // Block the stop signals before any thread exists: every thread (and
    // agent fork) inherits the mask, and the main thread takes them from
    // a signalfd. Agents reset their mask before exec.
    let mut mask = SigSet::empty();
    for s in [Sig::SIGINT, Sig::SIGTERM, Sig::SIGHUP] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        return fail(&format!("cannot block signals: {e}"));
    }
    let sfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => return fail(&format!("signalfd: {e}")),
    };
    // The one watchdog of all sessions, forked while this process still
    // has a single thread (see service::watchdog). Without it each
    // session forks its own.
    let watchdog = match super::watchdog::SharedWatchdog::spawn() {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            eprintln!("shieldd daemon: cannot start the shared watchdog ({e}); each session gets one of its own");
            None
        }
    };

    if let Err(e) = std::fs::create_dir_all(&cfg.audit_dir) {
        return fail(&format!("audit directory {}: {e}", cfg.audit_dir.display()));
    }
    let trail = cfg.audit_dir.join("audit.jsonl");
    let audit = match AuditLog::open(&trail, "daemon") {
        Ok(a) => Arc::new(Mutex::new(a)),
        Err(e) => return fail(&e.to_string()),
    };
    // Agents of a previous instance: its watchdogs have killed them; make
    // sure, and put it on record.
    for (id, found) in clean_up_previous(&trail, &audit) {
        if found {
            eprintln!(
                "shieldd daemon: session {id} of a previous instance was killed (daemon restarted)"
            );
        } else {
            eprintln!(
                "shieldd daemon: session {id} of a previous instance had already ended with it (its cgroup was gone); recorded as killed (daemon restarted)"
            );
        }
    }

    let t0 = Instant::now();
    let mut monitor =
        match Monitor::load(&MonitorConfig::default().with_sizes(&cfg.monitor.sizes())) {
            Ok(m) => m,
            Err(e) => {
                return fail(&format!(
                    "{e}; the daemon does not run without its kernel programs"
                ))
            }
        };
    tracing::info!(
        ms = t0.elapsed().as_millis() as u64,
        "kernel programs loaded"
    );
    monitor.keep_syscall_hooks(true);
    let keeper = hold_cgroup_bpf_keys(&mut monitor);
    let Some(stream) = monitor.take_event_stream() else {
        return fail("the monitor's event stream is unavailable");
    };
    let monitor = Arc::new(Mutex::new(monitor));

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("shieldd-daemon")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    let routes: pump::Routes = Arc::default();
    let (stop_pump, stop_rx) = tokio::sync::oneshot::channel();
    let (drain, drains) = pump::Drain::new();
    let pump_task =
        match pump::spawn_dedicated(pump::run_routed(stream, routes.clone(), drains, stop_rx)) {
            Ok(t) => t,
            Err(e) => return fail(&format!("cannot start the event pump: {e}")),
        };

    let hooks = Arc::new(Hooks::new());
    // Lost events are counted per session slot in the kernel and recorded
    // by each session; those of tasks in no slot are the daemon's own.
    {
        let (monitor, audit, hooks) = (monitor.clone(), audit.clone(), hooks.clone());
        rt.spawn(async move {
            let mut seen = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let total = monitor
                    .lock()
                    .ok()
                    .and_then(|m| m.lost_events_unattributed().ok())
                    .unwrap_or(seen);
                if total > seen {
                    let fields = serde_json::json!({"count": total - seen, "total": total});
                    seen = total;
                    if let Ok(mut a) = audit.lock() {
                        let _ = a.record_for("daemon", "lost_events", fields.clone(), true);
                    }
                    hooks.observe("daemon", "lost_events", &fields);
                    tracing::warn!("{} kernel events were lost (ring buffer full)", total);
                }
            }
        });
    }
    let registry = Registry::new(
        monitor.clone(),
        routes,
        drain,
        audit.clone(),
        hooks.clone(),
        rt.handle().clone(),
        cfg.session_socket_dir.clone(),
        cfg.default_policy.clone(),
        cfg.keep_ended,
        watchdog,
    );

    // Host names of running sessions' policies, resolved again.
    if !cfg.dns_refresh.is_zero() {
        let (registry, period) = (registry.clone(), cfg.dns_refresh);
        let _ = std::thread::Builder::new()
            .name("dns-refresh".into())
            .spawn(move || loop {
                std::thread::sleep(period);
                registry.refresh_hosts();
            });
    }

    let listener = match control::bind(&cfg.control_socket) {
        Ok(l) => l,
        Err(e) => {
            return fail(&format!(
                "control socket {}: {e}",
                cfg.control_socket.display()
            ))
        }
    };
    let access = Access::new(cfg.admin_group.as_deref());
    {
        let registry = registry.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || control::serve(listener, registry, access))
        {
            return fail(&format!("cannot start the control thread: {e}"));
        }
    }

    let handles = DaemonHandles {
        config: cfg.clone(),
        manager: registry.clone(),
        hooks: hooks.clone(),
        signals: hooks.signals(),
        runtime: rt.handle().clone(),
        audit_trail: trail.clone(),
        audit: audit.clone(),
    };
    {
        let _g = rt.enter();
        if let Err(e) = wire(&handles) {
            let _ = std::fs::remove_file(&cfg.control_socket);
            return fail(&e);
        }
    }
    eprintln!(
        "shieldd daemon: ready (control socket {}, audit trail {})",
        cfg.control_socket.display(),
        trail.display()
    );

    // Until told to stop.
    loop {
        match sfd.read_signal() {
            Ok(Some(info)) if info.ssi_signo as i32 == libc::SIGHUP => continue,
            Ok(Some(_)) => break,
            Ok(None) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("shieldd daemon: signalfd: {e}");
                break;
            }
        }
    }
    super::systemd::notify_stopping();
    eprintln!("shieldd daemon: stopping; killing the sessions");
    let _ = std::fs::remove_file(&cfg.control_socket);
    for s in registry.sessions() {
        if s.state != SessionState::Ended {
            let _ = registry.kill(&s.id, "daemon stopping", None);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && registry
            .sessions()
            .iter()
            .any(|s| s.state != SessionState::Ended)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = stop_pump.send(());
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), pump_task).await });
    if let Some((slot, dir)) = keeper {
        if let Ok(mut m) = monitor.lock() {
            let _ = m.remove_session(slot);
        }
        let _ = std::fs::remove_dir(dir);
    }
    if let Ok(mut a) = audit.lock() {
        let _ = a.flush();
    }
    rt.shutdown_timeout(Duration::from_millis(500));
    0
}
