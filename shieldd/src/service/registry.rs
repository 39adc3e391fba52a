//! The daemon's sessions: launched through the same code as standalone
//! `shieldd run` ([`crate::run::launch_session`]), each supervised by a
//! thread of its own, all sharing one loaded monitor and one audit trail.
//! [`Registry`] implements [`Manager`] for the control socket and D-Bus.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::hooks::Hooks;
use super::osbytes::OsBytes;
use super::{Actor, ControlError, Counters, Manager, Observer, SessionInfo, SessionState, Signal};
use crate::api::{Peer, Service, StreamScan};
use crate::audit::{now_rfc3339, AuditLog};
use crate::monitor::{pump, Monitor, MonitorRules};
use crate::policy::Policy;
use crate::respond::Containment;
use crate::run::{launch_session, LaunchEnv, MonitorSource, RunOptions};
use crate::sandbox::{self, Degrade, Request, SetupError};

/// A scan API service that can be replaced while its socket serves (a
/// policy reload); connections pick up the new one at their next request.
pub struct SwapService {
    inner: RwLock<Arc<dyn Service>>,
}

impl SwapService {
    /// Serve `svc`.
    pub fn new(svc: Arc<dyn Service>) -> SwapService {
        SwapService {
            inner: RwLock::new(svc),
        }
    }

    /// Serve `svc` from now on.
    pub fn replace(&self, svc: Arc<dyn Service>) {
        if let Ok(mut g) = self.inner.write() {
            *g = svc;
        }
    }

    /// Refuse everything from now on and drop the wrapped service (the
    /// session has ended).
    pub fn close(&self) {
        self.replace(Arc::new(Ended));
    }

    fn get(&self) -> Option<Arc<dyn Service>> {
        self.inner.read().ok().map(|g| g.clone())
    }
}

impl Service for SwapService {
    fn admit(&self, peer: &Peer) -> Result<(), String> {
        match self.get() {
            Some(s) => s.admit(peer),
            None => Err("service unavailable".into()),
        }
    }
    fn scan(
        &self,
        peer: &Peer,
        text: &str,
        direction: shield_client::wire::Direction,
    ) -> shield_client::wire::Verdict {
        match self.get() {
            Some(s) => s.scan(peer, text, direction),
            None => unavailable(),
        }
    }
    fn check_tool(&self, peer: &Peer, tool: &str, params: &Value) -> shield_client::wire::Verdict {
        match self.get() {
            Some(s) => s.check_tool(peer, tool, params),
            None => unavailable(),
        }
    }
    fn open_stream(
        &self,
        peer: &Peer,
        direction: shield_client::wire::Direction,
    ) -> Box<dyn StreamScan> {
        match self.get() {
            Some(s) => s.open_stream(peer, direction),
            None => Box::new(Closed),
        }
    }
}

fn unavailable() -> shield_client::wire::Verdict {
    crate::api::service::blocked_unavailable("the session's service is unavailable".into())
}

/// What an ended session's socket would answer (it is closed by then).
struct Ended;

impl Service for Ended {
    fn admit(&self, _peer: &Peer) -> Result<(), String> {
        Err("the session has ended".into())
    }
    fn scan(
        &self,
        _peer: &Peer,
        _text: &str,
        _direction: shield_client::wire::Direction,
    ) -> shield_client::wire::Verdict {
        unavailable()
    }
    fn check_tool(
        &self,
        _peer: &Peer,
        _tool: &str,
        _params: &Value,
    ) -> shield_client::wire::Verdict {
        unavailable()
    }
    fn open_stream(
        &self,
        _peer: &Peer,
        _direction: shield_client::wire::Direction,
    ) -> Box<dyn StreamScan> {
        Box::new(Closed)
    }
}

struct Closed;
impl StreamScan for Closed {
    fn push(&mut self, _chunk: &str) -> shield_client::wire::Verdict {
        unavailable()
    }
    fn close(self: Box<Self>) -> shield_client::wire::Verdict {
        unavailable()
    }
}

