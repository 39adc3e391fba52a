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
