//! The alert rules of the guide, as configuration (`alerts:` in the daemon
//! config): an [`Observer`] that reads `scan` and `tool_call` records and
//! raises an [`Alert`] when
//!
//! - `blocked_inputs` (session): N inbound scans whose verdict blocked
//!   (`action: block`) within the window, in one session;
//! - `blocked_inputs` (host-wide, `session` none): the same over all sessions;
//! - `tool_denials`: N tool calls of one session denied (`action: block`;
//!   `needs_approval` is a question to a person, not a denial);
//! - `sensitive_output`: one outbound scan with any `pii` or `secret`
//!   finding (whatever the verdict: redacted text still means the agent
//!   tried to send it);
//! - `tool_rate`: N tool calls of one session, any verdict, within the window.
//!
//! Windows slide: a record counts for `window` after it was seen. The N-th
//! record in the window fires and empties that window, so the next alert
//! needs N new records. The same alert (kind, session) is not raised again
//! within `cooldown`; a suppressed alert is counted, not lost silently.
//!
//! Each alert goes to the sink given at construction (the daemon records
//! it as an `alert` event and sends `Signal::Alert`) and, when `command`
//! is set, to that argv with the alert as one JSON line on stdin: run on
//! the tokio runtime, at most [`MAX_COMMANDS`] at once (an alert arriving
//! when all are busy skips its command and is counted), killed after the
//! timeout. `observe` never waits for any of it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::config::{AlertsConfig, Threshold};
use super::{Alert, Observer};

/// Commands run at once; the next alerts skip theirs until one ends.
pub const MAX_COMMANDS: usize = 4;
/// How long a command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest `count` a threshold may have (each window keeps at most
/// `count` timestamps).
pub const MAX_THRESHOLD: u64 = 100_000;
/// Longest `detail` line.
const MAX_DETAIL: usize = 300;

/// Where alerts go (the daemon: audit record + D-Bus signal). Called after
/// the engine's lock is released, so it may feed records back to observers.
pub type AlertSink = Arc<dyn Fn(Alert) + Send + Sync>;

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A threshold that cannot work.
    #[error("alerts.{rule}: count must be between 1 and {MAX_THRESHOLD}, not {count}")]
    BadThreshold {
        /// The config key.
        rule: &'static str,
        /// The count given.
        count: u64,
    },
    /// `command` is an empty list.
    #[error("alerts.command: give the program and its arguments as a list, e.g. [/usr/local/bin/page, --team, ops]")]
    EmptyCommand,
    /// `command` is set but there is no tokio runtime to run it on.
    #[error(
        "alerts.command needs a tokio runtime: build the alert engine inside the daemon's runtime"
    )]
    NoRuntime,
}

/// What the engine did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Alerts handed to the sink.
    pub raised: u64,
    /// Alerts not raised because of the cooldown.
    pub suppressed: u64,
    /// Commands that ran and exited 0.
    pub commands_ok: u64,
    /// Commands that could not start, exited non-zero or timed out.
    pub commands_failed: u64,
    /// Commands not started because [`MAX_COMMANDS`] were running.
    pub commands_skipped: u64,
}

#[derive(Default)]
struct Stats {
    raised: AtomicU64,
    suppressed: AtomicU64,
    commands_ok: AtomicU64,
    commands_failed: AtomicU64,
    commands_skipped: AtomicU64,
}

#[derive(Default)]
struct SessionWindows {
    blocked: VecDeque<Instant>,
    denials: VecDeque<Instant>,
    calls: VecDeque<Instant>,
}

#[derive(Default)]
struct State {
    host_blocked: VecDeque<Instant>,
    sessions: HashMap<String, SessionWindows>,
    last_fired: HashMap<(&'static str, Option<String>), Instant>,
}

struct Runner {
    argv: Vec<String>,
    rt: tokio::runtime::Handle,
    slots: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
}

/// The alert rules, fed by every audit record.
pub struct AlertEngine {
    cfg: AlertsConfig,
    sink: AlertSink,
    state: Mutex<State>,
    runner: Option<Runner>,
    stats: Arc<Stats>,
}

/// Add `now` to a window; true when it holds `t.count` records.
fn hit(q: &mut VecDeque<Instant>, t: Threshold, now: Instant) -> bool {
    while q
        .front()
        .is_some_and(|&f| now.saturating_duration_since(f) >= t.window)
    {
        q.pop_front();
    }
    q.push_back(now);
    // Memory stays at `count` timestamps whatever the record rate.
    while q.len() as u64 > t.count {
        q.pop_front();
    }
    q.len() as u64 >= t.count
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_DETAIL {
        let mut end = MAX_DETAIL;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

fn str_field<'a>(fields: &'a Value, key: &str) -> &'a str {
    fields.get(key).and_then(Value::as_str).unwrap_or("")
}

impl AlertEngine {
    /// The engine for `cfg`, with the default command limits. Call it inside
    /// the daemon's tokio runtime when `cfg.command` is set.
    pub fn new(cfg: &AlertsConfig, sink: AlertSink) -> Result<Arc<AlertEngine>, AlertError> {
        AlertEngine::with_limits(cfg, sink, MAX_COMMANDS, COMMAND_TIMEOUT)
    }