/// What `shieldd run` sends to start a session through the daemon (the
/// `start` op of the control socket).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StartRequest {
    /// Command and arguments, exact bytes.
    pub argv: Vec<OsBytes>,
    /// The caller's working directory, exact bytes.
    pub cwd: OsBytes,
    /// The caller's environment, exact bytes.
    #[serde(default)]
    pub env: Vec<(OsBytes, OsBytes)>,
    /// Policy YAML; None = the daemon's default policy.
    #[serde(default)]
    pub policy: Option<String>,
    /// Where the policy came from (shown in events and `sessions`).
    #[serde(default)]
    pub policy_source: Option<String>,
    /// Session id; None = a new random one.
    #[serde(default)]
    pub session: Option<String>,
    /// `--user`.
    #[serde(default)]
    pub user: Option<String>,
    /// `--events FILE`: the session's records are also appended there.
    #[serde(default)]
    pub events: Option<OsBytes>,
    /// `--allow-degraded` names.
    #[serde(default)]
    pub allow_degraded: Vec<String>,
    /// `--grace` seconds.
    #[serde(default)]
    pub grace_secs: Option<f64>,
}

/// Why a start failed: the message, and the exit status `run` returns.
#[derive(Debug, Clone)]
pub struct StartError {
    /// One line.
    pub message: String,
    /// 125, or 126/127 for the command itself.
    pub exit_status: i32,
}

impl StartError {
    fn usage(message: String) -> StartError {
        StartError {
            message,
            exit_status: 125,
        }
    }
}

impl From<SetupError> for StartError {
    fn from(e: SetupError) -> Self {
        StartError {
            message: e.to_string(),
            exit_status: e.exit_code(),
        }
    }
}

struct Entry {
    info: SessionInfo,
    policy: Policy,
    /// The connect rules last put in the kernel (host names resolved).
    connect: Vec<crate::monitor::ConnectRule>,
    containment: Containment,
    service: Arc<SwapService>,
    base: Option<crate::policy::ResolveBase>,
    grace: Duration,
    signalled: Option<Instant>,
    ended_at: Option<Instant>,
    /// Why an operator killed it (`kill` op), told to the attached `run`.
    killed: Option<String>,
}

/// The daemon's sessions.
pub struct Registry {
    sessions: Mutex<HashMap<String, Entry>>,
    tees: Mutex<HashMap<String, AuditLog>>,
    totals: Mutex<Counters>,
    keep_ended: Duration,
    socket_dir: PathBuf,
    default_policy: Option<PathBuf>,
    monitor: Arc<Mutex<Monitor>>,
    routes: pump::Routes,
    drain: pump::Drain,
    audit: Arc<Mutex<AuditLog>>,
    hooks: Arc<Hooks>,
    rt: tokio::runtime::Handle,
    watchdog: Option<Arc<super::watchdog::SharedWatchdog>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a session id is refused: a running session has it, or an ended one
/// is still kept (`ended_for` is how long ago it ended).
fn id_taken(session: &str, ended_for: Option<Duration>, keep_ended: Duration) -> String {
    match ended_for {
        Some(ago) => format!(
            "session {session} has ended but its id is kept for another {}s (config `keep_ended`); choose another --session",
            keep_ended.saturating_sub(ago).as_secs().max(1)
        ),
        None => format!("session {session} exists already (it is running)"),
    }
}

impl Registry {
    /// A registry over a loaded monitor, the daemon's audit trail and hooks.
    /// It registers itself as an observer (session counters).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        monitor: Arc<Mutex<Monitor>>,
        routes: pump::Routes,
        drain: pump::Drain,
        audit: Arc<Mutex<AuditLog>>,
        hooks: Arc<Hooks>,
        rt: tokio::runtime::Handle,
        socket_dir: PathBuf,
        default_policy: Option<PathBuf>,
        keep_ended: Duration,
        watchdog: Option<Arc<super::watchdog::SharedWatchdog>>,
    ) -> Arc<Registry> {
        let r = Arc::new(Registry {
            sessions: Mutex::new(HashMap::new()),
            tees: Mutex::new(HashMap::new()),
            totals: Mutex::new(Counters::default()),
            keep_ended,
            socket_dir,
            default_policy,
            monitor,
            routes,
            drain,
            audit,
            hooks: hooks.clone(),
            rt,
            watchdog,
        });
        hooks.add_observer(r.clone());
        r
    }

