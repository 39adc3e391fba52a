//! `org.shieldd.Manager1` on D-Bus (zbus, on the daemon's tokio runtime).
//!
//! Object `/org/shieldd/Manager1`, interface `org.shieldd.Manager1`:
//!
//! | member | signature | what |
//! |---|---|---|
//! | `ListSessions()` | `-> a(ssuuasssisstttttt)` | every session, as [`DbusSession`] |
//! | `GetSession(s id)` | `-> ssuuasssisstttttt` (17 out args) | one session |
//! | `Kill(s id, s reason)` | | kill the session's tree |
//! | `Isolate(s id, s reason)` | | freeze it and cut its network |
//! | `Release(s id)` | | undo isolate |
//! | `ReloadPolicy(s id, s path)` | | replace the session's policy from a file |
//! | properties `SessionsActive`, `SessionsTotal`, `Violations`, `Alerts`, `Scans`, `LostEvents`, `SignalsLost` | `t` | read-only counters ([`Counters`]) |
//! | signal `Violation` | `(ssss)` | session, rule, action, detail |
//! | signal `Alert` | `(sstdss)` | kind, session (`""` = host-wide), count, window seconds, detail, ts |
//! | signal `SessionStarted` | `(su)` | session, pid |
//! | signal `SessionEnded` | `(si)` | session, exit status |
//!
//! Sessions travel as a flat struct of basic types rather than a JSON string
//! so `busctl call` prints every field in order and `busctl --json=pretty`
//! or `gdbus call` give a readable structure with no second parser.
//!
//! Every method checks its caller with the bus's own record of the
//! connection (`GetConnectionCredentials`: uid and, where the bus reports
//! them, the process's groups): uid 0 or a member of the admin group, else
//! `org.freedesktop.DBus.Error.AccessDenied`. Properties and introspection
//! are readable by anyone the bus policy lets through
//! (`packaging/dbus/org.shieldd.Manager1.conf`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use zbus::message::{Header, Message};
use zbus::names::ErrorName;
use zbus::object_server::SignalEmitter;
use zbus::{interface, proxy, Connection};

use super::config::DbusConfig;
use super::{Actor, ControlError, Manager, SessionInfo, SessionState, Signal};

/// The well-known bus name.
pub const BUS_NAME: &str = "org.shieldd.Manager1";
/// The object path.
pub const OBJECT_PATH: &str = "/org/shieldd/Manager1";
/// The interface name.
pub const INTERFACE: &str = "org.shieldd.Manager1";

/// Why the D-Bus service could not start.
#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    /// The bus could not be reached or refused the connection.
    #[error("D-Bus: cannot connect to the {bus} bus: {source}")]
    Connect {
        /// `system`, `session` or the address.
        bus: String,
        /// zbus's error.
        source: zbus::Error,
    },
    /// `admin_group` names no group on this host.
    #[error("admin_group {0:?}: no such group (create it with groupadd, or fix the config)")]
    UnknownGroup(String),
}

/// The gid of `admin_group` (a name, or a number), for [`serve_dbus`].
pub fn admin_gid(admin_group: Option<&str>) -> Result<Option<u32>, DbusError> {
    let Some(name) = admin_group else {
        return Ok(None);
    };
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Some(gid));
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(Some(g.gid.as_raw())),
        _ => Err(DbusError::UnknownGroup(name.to_string())),
    }
}

/// A session as it travels on the bus: basic types only, in a fixed order
/// (signature `(ssuuasssisstttttt)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, zbus::Type)]
pub struct DbusSession {
    /// Session id.
    pub id: String,
    /// `running`, `isolated` or `ended`.
    pub state: String,
    /// The agent's first process.
    pub pid: u32,
    /// The uid the agent runs as.
    pub uid: u32,
    /// The command line.
    pub command: Vec<String>,
    /// Where the policy came from.
    pub policy_source: String,
    /// Start time, RFC 3339 UTC.
    pub started: String,
    /// Exit status once ended; -1 while it runs.
    pub exit_status: i32,
    /// The session's cgroup v2 directory.
    pub cgroup: String,
    /// The session's scan API socket.
    pub socket: String,
    /// Violations recorded.
    pub violations: u64,
    /// Scans served.
    pub scans: u64,
    /// Scans whose verdict blocked.
    pub blocked: u64,
    /// Tool calls checked.
    pub tool_calls: u64,
    /// Tool calls denied.
    pub tool_denials: u64,
    /// Kernel events lost.
    pub lost_events: u64,
}

