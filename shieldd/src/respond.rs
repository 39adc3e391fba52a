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
use crate::service::{Actor, Signal};

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

    /// Write out buffered records and fsync them.
    fn sync(&self) {
        if let Some(a) = &self.audit {
            if let Ok(mut a) = a.lock() {
                if let Err(e) = a.sync() {
                    eprintln!("shieldd: {e}");
                }
            }
        }
    }

    /// Record a containment action in the file before it is taken (so it
    /// precedes the tree's own records), take it, then fsync: a disk flush
    /// between decision and action would let the tree run on for
    /// milliseconds (the demo's agent finished its work in that time).
    fn recorded(&self, event: &str, fields: Value, act: impl FnOnce()) {
        self.record(event, fields, false);
        self.flush();
        act();
        self.sync();
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
        self.kill_by(reason, None);
    }

    /// Kill the whole tree at the request of `actor`. The record is in the
    /// file before `cgroup.kill` (fsync'd right after), so it precedes the
    /// tree's `exit` records; a failed kill adds an `action_failed` record.
    pub fn kill_by(&self, reason: &str, actor: Option<&Actor>) {
        self.recorded("kill", with_actor(json!({"reason": reason}), actor), || {
            if let Err(e) = std::fs::write(self.cgroup.join("cgroup.kill"), "1") {
                self.failed("kill", json!({"error": e.to_string()}));
            }
        });
    }

    /// Freeze the tree and cut its network; kept until release or kill.
    pub fn isolate(&self, reason: &str) {
        self.isolate_by(reason, None);
    }

    /// [`Containment::isolate`] at the request of `actor`: recorded first,
    /// then acted on; a part that fails adds an `action_failed` record.
    pub fn isolate_by(&self, reason: &str, actor: Option<&Actor>) {
        self.recorded(
            "isolate",
            with_actor(json!({"reason": reason}), actor),
            || self.freeze_and_cut(),
        );
    }

    /// The acts of [`Containment::isolate_by`].
    fn freeze_and_cut(&self) {
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
        if !net || r.is_err() {
            self.failed(
                "isolate",
                json!({"frozen": r.is_ok(), "network_cut": net,
                       "error": r.err().map(|e| e.to_string())}),
            );
        }
    }

    /// Undo [`Containment::isolate`].
    pub fn release(&self) {
        self.release_by(None);
    }

    /// [`Containment::release`] at the request of `actor`: recorded first.
    pub fn release_by(&self, actor: Option<&Actor>) {
        self.recorded("release", with_actor(json!({}), actor), || {
            if let Some(m) = &self.monitor {
                if let Ok(mut m) = m.lock() {
                    let _ = m.set_isolated_in(self.slot, false);
                }
            }
            if let Err(e) = std::fs::write(self.cgroup.join("cgroup.freeze"), "0") {
                self.failed("release", json!({"error": e.to_string()}));
            }
        });
    }

    /// An `action_failed` record (fsync'd) and a stderr line.
    fn failed(&self, action: &str, mut fields: Value) {
        eprintln!(
            "shieldd: {action} of session {} failed: {fields}",
            self.session
        );
        if let Value::Object(m) = &mut fields {
            m.insert("action".into(), json!(action));
        }
        self.record("action_failed", fields, true);
    }
}

/// `fields` plus `actor` when someone asked for the action.
fn with_actor(mut fields: Value, actor: Option<&Actor>) -> Value {
    if let (Some(a), Value::Object(m)) = (actor, &mut fields) {
        m.insert("actor".into(), json!(a));
    }
    fields
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A containment whose cgroup files are FIFOs: opening one to write
    /// blocks until the test opens it to read, so the test sees the trail
    /// as it stood the moment shieldd acted.
    fn fifo_containment(name: &str) -> (Containment, PathBuf, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("shieldd-respond-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        for f in ["cgroup.kill", "cgroup.freeze"] {
            nix::unistd::mkfifo(&dir.join(f), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        }
        let trail = dir.join("audit.jsonl");
        let audit = AuditLog::open(&trail, "s1").expect("audit");
        let c = Containment {
            session: "s1".into(),
            cgroup: dir.clone(),
            audit: Some(Arc::new(Mutex::new(audit))),
            monitor: None,
            slot: 0,
            hooks: None,
        };
        (c, dir, trail)
    }

    fn events(trail: &Path) -> Vec<Value> {
        std::fs::read_to_string(trail)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (up to 5 s) for the trail's last record to be `want`
    /// while shieldd is still blocked opening `fifo` (so it has not acted
    /// yet), then lets it act and returns what it wrote. A record written
    /// only after acting never shows up in time.
    fn recorded_before_act(fifo: &Path, trail: &Path, want: &str) -> (Vec<Value>, String) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let seen = loop {
            let seen = events(trail);
            if seen.last().is_some_and(|r| r["event"] == want) {
                break seen;
            }
            if std::time::Instant::now() > deadline {
                // Unblock shieldd before failing, or the test hangs.
                let _ = std::fs::read_to_string(fifo);
                panic!("no {want} record before acting: {seen:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let written = std::fs::read_to_string(fifo).expect("fifo");
        (seen, written)
    }

    #[test]
    fn kill_is_recorded_before_cgroup_kill_is_written() {
        let (c, dir, trail) = fifo_containment("kill");
        let actor = Actor {
            via: "control".into(),
            uid: 0,
            pid: Some(7),
        };
        let (fifo, t2) = (dir.join("cgroup.kill"), trail.clone());
        let t = std::thread::spawn(move || recorded_before_act(&fifo, &t2, "kill"));
        c.kill_by("test", Some(&actor));
        let (seen, written) = t.join().expect("thread");
        assert_eq!(written, "1");
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0]["reason"], "test");
        assert_eq!(
            seen[0]["actor"],
            json!({"via": "control", "uid": 0, "pid": 7})
        );
        // Nothing failed.
        assert_eq!(events(&trail).len(), 1);
    }

    #[test]
    fn isolate_and_release_are_recorded_before_cgroup_freeze_is_written() {
        let (c, dir, trail) = fifo_containment("isolate");
        for (want, value) in [("isolate", "1"), ("release", "0")] {
            let (fifo, t2) = (dir.join("cgroup.freeze"), trail.clone());
            let t = std::thread::spawn(move || recorded_before_act(&fifo, &t2, want));
            if want == "isolate" {
                c.isolate_by("look", None);
            } else {
                c.release_by(None);
            }
            let (seen, written) = t.join().expect("thread");
            assert_eq!(written, value);
            // The daemon's own decisions name no requester.
            assert!(seen.iter().all(|r| r.get("actor").is_none()), "{seen:?}");
        }
        // No monitor here, so the network could not be cut: said so.
        let all = events(&trail);
        let failed: Vec<_> = all
            .iter()
            .filter(|r| r["event"] == "action_failed")
            .collect();
        assert_eq!(failed.len(), 1, "{all:?}");
        assert_eq!(failed[0]["action"], "isolate");
        assert_eq!(failed[0]["frozen"], true);
        assert_eq!(failed[0]["network_cut"], false);
    }
}
