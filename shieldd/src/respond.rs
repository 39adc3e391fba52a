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
use crate::service::hooks::Hooks;
use crate::service::Signal;

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
    /// The session's slot in that monitor.
    pub slot: u32,
    /// The daemon's observers and signals (None for standalone sessions).
    pub hooks: Option<Arc<Hooks>>,
}

impl Containment {
    /// Append a record to the audit trail (if any), then tell the
    /// observers: every record of a session passes here. Errors go to
    /// stderr. Scan and tool-call records get `elapsed_us` (the verdict's
    /// latency) for the observers' histograms.
    pub fn record(&self, event: &str, mut fields: Value, sync: bool) {
        if matches!(event, "scan" | "tool_call") {
            if let Value::Object(m) = &mut fields {
                if !m.contains_key("elapsed_us") {
                    let us = m.get("latency_us").cloned().unwrap_or(Value::Null);
                    m.insert("elapsed_us".into(), us);
                }
            }
        }
        let observed = self.hooks.as_ref().map(|h| (h, fields.clone()));
        if let Some(a) = &self.audit {
            if let Ok(mut a) = a.lock() {
                if let Err(e) = a.record_for(&self.session, event, fields, sync) {
                    eprintln!("shieldd: {e}");
                }
            }
        }
        if let Some((h, f)) = observed {
            h.observe(&self.session, event, &f);
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
        if let Some(h) = &self.hooks {
            h.signal(Signal::Violation {
                session: self.session.clone(),
                rule: rule.to_string(),
                action: action.to_string(),
                detail: detail.to_string(),
            });
        }
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
            .and_then(|m| {
                m.lock()
                    .ok()
                    .map(|mut m| m.set_isolated_in(self.slot, true).is_ok())
            })
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
                let _ = m.set_isolated_in(self.slot, false);
            }
        }
        let r = std::fs::write(self.cgroup.join("cgroup.freeze"), "0");
        self.record("release", json!({"ok": r.is_ok()}), true);
    }
}