    /// As [`AlertEngine::new`], with how many commands may run at once and
    /// for how long.
    pub fn with_limits(
        cfg: &AlertsConfig,
        sink: AlertSink,
        max_commands: usize,
        timeout: Duration,
    ) -> Result<Arc<AlertEngine>, AlertError> {
        for (rule, t) in [
            ("blocked_inputs_session", cfg.blocked_inputs_session),
            ("blocked_inputs_host", cfg.blocked_inputs_host),
            ("tool_denials", cfg.tool_denials),
            ("tool_rate", cfg.tool_rate),
        ] {
            if let Some(t) = t {
                if t.count == 0 || t.count > MAX_THRESHOLD {
                    return Err(AlertError::BadThreshold {
                        rule,
                        count: t.count,
                    });
                }
            }
        }
        let runner = match &cfg.command {
            None => None,
            Some(argv) if argv.is_empty() => return Err(AlertError::EmptyCommand),
            Some(argv) => Some(Runner {
                argv: argv.clone(),
                rt: tokio::runtime::Handle::try_current().map_err(|_| AlertError::NoRuntime)?,
                slots: Arc::new(tokio::sync::Semaphore::new(max_commands.max(1))),
                timeout,
            }),
        };
        Ok(Arc::new(AlertEngine {
            cfg: cfg.clone(),
            sink,
            state: Mutex::new(State::default()),
            runner,
            stats: Arc::new(Stats::default()),
        }))
    }

    /// Counts so far.
    pub fn stats(&self) -> AlertStats {
        let s = &self.stats;
        AlertStats {
            raised: s.raised.load(Ordering::Relaxed),
            suppressed: s.suppressed.load(Ordering::Relaxed),
            commands_ok: s.commands_ok.load(Ordering::Relaxed),
            commands_failed: s.commands_failed.load(Ordering::Relaxed),
            commands_skipped: s.commands_skipped.load(Ordering::Relaxed),
        }
    }

    /// [`Observer::observe`] with the time given (tests drive the windows
    /// with it).
    pub fn observe_at(&self, session: &str, event: &str, fields: &Value, now: Instant) {
        let alerts = {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            self.rules(&mut st, session, event, fields, now)
        };
        // Outside the lock: the sink records an `alert` event, which comes
        // back here as a record.
        for a in alerts {
            self.stats.raised.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(kind = %a.kind, session = ?a.session, detail = %a.detail, "alert");
            self.run_command(&a);
            (self.sink)(a);
        }
    }

