//! Decisions -> actions: one path for every violation, whether the kernel
//! saw it (eBPF monitor) or the scan API did (a blocked verdict of the
//! agent's own session). Each is recorded (fsync'd) before it is acted on,
//! announced with a `shieldd: violation:` line, and answered per the
//! policy's `response:` (SPEC section 2).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::audit::AuditLog;
use crate::monitor::Monitor;
use crate::policy::Response;

/// The handles needed to contain one session.
#[derive(Clone)]
pub struct Containment {
    /// Session id.
    pub session: String,
    /// The session's cgroup v2 directory.
    pub cgroup: PathBuf,
    /// The audit trail, if one is kept.
    pub audit: Option<Arc<Mutex<AuditLog>>>,
    /// The eBPF monitor, to cut the network on isolate.
    pub monitor: Option<Arc<Mutex<Monitor>>>,
}

impl Containment {
    /// Append a record to the audit trail (if any); errors go to stderr.
    pub fn record(&self, event: &str, fields: Value, sync: bool) {
        if let Some(a) = &self.audit {
            if let Ok(mut a) = a.lock() {
                if let Err(e) = a.record(event, fields, sync) {
                    eprintln!("shieldd: {e}");
                }
            }
        }
    }

    /// Write out buffered records.
    pub fn flush(&self) {
        if let Some(a) = &self.audit {
            if let Ok(mut a) = a.lock() {
                if let Err(e) = a.flush() {
                    eprintln!("shieldd: {e}");
                }
            }
        }
    }

    /// A violation of `rule` by `pid`: record, announce, respond.
    pub fn violation(&self, rule: &str, response: Response, pid: Option<u32>, detail: &str) {
        let action = match response {
            Response::Deny => "deny",
            Response::Log => "log",
            Response::Isolate => "isolate",
            Response::Kill => "kill",
        };
        self.record(
            "violation",
            json!({"pid": pid, "rule": rule, "action": action, "detail": detail}),
            true,
        );
        eprintln!("shieldd: violation: {rule}: {detail} ({action})");
        match response {
            Response::Kill => self.kill(rule),
            Response::Isolate => self.isolate(rule),
            Response::Deny | Response::Log => {}
        }
    }

    /// Kill the whole tree at once.
    pub fn kill(&self, reason: &str) {
        let r = std::fs::write(self.cgroup.join("cgroup.kill"), "1");
        self.record(
            "kill",
            json!({"reason": reason, "ok": r.is_ok(), "error": r.err().map(|e| e.to_string())}),
            true,
        );
    }

    /// Freeze the tree and cut its network; kept until release or kill.
    pub fn isolate(&self, reason: &str) {
        let net = self
            .monitor
            .as_ref()
            .and_then(|m| m.lock().ok().map(|mut m| m.set_isolated(true).is_ok()))
            .unwrap_or(false);
        let r = std::fs::write(self.cgroup.join("cgroup.freeze"), "1");
        self.record(
            "isolate",
            json!({"reason": reason, "frozen": r.is_ok(), "network_cut": net}),
            true,
        );
    }

    /// Undo [`Containment::isolate`].
    pub fn release(&self) {
        if let Some(m) = &self.monitor {
            if let Ok(mut m) = m.lock() {
                let _ = m.set_isolated(false);
            }
        }
        let r = std::fs::write(self.cgroup.join("cgroup.freeze"), "0");
        self.record("release", json!({"ok": r.is_ok()}), true);
    }
}