    /// The daemon's hooks.
    pub fn hooks(&self) -> &Arc<Hooks> {
        &self.hooks
    }

    /// The reason an operator gave when killing session `id`, if one did.
    pub fn killed_by(&self, id: &str) -> Option<String> {
        lock(&self.sessions).get(id).and_then(|e| e.killed.clone())
    }

    fn prune(&self, map: &mut HashMap<String, Entry>) {
        let keep = self.keep_ended;
        map.retain(|_, e| e.ended_at.is_none_or(|t| t.elapsed() < keep));
    }

    fn containment(&self, id: &str) -> Result<(Containment, SessionState), ControlError> {
        let map = lock(&self.sessions);
        let e = map
            .get(id)
            .ok_or_else(|| ControlError::NoSuchSession(id.to_string()))?;
        Ok((e.containment.clone(), e.info.state))
    }

    fn set_state(&self, id: &str, state: SessionState) {
        if let Some(e) = lock(&self.sessions).get_mut(id) {
            if e.info.state != SessionState::Ended {
                e.info.state = state;
            }
        }
    }

    /// Forward a signal from the attached caller to the agent. The first
    /// SIGINT/SIGTERM starts the grace period, after which (or on a second
    /// one) the whole tree is killed, as standalone `run` does.
    pub fn forward_signal(self: &Arc<Self>, id: &str, signo: i32) -> Result<(), ControlError> {
        if !(1..=64).contains(&signo) {
            return Err(ControlError::Failed(format!("bad signal number {signo}")));
        }
        let (pid, first, grace, c) = {
            let mut map = lock(&self.sessions);
            let e = map
                .get_mut(id)
                .ok_or_else(|| ControlError::NoSuchSession(id.to_string()))?;
            if e.info.state == SessionState::Ended {
                return Ok(());
            }
            let first = e.signalled.is_none();
            if signo != libc::SIGHUP {
                e.signalled.get_or_insert_with(Instant::now);
            }
            (e.info.pid, first, e.grace, e.containment.clone())
        };
        if !first && signo != libc::SIGHUP {
            c.kill("second interrupt");
            return Ok(());
        }
        // SAFETY: kill(2) on the agent's pid, which this daemon has not
        // reaped yet (state is not Ended).
        unsafe { libc::kill(pid as i32, signo) };
        if signo != libc::SIGHUP {
            let me = self.clone();
            let id = id.to_string();
            std::thread::spawn(move || {
                std::thread::sleep(grace);
                let running = lock(&me.sessions)
                    .get(&id)
                    .is_some_and(|e| e.info.state != SessionState::Ended);
                if running {
                    c.kill("grace period over");
                }
            });
        }
        Ok(())
    }