    fn rules(
        &self,
        st: &mut State,
        session: &str,
        event: &str,
        fields: &Value,
        now: Instant,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let c = &self.cfg;
        // Raise unless in cooldown; true when raised (the caller then
        // empties the window, so the next alert needs N new records).
        let mut fire = |st: &mut State,
                        kind: &'static str,
                        sess: Option<&str>,
                        count: u64,
                        window: Duration,
                        detail: String| {
            let key = (kind, sess.map(str::to_string));
            if let Some(&last) = st.last_fired.get(&key) {
                if now.saturating_duration_since(last) < c.cooldown {
                    self.stats.suppressed.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            }
            st.last_fired.insert(key, now);
            out.push(Alert {
                kind: kind.into(),
                session: sess.map(str::to_string),
                count,
                window_secs: window.as_secs_f64(),
                detail: cut(detail),
                ts: crate::audit::now_rfc3339(),
            });
            true
        };
        let clear = |st: &mut State, which: fn(&mut SessionWindows) -> &mut VecDeque<Instant>| {
            if let Some(w) = st.sessions.get_mut(session) {
                which(w).clear();
            }
        };
        match event {
            "scan" => {
                let dir = str_field(fields, "direction");
                let blocked = str_field(fields, "action") == "block"
                    || fields.get("blocked").and_then(Value::as_bool) == Some(true);
                if dir == "inbound" && blocked {
                    if let Some(t) = c.blocked_inputs_session {
                        let w = st.sessions.entry(session.to_string()).or_default();
                        if hit(&mut w.blocked, t, now)
                            && fire(
                                st,
                                "blocked_inputs",
                                Some(session),
                                t.count,
                                t.window,
                                format!(
                                    "{} blocked inbound scans within {:?} in session {session}",
                                    t.count, t.window
                                ),
                            )
                        {
                            clear(st, |w| &mut w.blocked);
                        }
                    }
                    if let Some(t) = c.blocked_inputs_host {
                        if hit(&mut st.host_blocked, t, now)
                            && fire(
                                st,
                                "blocked_inputs",
                                None,
                                t.count,
                                t.window,
                                format!(
                                    "{} blocked inbound scans within {:?} across all sessions",
                                    t.count, t.window
                                ),
                            )
                        {
                            st.host_blocked.clear();
                        }
                    }
                }
                if dir == "outbound" && c.sensitive_output {
                    let found: Vec<String> = fields
                        .get("findings")
                        .and_then(Value::as_array)
                        .map(|fs| {
                            fs.iter()
                                .filter(|f| matches!(str_field(f, "kind"), "pii" | "secret"))
                                .map(|f| {
                                    format!("{}:{}", str_field(f, "kind"), str_field(f, "type"))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    if !found.is_empty() {
                        let _ = fire(
                            st,
                            "sensitive_output",
                            Some(session),
                            found.len() as u64,
                            Duration::ZERO,
                            format!(
                                "outbound text of session {session} carried {} ({})",
                                found.join(", "),
                                str_field(fields, "action")
                            ),
                        );
                    }
                }
            }
            "tool_call" => {
                let tool = str_field(fields, "tool");
                if str_field(fields, "action") == "block" {
                    if let Some(t) = c.tool_denials {
                        let w = st.sessions.entry(session.to_string()).or_default();
                        if hit(&mut w.denials, t, now)
                            && fire(st, "tool_denials", Some(session), t.count, t.window, format!(
                                "{} tool calls denied within {:?} in session {session} (last: {tool})",
                                t.count, t.window
                            ))
                        {
                            clear(st, |w| &mut w.denials);
                        }
                    }
                }
                if let Some(t) = c.tool_rate {
                    let w = st.sessions.entry(session.to_string()).or_default();
                    if hit(&mut w.calls, t, now)
                        && fire(
                            st,
                            "tool_rate",
                            Some(session),
                            t.count,
                            t.window,
                            format!(
                                "{} tool calls within {:?} in session {session} (last: {tool})",
                                t.count, t.window
                            ),
                        )
                    {
                        clear(st, |w| &mut w.calls);
                    }
                }
            }
            "session_end" => {
                st.sessions.remove(session);
                st.last_fired
                    .retain(|(_, s), _| s.as_deref() != Some(session));
            }
            _ => {}
        }
        out
    }

    fn run_command(&self, alert: &Alert) {
        let Some(r) = &self.runner else { return };
        let Ok(permit) = r.slots.clone().try_acquire_owned() else {
            self.stats.commands_skipped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(kind = %alert.kind, "alert command skipped: {} already running", MAX_COMMANDS);
            return;
        };
        let mut input = match serde_json::to_vec(alert) {
            Ok(v) => v,
            Err(e) => {
                self.stats.commands_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "alert command: cannot encode the alert");
                return;
            }
        };
        input.push(b'\n');
        let argv = r.argv.clone();
        let timeout = r.timeout;
        let stats = self.stats.clone();
        r.rt.spawn(async move {
            let _permit = permit;
            match run_one(&argv, &input, timeout).await {
                Ok(()) => {
                    stats.commands_ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.commands_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(command = ?argv, "alert command failed: {e}");
                }
            }
        });
    }
}

async fn run_one(argv: &[String], input: &[u8], timeout: Duration) -> Result<(), String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {prog}: {e}"))?;
    let stdin = child.stdin.take();
    let done = tokio::time::timeout(timeout, async {
        if let Some(mut s) = stdin {
            // A command that does not read its input is its own business.
            let _ = s.write_all(input).await;
        }
        child.wait().await
    })
    .await;
    match done {
        Err(_) => {
            let _ = child.start_kill();
            Err(format!("timed out after {timeout:?}; killed"))
        }
        Ok(Err(e)) => Err(format!("wait: {e}")),
        Ok(Ok(st)) if st.success() => Ok(()),
        Ok(Ok(st)) => Err(format!("exited with {st}")),
    }
}

impl Observer for AlertEngine {
    fn observe(&self, session: &str, event: &str, fields: &Value) {
        self.observe_at(session, event, fields, Instant::now());
    }
}

#[cfg(test)]
mod tests;