impl From<SessionInfo> for DbusSession {
    fn from(s: SessionInfo) -> Self {
        DbusSession {
            id: s.id,
            state: match s.state {
                SessionState::Running => "running",
                SessionState::Isolated => "isolated",
                SessionState::Ended => "ended",
            }
            .into(),
            pid: s.pid,
            uid: s.uid,
            command: s.command,
            policy_source: s.policy_source,
            started: s.started,
            exit_status: s.exit_status.unwrap_or(-1),
            cgroup: s.cgroup,
            socket: s.socket,
            violations: s.violations,
            scans: s.scans,
            blocked: s.blocked,
            tool_calls: s.tool_calls,
            tool_denials: s.tool_denials,
            lost_events: s.lost_events,
        }
    }
}

/// A method's failure as a D-Bus error reply.
#[derive(Debug)]
pub struct MethodError {
    name: &'static str,
    message: String,
}

impl MethodError {
    fn new(name: &'static str, message: impl Into<String>) -> Self {
        MethodError {
            name,
            message: message.into(),
        }
    }

    fn denied(message: impl Into<String>) -> Self {
        MethodError::new("org.freedesktop.DBus.Error.AccessDenied", message)
    }

    fn failed(message: impl Into<String>) -> Self {
        MethodError::new("org.freedesktop.DBus.Error.Failed", message)
    }
}

impl From<ControlError> for MethodError {
    fn from(e: ControlError) -> Self {
        let name = match &e {
            ControlError::NoSuchSession(_) => "org.shieldd.Error.NoSuchSession",
            ControlError::NotPermitted => "org.freedesktop.DBus.Error.AccessDenied",
            ControlError::InvalidState(_) => "org.shieldd.Error.InvalidState",
            ControlError::Failed(_) => "org.shieldd.Error.Failed",
        };
        MethodError::new(name, e.to_string())
    }
}

impl std::fmt::Display for MethodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for MethodError {}

impl zbus::DBusError for MethodError {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        Message::error(call, self.name()).build(&(self.message.as_str(),))
    }

    fn name(&self) -> ErrorName<'_> {
        ErrorName::from_static_str_unchecked(self.name)
    }

    fn description(&self) -> Option<&str> {
        Some(&self.message)
    }
}

impl From<zbus::Error> for MethodError {
    fn from(e: zbus::Error) -> Self {
        MethodError::failed(e.to_string())
    }
}

impl From<zbus::fdo::Error> for MethodError {
    fn from(e: zbus::fdo::Error) -> Self {
        MethodError::failed(e.to_string())
    }
}

/// The served object.
struct Manager1 {
    manager: Arc<dyn Manager>,
    admin_gid: Option<u32>,
    signals_lost: Arc<AtomicU64>,
}

impl Manager1 {
    /// uid 0 or a member of the admin group; the uid is returned for the
    /// audit reason.
    async fn authorize(&self, conn: &Connection, hdr: &Header<'_>) -> Result<Actor, MethodError> {
        let sender = hdr
            .sender()
            .ok_or_else(|| MethodError::denied("the call has no sender"))?;
        let dbus = zbus::fdo::DBusProxy::builder(conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        let creds = dbus
            .get_connection_credentials(sender.clone().into())
            .await?;
        let uid = creds
            .unix_user_id()
            .ok_or_else(|| MethodError::denied("the bus does not know the caller's uid"))?;
        let actor = Actor {
            via: "dbus".into(),
            uid,
            pid: creds.process_id(),
        };
        if uid == 0 {
            return Ok(actor);
        }
        if let Some(gid) = self.admin_gid {
            let member = match creds.unix_group_ids() {
                Some(groups) => groups.contains(&gid),
                // Older buses do not report groups: fall back to the group database.
                None => user_in_group(uid, gid),
            };
            if member {
                return Ok(actor);
            }
        }
        Err(MethodError::denied(format!(
            "uid {uid}: control operations are for root or the admin group"
        )))
    }

    /// Run a registry call off the async threads: registry operations write
    /// cgroup files and the audit trail.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Manager) -> Result<T, ControlError> + Send + 'static,
    ) -> Result<T, MethodError> {
        let m = self.manager.clone();
        tokio::task::spawn_blocking(move || f(m.as_ref()))
            .await
            .map_err(|e| MethodError::failed(format!("internal error: {e}")))?
            .map_err(MethodError::from)
    }
}

fn reason_of(given: &str, uid: u32) -> String {
    if given.trim().is_empty() {
        format!("D-Bus, uid {uid}")
    } else {
        format!("{given} (D-Bus, uid {uid})")
    }
}

/// Whether `uid`'s user has `gid` as primary or supplementary group.
fn user_in_group(uid: u32, gid: u32) -> bool {
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    if user.gid.as_raw() == gid {
        return true;
    }
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, user.gid)
        .map(|gs| gs.iter().any(|g| g.as_raw() == gid))
        .unwrap_or(false)
}

