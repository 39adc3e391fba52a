//! Where every audit record of every session passes: the daemon's
//! observers (metrics, alerts, the registry's own counters) and the signal
//! channel (D-Bus signals, attached `shieldd run` callers).

use std::sync::{Arc, RwLock};

use serde_json::Value;
use tokio::sync::broadcast;

use super::{Observer, Signal};

/// Signals buffered for a slow receiver before it starts losing the oldest.
const SIGNAL_BUFFER: usize = 1024;

/// Observers and the signal sender, shared by every session of a daemon.
pub struct Hooks {
    observers: RwLock<Vec<Arc<dyn Observer>>>,
    signals: broadcast::Sender<Signal>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks::new()
    }
}

impl Hooks {
    /// No observers yet; a signal channel nobody listens to.
    pub fn new() -> Hooks {
        let (signals, _) = broadcast::channel(SIGNAL_BUFFER);
        Hooks {
            observers: RwLock::new(Vec::new()),
            signals,
        }
    }

    /// Tell `o` every record written from now on, of every session.
    pub fn add_observer(&self, o: Arc<dyn Observer>) {
        if let Ok(mut v) = self.observers.write() {
            v.push(o);
        }
    }

    /// The sender of [`Signal`]s: the daemon sends `Violation`,
    /// `SessionStarted` and `SessionEnded` on it; `Alert` is sent by the
    /// alert rules. Subscribe to receive them.
    pub fn signals(&self) -> broadcast::Sender<Signal> {
        self.signals.clone()
    }

    /// Announce a signal (no receiver is not an error).
    pub fn signal(&self, s: Signal) {
        let _ = self.signals.send(s);
    }

    /// Tell every observer one record (after the audit trail has it).
    pub fn observe(&self, session: &str, event: &str, fields: &Value) {
        if let Ok(v) = self.observers.read() {
            for o in v.iter() {
                o.observe(session, event, fields);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::respond::Containment;
    use serde_json::json;
    use std::sync::Mutex;

    /// Checks, when told, that the trail already holds the record.
    struct Seen {
        trail: std::path::PathBuf,
        got: Mutex<Vec<(String, String, Value, bool)>>,
    }

    impl Observer for Seen {
        fn observe(&self, session: &str, event: &str, fields: &Value) {
            let text = std::fs::read_to_string(&self.trail).unwrap_or_default();
            let written = text
                .lines()
                .any(|l| l.contains(&format!("\"event\":\"{event}\"")) && l.contains(session));
            if let Ok(mut g) = self.got.lock() {
                g.push((session.into(), event.into(), fields.clone(), written));
            }
        }
    }

    #[test]
    fn every_record_reaches_observers_after_the_trail_and_violations_signal() {
        let dir = std::env::temp_dir().join(format!("shieldd-hooks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let trail = dir.join("audit.jsonl");
        let audit = Arc::new(Mutex::new(AuditLog::open(&trail, "daemon").expect("open")));
        let hooks = Arc::new(Hooks::new());
        let seen = Arc::new(Seen {
            trail: trail.clone(),
            got: Mutex::new(Vec::new()),
        });
        hooks.add_observer(seen.clone());
        let mut rx = hooks.signals().subscribe();
        let c = |s: &str| Containment {
            session: s.into(),
            cgroup: dir.join("no-cgroup"),
            audit: Some(audit.clone()),
            monitor: None,
            slot: 0,
            hooks: Some(hooks.clone()),
        };
        let (a, b) = (c("sess-a"), c("sess-b"));
        a.record("scan", json!({"action": "block", "latency_us": 41}), true);
        b.record(
            "tool_call",
            json!({"action": "allow", "latency_us": 7}),
            true,
        );
        b.violation("exec", crate::policy::Response::Log, Some(9), "exec of /x");
        let got = seen.got.lock().expect("got").clone();
        let names: Vec<(&str, &str)> = got
            .iter()
            .map(|(s, e, _, _)| (s.as_str(), e.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("sess-a", "scan"),
                ("sess-b", "tool_call"),
                ("sess-b", "violation")
            ]
        );
        assert!(got.iter().all(|g| g.3), "observed before written: {got:?}");
        assert_eq!(got[0].2["elapsed_us"], 41);
        assert_eq!(got[1].2["elapsed_us"], 7);
        // A record that is neither scan nor tool call gets no elapsed_us.
        assert!(got[2].2.get("elapsed_us").is_none());
        match rx.try_recv() {
            Ok(Signal::Violation {
                session, action, ..
            }) => assert_eq!((session.as_str(), action.as_str()), ("sess-b", "log")),
            other => panic!("{other:?}"),
        }
        // One trail, one chain, both sessions.
        assert_eq!(crate::audit::verify(&trail).expect("chain"), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