    /// Launch a session for an attached caller; returns once the agent runs
    /// (with its id and pid) or could not start. `stdio` become the agent's
    /// stdin, stdout and stderr. The session ends with a
    /// [`Signal::SessionEnded`] on the hooks' channel.
    pub fn start(
        self: &Arc<Self>,
        req: StartRequest,
        stdio: Option<[OwnedFd; 3]>,
    ) -> Result<(String, u32), StartError> {
        let (policy, source) = match (&req.policy, &self.default_policy) {
            (Some(text), _) => {
                let src = req
                    .policy_source
                    .clone()
                    .unwrap_or_else(|| "<sent by the caller>".into());
                match crate::policy::parse_policy(text, &src) {
                    Ok(p) => (p, src),
                    Err(e) => return Err(StartError::usage(format!("policy {src}: {e}"))),
                }
            }
            (None, Some(path)) => match Policy::load(path) {
                Ok(p) => (p, path.display().to_string()),
                Err(e) => return Err(StartError::usage(format!("{e}"))),
            },
            (None, None) => {
                // Parsed once per daemon, not once per session.
                static DEFAULT: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
                (
                    DEFAULT.get_or_init(Policy::builtin_default).clone(),
                    "<built-in default>".into(),
                )
            }
        };
        let session = match &req.session {
            Some(s) if sandbox::valid_session_id(s) => s.clone(),
            Some(s) => {
                return Err(StartError::usage(format!(
                    "bad session id `{s}`: use up to 64 letters, digits, `-`, `_` or `.`"
                )))
            }
            None => sandbox::new_session_id(),
        };
        let mut degrade = Vec::new();
        for n in &req.allow_degraded {
            match Degrade::parse(n) {
                Some(d) => degrade.push(d),
                None => {
                    return Err(StartError::usage(format!(
                        "unknown --allow-degraded part `{n}`"
                    )))
                }
            }
        }
        if req.argv.is_empty() {
            return Err(StartError::usage("no command given".into()));
        }
        let grace = req
            .grace_secs
            .filter(|g| g.is_finite() && *g >= 0.0)
            .map(|g| Duration::from_secs_f64(g.min(86_400.0)))
            .unwrap_or(Duration::from_secs(5));
        {
            let mut map = lock(&self.sessions);
            self.prune(&mut map);
            if let Some(e) = map.get(&session) {
                // An ended session is kept (for `sessions` and `report`)
                // for `keep_ended`; say so, or the refusal reads like a
                // second agent still running under that id.
                return Err(StartError::usage(id_taken(
                    &session,
                    e.ended_at.map(|t| t.elapsed()),
                    self.keep_ended,
                )));
            }
        }
        if let Some(ev) = &req.events {
            match AuditLog::open(&ev.to_path_buf(), &session) {
                Ok(a) => {
                    lock(&self.tees).insert(session.clone(), a);
                }
                Err(e) => return Err(StartError::usage(e.to_string())),
            }
        }
        let _ = std::fs::create_dir_all(&self.socket_dir);
        let opts = RunOptions {
            policy: policy.clone(),
            policy_source: source.clone(),
            request: Request {
                command: req.argv.iter().map(OsBytes::to_os_string).collect(),
                session: session.clone(),
                user: req.user.clone(),
                degrade,
                extra_env: Vec::new(),
                monitor: true,
                cwd: Some(req.cwd.to_path_buf()),
                env: Some(
                    req.env
                        .iter()
                        .map(|(k, v)| (k.to_os_string(), v.to_os_string()))
                        .collect(),
                ),
            },
            events: None,
            socket: Some(self.socket_dir.join(format!("{session}.sock"))),
            grace,
            // The daemon resolves every session's names on its own period.
            dns_refresh: Duration::ZERO,
        };

        // The agent is forked by the thread that supervises it: the parent
        // death signal of a child follows the thread that forked it, so a
        // short-lived thread would take the agent with it.
        let (tx, rx) = std::sync::mpsc::channel::<Result<(String, u32), StartError>>();
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("session-{session}"))
            .spawn(move || me.supervise(opts, stdio, tx));
        if let Err(e) = spawned {
            lock(&self.tees).remove(&session);
            return Err(StartError::usage(format!("cannot start a thread: {e}")));
        }
        match rx.recv() {
            Ok(r) => r,
            Err(_) => Err(StartError::usage("the session thread died".into())),
        }
    }

    fn supervise(
        self: Arc<Self>,
        opts: RunOptions,
        stdio: Option<[OwnedFd; 3]>,
        tx: std::sync::mpsc::Sender<Result<(String, u32), StartError>>,
    ) {
        let session = opts.request.session.clone();
        let env = LaunchEnv {
            monitor: MonitorSource::Shared {
                monitor: self.monitor.clone(),
                routes: self.routes.clone(),
                drain: self.drain.clone(),
            },
            audit: Some(self.audit.clone()),
            hooks: Some(self.hooks.clone()),
            rt: self.rt.clone(),
            watchdog: self.watchdog.clone(),
        };
        let launched = match launch_session(&opts, &env, stdio) {
            Ok(l) => l,
            Err(e) => {
                let status = e.exit_code();
                // One place for the record: observers see it too.
                let c = Containment {
                    session: session.clone(),
                    cgroup: PathBuf::new(),
                    audit: Some(self.audit.clone()),
                    monitor: None,
                    slot: 0,
                    hooks: Some(self.hooks.clone()),
                };
                c.record(
                    "session_end",
                    json!({"exit_status": status, "error": e.to_string()}),
                    true,
                );
                lock(&self.tees).remove(&session);
                let _ = tx.send(Err(e.into()));
                return;
            }
        };
        let pid = launched.pid;
        let info = SessionInfo {
            id: session.clone(),
            pid: pid as u32,
            uid: launched.uid,
            command: opts
                .request
                .command
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect(),
            policy_source: opts.policy_source.clone(),
            started: now_rfc3339(),
            state: SessionState::Running,
            exit_status: None,
            cgroup: launched.cg.v2_dir.display().to_string(),
            socket: launched.socket.display().to_string(),
            violations: 0,
            scans: 0,
            blocked: 0,
            tool_calls: 0,
            tool_denials: 0,
            lost_events: 0,
        };
        {
            let mut map = lock(&self.sessions);
            map.insert(
                session.clone(),
                Entry {
                    info,
                    policy: opts.policy.clone(),
                    connect: launched.connect.clone(),
                    containment: launched.containment.clone(),
                    service: launched.service.clone(),
                    base: launched.base.clone(),
                    grace: opts.grace,
                    signalled: None,
                    ended_at: None,
                    killed: None,
                },
            );
        }
        {
            let mut t = lock(&self.totals);
            t.sessions_total += 1;
        }
        self.hooks.signal(Signal::SessionStarted {
            session: session.clone(),
            pid: pid as u32,
        });
        let _ = tx.send(Ok((session.clone(), pid as u32)));

        let status = wait_blocking(pid);
        // The agent's last events (a violation that killed it) are in the
        // ring before waitpid returns: handle them before saying it ended.
        self.drain.wait(Duration::from_secs(2));
        // Whatever the agent left running dies now; the caller gets its
        // status at once, and the cleanup (which lets the shared pump
        // deliver what the ring still holds first) follows.
        let _ = launched.cg.kill();
        {
            let mut map = lock(&self.sessions);
            if let Some(e) = map.get_mut(&session) {
                e.info.state = SessionState::Ended;
                e.info.exit_status = Some(status);
                e.ended_at = Some(Instant::now());
            }
        }
        self.hooks.signal(Signal::SessionEnded {
            session: session.clone(),
            exit_status: status,
        });
        let c = launched.containment.clone();
        launched.finish(&self.rt);
        c.record(
            "session_end",
            json!({"exit_status": status, "signal": if status > 128 { json!(status - 128) } else { json!(null) }}),
            false,
        );
        c.flush();
        lock(&self.tees).remove(&session);
    }
}