#[interface(name = "org.shieldd.Manager1")]
impl Manager1 {
    /// Every session the daemon knows.
    async fn list_sessions(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Vec<DbusSession>, MethodError> {
        self.authorize(conn, &hdr).await?;
        let m = self.manager.clone();
        let list = tokio::task::spawn_blocking(move || m.sessions())
            .await
            .map_err(|e| MethodError::failed(format!("internal error: {e}")))?;
        Ok(list.into_iter().map(DbusSession::from).collect())
    }

    /// One session.
    async fn get_session(
        &self,
        id: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<DbusSession, MethodError> {
        self.authorize(conn, &hdr).await?;
        self.call(move |m| m.session(&id))
            .await
            .map(DbusSession::from)
    }

    /// Kill the session's whole tree.
    async fn kill(
        &self,
        id: String,
        reason: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), MethodError> {
        let actor = self.authorize(conn, &hdr).await?;
        let why = reason_of(&reason, actor.uid);
        self.call(move |m| m.kill(&id, &why, Some(&actor))).await
    }

    /// Freeze the session and cut its network.
    async fn isolate(
        &self,
        id: String,
        reason: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), MethodError> {
        let actor = self.authorize(conn, &hdr).await?;
        let why = reason_of(&reason, actor.uid);
        self.call(move |m| m.isolate(&id, &why, Some(&actor))).await
    }

    /// Undo isolate.
    async fn release(
        &self,
        id: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), MethodError> {
        let actor = self.authorize(conn, &hdr).await?;
        self.call(move |m| m.release(&id, Some(&actor))).await
    }

    /// Replace the session's policy from a file.
    async fn reload_policy(
        &self,
        id: String,
        path: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), MethodError> {
        self.authorize(conn, &hdr).await?;
        self.call(move |m| m.reload_policy(&id, &path)).await
    }

    /// Sessions running or isolated now.
    #[zbus(property(emits_changed_signal = "false"))]
    fn sessions_active(&self) -> u64 {
        self.manager.counters().sessions_active
    }

    /// Sessions started since the daemon started.
    #[zbus(property(emits_changed_signal = "false"))]
    fn sessions_total(&self) -> u64 {
        self.manager.counters().sessions_total
    }

    /// Violations since the daemon started.
    #[zbus(property(emits_changed_signal = "false"))]
    fn violations(&self) -> u64 {
        self.manager.counters().violations
    }

    /// Alerts since the daemon started.
    #[zbus(property(emits_changed_signal = "false"))]
    fn alerts(&self) -> u64 {
        self.manager.counters().alerts
    }

    /// Scans since the daemon started.
    #[zbus(property(emits_changed_signal = "false"))]
    fn scans(&self) -> u64 {
        self.manager.counters().scans
    }

    /// Kernel events lost since the daemon started.
    #[zbus(property(emits_changed_signal = "false"))]
    fn lost_events(&self) -> u64 {
        self.manager.counters().lost_events
    }

    /// Signals this service could not send because it fell behind.
    #[zbus(property(emits_changed_signal = "false"))]
    fn signals_lost(&self) -> u64 {
        self.signals_lost.load(Ordering::Relaxed)
    }

    /// A violation was recorded and acted on.
    #[zbus(signal)]
    async fn violation(
        emitter: &SignalEmitter<'_>,
        session: &str,
        rule: &str,
        action: &str,
        detail: &str,
    ) -> zbus::Result<()>;

    /// An alert fired (`session` is empty for host-wide alerts).
    #[zbus(signal)]
    async fn alert(
        emitter: &SignalEmitter<'_>,
        kind: &str,
        session: &str,
        count: u64,
        window_secs: f64,
        detail: &str,
        ts: &str,
    ) -> zbus::Result<()>;

    /// A session started.
    #[zbus(signal)]
    async fn session_started(
        emitter: &SignalEmitter<'_>,
        session: &str,
        pid: u32,
    ) -> zbus::Result<()>;

    /// A session ended.
    #[zbus(signal)]
    async fn session_ended(
        emitter: &SignalEmitter<'_>,
        session: &str,
        exit_status: i32,
    ) -> zbus::Result<()>;
}

/// A client for `org.shieldd.Manager1` (used by the tests and by
/// `shieldd sessions` when it talks to the bus).
#[proxy(
    interface = "org.shieldd.Manager1",
    default_service = "org.shieldd.Manager1",
    default_path = "/org/shieldd/Manager1"
)]
pub trait Manager1Client {
    /// Every session.
    fn list_sessions(&self) -> zbus::Result<Vec<DbusSession>>;
    /// One session.
    fn get_session(&self, id: &str) -> zbus::Result<DbusSession>;
    /// Kill a session.
    fn kill(&self, id: &str, reason: &str) -> zbus::Result<()>;
    /// Isolate a session.
    fn isolate(&self, id: &str, reason: &str) -> zbus::Result<()>;
    /// Release a session.
    fn release(&self, id: &str) -> zbus::Result<()>;
    /// Reload a session's policy.
    fn reload_policy(&self, id: &str, path: &str) -> zbus::Result<()>;
    /// Sessions active now.
    #[zbus(property)]
    fn sessions_active(&self) -> zbus::Result<u64>;
    /// Violations so far.
    #[zbus(property)]
    fn violations(&self) -> zbus::Result<u64>;
    /// Signals lost so far.
    #[zbus(property)]
    fn signals_lost(&self) -> zbus::Result<u64>;
    /// The `Violation` signal.
    #[zbus(signal)]
    fn violation(&self, session: &str, rule: &str, action: &str, detail: &str) -> zbus::Result<()>;
    /// The `SessionStarted` signal.
    #[zbus(signal)]
    fn session_started(&self, session: &str, pid: u32) -> zbus::Result<()>;
}

