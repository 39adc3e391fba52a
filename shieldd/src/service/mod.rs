//! Daemon mode for agent hosts (`shieldd daemon`): the seam between the
//! session registry, which owns agents, and the ways operators reach it
//! (control socket, D-Bus, alerts, metrics, systemd).
//!
//! Everything an operator can do goes through [`Manager`]; everything that
//! happens to a session is told to the [`Observer`]s (metrics, alerts) as the
//! audit record it produced, and announced as a [`Signal`] (D-Bus signals).
//! One definition of each, so the control socket and the bus cannot drift.

pub mod alerts;
pub mod attach;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dbus;
pub mod hardening;
pub mod hooks;
pub mod metrics;
pub mod osbytes;
pub mod registry;
pub mod systemd;
pub mod watchdog;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a supervised session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The agent runs.
    Running,
    /// Frozen and cut from the network, kept for forensics.
    Isolated,
    /// The agent's tree is gone; the record stays until it is collected.
    Ended,
}

/// One session as operators see it (`shieldd sessions`, `GetSession`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Session id (`SHIELD_SESSION`).
    pub id: String,
    /// The agent's first process.
    pub pid: u32,
    /// The uid the agent runs as.
    pub uid: u32,
    /// The command line, as given.
    pub command: Vec<String>,
    /// Where the policy came from (a path, or `builtin:default`).
    pub policy_source: String,
    /// Start time, RFC 3339 UTC.
    pub started: String,
    /// Running, isolated or ended.
    pub state: SessionState,
    /// Exit status once ended (SPEC section 1 numbering).
    pub exit_status: Option<i32>,
    /// The session's cgroup v2 directory.
    pub cgroup: String,
    /// The session's scan API socket.
    pub socket: String,
    /// Violations recorded so far.
    pub violations: u64,
    /// Scans served so far.
    pub scans: u64,
    /// Scans whose verdict blocked.
    pub blocked: u64,
    /// Tool calls checked so far.
    pub tool_calls: u64,
    /// Tool calls denied.
    pub tool_denials: u64,
    /// Kernel events lost for this session (ring buffer full).
    pub lost_events: u64,
}

/// Host-wide counters (D-Bus properties, metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Sessions running or isolated now.
    pub sessions_active: u64,
    /// Sessions started since the daemon started.
    pub sessions_total: u64,
    /// Violations since the daemon started.
    pub violations: u64,
    /// Alerts raised since the daemon started.
    pub alerts: u64,
    /// Scans served since the daemon started.
    pub scans: u64,
    /// Kernel events lost since the daemon started.
    pub lost_events: u64,
}

/// Why a control operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum ControlError {
    /// No session has that id.
    #[error("no session {0}")]
    NoSuchSession(String),
    /// The caller is not root nor in the admin group.
    #[error("permission denied: control operations are for root or the admin group")]
    NotPermitted,
    /// The operation does not apply in the session's state (e.g. release of a running session).
    #[error("{0}")]
    InvalidState(String),
    /// The operation was tried and failed.
    #[error("{0}")]
    Failed(String),
}

/// Who asked for a control operation: the `actor` field of the `kill`,
/// `isolate` and `release` records it causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// How the request came: `control` (the socket) or `dbus`.
    pub via: String,
    /// The requester's uid (SO_PEERCRED, or the bus's word for D-Bus).
    pub uid: u32,
    /// The requester's pid, where known.
    pub pid: Option<u32>,
}

/// What operators can do to the daemon's sessions. The registry implements
/// it; the control socket and D-Bus call it after checking the caller.
pub trait Manager: Send + Sync {
    /// Every session the daemon knows, running, isolated or recently ended.
    fn sessions(&self) -> Vec<SessionInfo>;
    /// One session.
    fn session(&self, id: &str) -> Result<SessionInfo, ControlError>;
    /// Kill the session's whole tree (recorded as `kill` with `reason` and
    /// `actor`, the requester; None when the daemon itself decides).
    fn kill(&self, id: &str, reason: &str, actor: Option<&Actor>) -> Result<(), ControlError>;
    /// Freeze the tree and cut its network (recorded as `isolate`).
    fn isolate(&self, id: &str, reason: &str, actor: Option<&Actor>) -> Result<(), ControlError>;
    /// Undo isolate (recorded as `release`).
    fn release(&self, id: &str, actor: Option<&Actor>) -> Result<(), ControlError>;
    /// Replace the session's policy from a file: the tool and scan rules and
    /// the kernel maps; confinement set at launch (Landlock, seccomp) stays.
    fn reload_policy(&self, id: &str, path: &str) -> Result<(), ControlError>;
    /// Host-wide counters.
    fn counters(&self) -> Counters;
}

/// An alert raised by the alert rules (SPEC `alert` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Which rule: `blocked_inputs`, `tool_denials`, `sensitive_output`, `tool_rate`.
    pub kind: String,
    /// The session it concerns; `None` for host-wide alerts.
    pub session: Option<String>,
    /// How many matching records were in the window.
    pub count: u64,
    /// The window, seconds (0 for single-record rules).
    pub window_secs: f64,
    /// One readable line.
    pub detail: String,
    /// When, RFC 3339 UTC.
    pub ts: String,
}

/// Something operators are told about as it happens (D-Bus signals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// A violation was recorded and acted on.
    Violation {
        /// Session id.
        session: String,
        /// Rule name (SPEC section 6).
        rule: String,
        /// deny, kill, isolate or log.
        action: String,
        /// One readable line.
        detail: String,
    },
    /// An alert fired.
    Alert(Alert),
    /// A session started.
    SessionStarted {
        /// Session id.
        session: String,
        /// The agent's first process.
        pid: u32,
    },
    /// A session ended.
    SessionEnded {
        /// Session id.
        session: String,
        /// Its exit status.
        exit_status: i32,
    },
}

/// Told every audit record of every session, as written (after the audit
/// trail has it). Calls are synchronous and must be cheap: observers keep
/// counters and windows, and hand slow work (running a command) to a task.
pub trait Observer: Send + Sync {
    /// One record: `event` is the SPEC section 6 event name; `fields` are
    /// its fields (for `scan` records, `elapsed_us` is the scan's latency).
    fn observe(&self, session: &str, event: &str, fields: &Value);
}