/// Wait for our child `pid`; its shell-style exit status.
fn wait_blocking(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                return 128 + libc::WTERMSIG(status);
            }
            continue;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return 125;
    }
}

impl Observer for Registry {
    fn observe(&self, session: &str, event: &str, fields: &Value) {
        let action = fields.get("action").and_then(Value::as_str).unwrap_or("");
        {
            let mut map = lock(&self.sessions);
            if let Some(e) = map.get_mut(session) {
                let i = &mut e.info;
                match event {
                    "violation" => i.violations += 1,
                    "scan" => {
                        i.scans += 1;
                        if action == "block" {
                            i.blocked += 1;
                        }
                    }
                    "tool_call" => {
                        i.tool_calls += 1;
                        if action != "allow" {
                            i.tool_denials += 1;
                        }
                    }
                    "lost_events" => {
                        i.lost_events += fields.get("count").and_then(Value::as_u64).unwrap_or(0)
                    }
                    _ => {}
                }
            }
        }
        {
            let mut t = lock(&self.totals);
            match event {
                "violation" => t.violations += 1,
                "scan" => t.scans += 1,
                "alert" => t.alerts += 1,
                "lost_events" => {
                    t.lost_events += fields.get("count").and_then(Value::as_u64).unwrap_or(0)
                }
                _ => {}
            }
        }
        let mut tees = lock(&self.tees);
        if let Some(a) = tees.get_mut(session) {
            let sync = matches!(event, "violation" | "session_end" | "kill" | "isolate");
            if let Err(e) = a.record(event, fields.clone(), sync) {
                tracing::warn!("events file of {session}: {e}");
            }
        }
    }
}