/// The running service. Dropping it stops forwarding signals; the bus
/// connection (and the name) goes with the last clone of the connection.
pub struct DbusHandle {
    conn: Connection,
    forwarder: JoinHandle<()>,
    signals_lost: Arc<AtomicU64>,
}

impl DbusHandle {
    /// The bus connection (unique name, for tests and logs).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Signals dropped because the forwarder fell behind the broadcast channel.
    pub fn signals_lost(&self) -> u64 {
        self.signals_lost.load(Ordering::Relaxed)
    }
}

impl Drop for DbusHandle {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

/// Serve `org.shieldd.Manager1` on the bus of `cfg` (`system`, `session`
/// or an address) and forward `signals` as D-Bus signals until the sender
/// side closes. `admin_gid` is the resolved `admin_group` ([`admin_gid`]).
/// The caller checks `cfg.enabled`. Must be called from within a tokio
/// runtime.
pub async fn serve_dbus(
    cfg: &DbusConfig,
    admin_gid: Option<u32>,
    manager: Arc<dyn Manager>,
    signals: broadcast::Receiver<Signal>,
) -> Result<DbusHandle, DbusError> {
    let err = |source| DbusError::Connect {
        bus: cfg.bus.clone(),
        source,
    };
    let builder = match cfg.bus.as_str() {
        "system" => zbus::connection::Builder::system(),
        "session" => zbus::connection::Builder::session(),
        addr => zbus::connection::Builder::address(addr),
    };
    let signals_lost = Arc::new(AtomicU64::new(0));
    let object = Manager1 {
        manager,
        admin_gid,
        signals_lost: signals_lost.clone(),
    };
    let conn = builder
        .name(BUS_NAME)
        .serve_at(OBJECT_PATH, object)
        .build()
        .await
        .map_err(err)?;
    let emitter = SignalEmitter::new(&conn, OBJECT_PATH)
        .map_err(err)?
        .into_owned();
    let lost = signals_lost.clone();
    let forwarder = tokio::spawn(forward(emitter, signals, lost));
    tracing::info!(bus = %cfg.bus, name = BUS_NAME, "D-Bus service ready");
    Ok(DbusHandle {
        conn,
        forwarder,
        signals_lost,
    })
}

async fn forward(
    emitter: SignalEmitter<'static>,
    mut rx: broadcast::Receiver<Signal>,
    lost: Arc<AtomicU64>,
) {
    loop {
        let sig = match rx.recv().await {
            Ok(s) => s,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let total = lost.fetch_add(n, Ordering::Relaxed).saturating_add(n);
                tracing::warn!(
                    missed = n,
                    total,
                    "D-Bus: fell behind; {n} signals were not sent (SignalsLost = {total})"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let r = match &sig {
            Signal::Violation {
                session,
                rule,
                action,
                detail,
            } => Manager1::violation(&emitter, session, rule, action, detail).await,
            Signal::Alert(a) => {
                Manager1::alert(
                    &emitter,
                    &a.kind,
                    a.session.as_deref().unwrap_or(""),
                    a.count,
                    a.window_secs,
                    &a.detail,
                    &a.ts,
                )
                .await
            }
            Signal::SessionStarted { session, pid } => {
                Manager1::session_started(&emitter, session, *pid).await
            }
            Signal::SessionEnded {
                session,
                exit_status,
            } => Manager1::session_ended(&emitter, session, *exit_status).await,
        };
        if let Err(e) = r {
            let total = lost.fetch_add(1, Ordering::Relaxed).saturating_add(1);
            tracing::warn!(error = %e, total, "D-Bus: a signal could not be sent");
        }
    }
}

#[cfg(test)]
mod tests;