impl Manager for Registry {
    fn sessions(&self) -> Vec<SessionInfo> {
        let mut map = lock(&self.sessions);
        self.prune(&mut map);
        let mut v: Vec<SessionInfo> = map.values().map(|e| e.info.clone()).collect();
        v.sort_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)));
        v
    }

    fn session(&self, id: &str) -> Result<SessionInfo, ControlError> {
        lock(&self.sessions)
            .get(id)
            .map(|e| e.info.clone())
            .ok_or_else(|| ControlError::NoSuchSession(id.to_string()))
    }

    fn kill(&self, id: &str, reason: &str, actor: Option<&Actor>) -> Result<(), ControlError> {
        let (c, state) = self.containment(id)?;
        if state == SessionState::Ended {
            return Err(ControlError::InvalidState(format!(
                "session {id} has ended"
            )));
        }
        if let Some(e) = lock(&self.sessions).get_mut(id) {
            e.killed.get_or_insert_with(|| reason.to_string());
        }
        c.kill_by(reason, actor);
        Ok(())
    }

    fn isolate(&self, id: &str, reason: &str, actor: Option<&Actor>) -> Result<(), ControlError> {
        let (c, state) = self.containment(id)?;
        match state {
            SessionState::Ended => Err(ControlError::InvalidState(format!(
                "session {id} has ended"
            ))),
            SessionState::Isolated => Err(ControlError::InvalidState(format!(
                "session {id} is isolated already"
            ))),
            SessionState::Running => {
                c.isolate_by(reason, actor);
                self.set_state(id, SessionState::Isolated);
                Ok(())
            }
        }
    }

    fn release(&self, id: &str, actor: Option<&Actor>) -> Result<(), ControlError> {
        let (c, state) = self.containment(id)?;
        if state != SessionState::Isolated {
            return Err(ControlError::InvalidState(format!(
                "session {id} is not isolated"
            )));
        }
        c.release_by(actor);
        self.set_state(id, SessionState::Running);
        Ok(())
    }

    fn reload_policy(&self, id: &str, path: &str) -> Result<(), ControlError> {
        let policy =
            Policy::load(Path::new(path)).map_err(|e| ControlError::Failed(e.to_string()))?;
        let (c, service, base) = {
            let map = lock(&self.sessions);
            let e = map
                .get(id)
                .ok_or_else(|| ControlError::NoSuchSession(id.to_string()))?;
            if e.info.state == SessionState::Ended {
                return Err(ControlError::InvalidState(format!(
                    "session {id} has ended"
                )));
            }
            (e.containment.clone(), e.service.clone(), e.base.clone())
        };
        let svc = crate::api::service::DeferredService::new(&policy, Some(c.clone()))
            .map_err(|e| ControlError::Failed(format!("policy `tools:`: {e}")))?;
        let mut connect = None;
        if let (Some(m), Some(base)) = (&c.monitor, &base) {
            let rules = MonitorRules::from_policy(
                &policy.sandbox,
                &policy.response,
                base,
                crate::run::resolve_host,
            )
            .map_err(|e| ControlError::Failed(e.to_string()))?;
            lock(m)
                .apply_slot(c.slot, &rules)
                .map_err(|e| ControlError::Failed(e.to_string()))?;
            if let Ok(mut r) = self.routes.write() {
                r.insert(c.slot, (c.clone(), policy.response.clone()));
            }
            connect = Some(rules.connect);
        }
        svc.start();
        service.replace(Arc::new(svc));
        if let Some(e) = lock(&self.sessions).get_mut(id) {
            e.policy = policy.clone();
            if let Some(connect) = connect {
                e.connect = connect;
            }
        }
        c.record(
            "policy_reload",
            json!({"policy_source": path, "policy": policy.name}),
            true,
        );
        if let Some(e) = lock(&self.sessions).get_mut(id) {
            e.info.policy_source = path.to_string();
        }
        Ok(())
    }

    fn counters(&self) -> Counters {
        self.counters_now()
    }
}

impl Registry {
    /// Resolve the host names of every running session's policy again
    /// and bring its kernel allowlist to the current addresses (see
    /// [`crate::run::refresh_connect`]: new ones in before stale ones go;
    /// a change is recorded as `dns_refresh`). The system resolver gives
    /// no TTL, so the daemon calls this on a fixed period (`dns_refresh`
    /// in its config).
    pub fn refresh_hosts(&self) {
        let todo: Vec<(
            String,
            Policy,
            Containment,
            crate::policy::ResolveBase,
            Vec<crate::monitor::ConnectRule>,
        )> = lock(&self.sessions)
            .iter()
            .filter(|(_, e)| e.info.state != SessionState::Ended)
            .filter_map(|(id, e)| {
                Some((
                    id.clone(),
                    e.policy.clone(),
                    e.containment.clone(),
                    e.base.clone()?,
                    e.connect.clone(),
                ))
            })
            .collect();
        for (id, policy, c, base, old) in todo {
            if let Some(new) = crate::run::refresh_connect(&policy, &base, &c, &old) {
                if let Some(e) = lock(&self.sessions).get_mut(&id) {
                    e.connect = new;
                }
            }
        }
    }

    fn counters_now(&self) -> Counters {
        let active = lock(&self.sessions)
            .values()
            .filter(|e| e.info.state != SessionState::Ended)
            .count() as u64;
        let mut t = *lock(&self.totals);
        t.sessions_active = active;
        t
    }
}

/// Sessions of the trail that started and never ended: a previous daemon
/// died with them. Their cgroups (if the watchdog left any) are killed and
/// removed, their private temp dirs are removed, and each gets a `kill`
/// record (reason "daemon restarted") and a `session_end`. Returns their
/// ids, each with whether its cgroup was still there (agents this daemon
/// killed) or already gone (the previous daemon's watchdog had done it).
pub fn clean_up_previous(trail: &Path, audit: &Arc<Mutex<AuditLog>>) -> Vec<(String, bool)> {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(trail) else {
        return Vec::new();
    };
    let mut open: Vec<(String, Option<String>)> = Vec::new();
    for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(s), Some(ev)) = (
            v.get("session").and_then(Value::as_str),
            v.get("event").and_then(Value::as_str),
        ) else {
            continue;
        };
        match ev {
            "session_start" => {
                let cg = v.get("cgroup").and_then(Value::as_str).map(str::to_string);
                open.retain(|(id, _)| id != s);
                open.push((s.to_string(), cg));
            }
            "session_end" => open.retain(|(id, _)| id != s),
            _ => {}
        }
    }
    let mut done = Vec::new();
    for (id, cg) in open {
        let mut found = false;
        let mut ok = true;
        if let Some(dir) = cg.as_deref().map(PathBuf::from) {
            if dir.is_dir() {
                found = true;
                ok = std::fs::write(dir.join("cgroup.kill"), "1").is_ok();
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline {
                    let procs =
                        std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                    if procs.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
        // The id comes from our own trail; checked anyway, as it names a
        // path removed as root.
        if crate::sandbox::valid_session_id(&id) {
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("shieldd-{id}")));
        }
        let mut a = lock(audit);
        let _ = a.record_for(
            &id,
            "kill",
            json!({"reason": "daemon restarted", "cgroup_found": found, "ok": ok}),
            false,
        );
        let _ = a.record_for(
            &id,
            "session_end",
            json!({"exit_status": 137, "signal": 9, "reason": "daemon restarted"}),
            true,
        );
        done.push((id, found));
    }
    done
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn a_refused_id_says_whether_its_session_runs_or_only_is_kept() {
        let keep = Duration::from_secs(600);
        let ended = id_taken("job", Some(Duration::from_secs(60)), keep);
        assert!(ended.contains("has ended"), "{ended}");
        assert!(ended.contains("540s"), "{ended}");
        assert!(ended.contains("keep_ended"), "{ended}");
        let running = id_taken("job", None, keep);
        assert!(running.contains("running"), "{running}");
        assert!(!running.contains("ended"), "{running}");
        // Past its keep time (not yet pruned) it never says 0s.
        assert!(id_taken("job", Some(Duration::from_secs(700)), keep).contains(" 1s"));
    }
}
