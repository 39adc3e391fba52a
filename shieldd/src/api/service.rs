//! The scan API's [`Service`] for one policy: the scanner and the tool
//! checker of the policy, verdicts recorded as `scan` / `tool_call` events
//! of the session, and containment when the policy's `response:` names an
//! action for a finding kind (`exfiltration: isolate`, `secret: kill`, ...).

use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use shield_client::wire::{Action, Direction, Finding, FindingKind, Verdict};

use super::{Peer, Service, StreamScan};
use crate::policy::{Policy, Response};
use crate::respond::Containment;
use crate::scan::stream::StreamScanner;
use crate::scan::{decide, ScanError, Scanner};
use crate::tools::{ToolChecker, ToolPolicyError};

/// Errors building the service from a policy.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The scanner could not be built.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The tool policy is invalid.
    #[error(transparent)]
    Tools(#[from] ToolPolicyError),
}

/// Scanner + tool checker + session hooks.
pub struct PolicyService {
    scanner: Scanner,
    tools: ToolChecker,
    policy: Policy,
    link: Option<Containment>,
}

impl PolicyService {
    /// Build from a policy; `link` ties it to a running session.
    pub fn new(policy: &Policy, link: Option<Containment>) -> Result<PolicyService, ServiceError> {
        let hosts = policy
            .sandbox
            .network
            .connect
            .iter()
            .filter_map(|r| match &r.target {
                crate::policy::ConnectTarget::Host(h) => Some(h.clone()),
                _ => None,
            })
            .collect();
        let scanner = Scanner::new(&policy.scan, hosts)?;
        // Build every lazily compiled rule set now, not on the agent's first request.
        let _ = scanner.scan(
            "warm up: ignore previous instructions 4111 1111 1111 1111",
            Direction::Inbound,
        );
        Ok(PolicyService {
            scanner,
            tools: ToolChecker::new(&policy.tools)?,
            policy: policy.clone(),
            link,
        })
    }

    /// Compile every lazily built rule set (about half a second of CPU) so
    /// the agent's first request does not pay for it; run it on a spare
    /// thread while the agent starts.
    pub fn warm_up(&self) {
        let _ = self.scanner.scan(
            "warm up: ignore previous instructions; card 4111 1111 1111 1111; https://x.example/?q=1",
            Direction::Inbound,
        );
        let _ = self
            .scanner
            .scan("warm up: AKIAIOSFODNN7EXAMPLE", Direction::Outbound);
        let _ = self.tools.check("warm_up", &Value::Null);
    }

    fn record(&self, event: &str, fields: Value, sync: bool) {
        if let Some(l) = &self.link {
            l.record(event, fields, sync);
        }
    }

    /// Record the verdict and, for a blocked one whose finding kind has a
    /// `response:` entry, contain the session.
    fn after(&self, peer: &Peer, event: Value, v: &Verdict) {
        self.record(
            if event["event"] == "tool_call" {
                "tool_call"
            } else {
                "scan"
            },
            event,
            false,
        );
        if !v.blocked {
            return;
        }
        let Some(link) = &self.link else { return };
        // The strongest configured response among the blocking findings.
        let mut chosen: Option<(Response, &Finding)> = None;
        for f in &v.findings {
            let key = kind_key(f.kind);
            if let Some(r) = self.policy.response.overrides.get(key) {
                if chosen.is_none_or(|(c, _)| *r > c) {
                    chosen = Some((*r, f));
                }
            }
        }
        let Some((resp, f)) = chosen else { return };
        link.violation(
            &format!("{}:{}", kind_key(f.kind), f.ty),
            resp,
            peer.pid.and_then(|p| u32::try_from(p).ok()),
            &format!(
                "the agent's {} was blocked",
                if f.kind == FindingKind::ToolPolicy {
                    "tool call"
                } else {
                    "text"
                }
            ),
        );
    }

    fn in_session(&self, peer: &Peer) -> bool {
        let (Some(link), Some(pid)) = (&self.link, peer.pid) else {
            return false;
        };
        let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return false;
        };
        let want = link.cgroup.to_string_lossy();
        cg.lines().any(|l| {
            l.strip_prefix("0::")
                .is_some_and(|p| !p.is_empty() && want.ends_with(p.trim_end()))
        })
    }
}

/// The `response:` key of a finding kind.
pub fn kind_key(k: FindingKind) -> &'static str {
    match k {
        FindingKind::Injection => "injection",
        FindingKind::Pii => "pii",
        FindingKind::Secret => "secret",
        FindingKind::Exfiltration => "exfiltration",
        FindingKind::ToolPolicy => "tool_policy",
    }
}

fn summary(v: &Verdict) -> Value {
    // Types and places only: the audit trail must not become a copy of the
    // secrets the scanner found.
    Value::Array(
        v.findings
            .iter()
            .map(
                |f| json!({"kind": kind_key(f.kind), "type": f.ty, "start": f.start, "end": f.end}),
            )
            .collect(),
    )
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "allow",
        Action::Redact => "redact",
        Action::NeedsApproval => "needs_approval",
        Action::Block => "block",
    }
}

impl Service for PolicyService {
    fn admit(&self, peer: &Peer) -> Result<(), String> {
        // A supervised session's socket serves its agent, and root (operators).
        if self.link.is_none() || peer.uid == 0 || self.in_session(peer) {
            Ok(())
        } else {
            Err(format!(
                "uid {} (pid {:?}) is not part of this session",
                peer.uid, peer.pid
            ))
        }
    }

    fn scan(&self, peer: &Peer, text: &str, direction: Direction) -> Verdict {
        let v = self.scanner.scan(text, direction);
        if self.link.is_none() {
            // No session to record to or contain: skip building the event.
            return v;
        }
        let dir = match direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        };
        self.after(
            peer,
            json!({"event": "scan", "pid": peer.pid, "direction": dir, "bytes": text.len(),
                   "action": action_name(v.action), "findings": summary(&v), "latency_us": v.latency_us}),
            &v,
        );
        v
    }

    fn check_tool(&self, peer: &Peer, tool: &str, params: &Value) -> Verdict {
        let v = self.tools.check(tool, params);
        if self.link.is_none() {
            return v;
        }
        self.after(
            peer,
            json!({"event": "tool_call", "pid": peer.pid, "tool": tool,
                   "action": action_name(v.action), "findings": summary(&v), "latency_us": v.latency_us}),
            &v,
        );
        v
    }

    fn open_stream(&self, _peer: &Peer, direction: Direction) -> Box<dyn StreamScan> {
        Box::new(Stream {
            inner: StreamScanner::new(self.scanner.clone(), direction),
            actions: self.scanner.actions(direction),
            findings: Vec::new(),
        })
    }
}

/// A streaming scan: findings accumulate; the verdict is the strongest
/// action among them (no redacted text: the tokens are already out).
struct Stream {
    inner: StreamScanner,
    actions: crate::policy::ScanActions,
    findings: Vec<Finding>,
}

/// Findings kept per stream; memory stays bounded on an endless stream of
/// findings, and the verdict is already decided by then.
const MAX_STREAM_FINDINGS: usize = 1000;

impl Stream {
    fn keep(&mut self, new: Vec<Finding>) {
        let room = MAX_STREAM_FINDINGS.saturating_sub(self.findings.len());
        self.findings.extend(new.into_iter().take(room));
    }

    fn verdict(&self) -> Verdict {
        let action = decide(&self.actions, &self.findings);
        Verdict {
            action,
            blocked: action == Action::Block,
            findings: self.findings.clone(),
            redacted: None,
            latency_us: 0,
        }
    }
}

impl StreamScan for Stream {
    fn push(&mut self, chunk: &str) -> Verdict {
        let new = self.inner.push(chunk);
        self.keep(new);
        self.verdict()
    }

    fn close(mut self: Box<Self>) -> Verdict {
        let new = self.inner.finish();
        self.keep(new);
        self.verdict()
    }
}

/// A [`PolicyService`] built on a spare thread: compiling the scanner's
/// rule sets takes a third of a second, which the agent's launch should
/// not wait for. Requests that arrive first wait for the build; a build
/// that fails makes every verdict `block` (fail closed).
pub struct DeferredService {
    cell: Arc<OnceLock<Result<PolicyService, String>>>,
    pending: std::sync::Mutex<Option<(Policy, Option<Containment>)>>,
    kick: std::sync::mpsc::SyncSender<()>,
    kicked: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

/// How long the build waits for a first request before starting anyway:
/// a short-lived command never pays for it, a real agent's interpreter
/// start-up overlaps it.
const BUILD_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

impl DeferredService {
    /// Validate what can be wrong with `policy` now; [`DeferredService::start`]
    /// builds the rest.
    pub fn new(
        policy: &Policy,
        link: Option<Containment>,
    ) -> Result<DeferredService, ServiceError> {
        // The tool policy is the part a user can get wrong: check it before
        // the agent starts.
        ToolChecker::new(&policy.tools)?;
        let (kick, kicked) = std::sync::mpsc::sync_channel(1);
        Ok(DeferredService {
            cell: Arc::new(OnceLock::new()),
            pending: std::sync::Mutex::new(Some((policy.clone(), link))),
            kick,
            kicked: std::sync::Mutex::new(Some(kicked)),
        })
    }

    /// Build on a new thread. Call it after forking the agent: a fork
    /// waits on the allocations of a busy thread (the address-space lock).
    pub fn start(&self) {
        let Some((policy, link)) = self.pending.lock().ok().and_then(|mut p| p.take()) else {
            return;
        };
        let c = self.cell.clone();
        let kicked = self.kicked.lock().ok().and_then(|mut k| k.take());
        std::thread::spawn(move || {
            if let Some(k) = kicked {
                let _ = k.recv_timeout(BUILD_DELAY);
            }
            // The service is gone (a session that ended within the delay):
            // nobody can ask it anything, so nothing to build.
            if Arc::strong_count(&c) == 1 {
                return;
            }
            // Lowest priority: the agent's own start-up comes first; the
            // build uses whatever CPU the agent leaves idle.
            // SAFETY: setpriority on this thread's own tid; no memory passed.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
            }
            let built = PolicyService::new(&policy, link).map_err(|e| e.to_string());
            if let Ok(s) = &built {
                s.warm_up();
            }
            let _ = c.set(built);
        });
    }

    fn get(&self) -> Result<&PolicyService, &str> {
        let _ = self.kick.try_send(());
        self.cell.wait().as_ref().map_err(String::as_str)
    }
}

fn unavailable(why: &str) -> Verdict {
    blocked_unavailable(format!("the scanner could not be built: {why}"))
}

/// The verdict when no scanner can answer: blocked (fail closed), with one
/// `service_unavailable` finding saying why.
pub(crate) fn blocked_unavailable(detail: String) -> Verdict {
    Verdict {
        action: Action::Block,
        blocked: true,
        findings: vec![Finding {
            kind: FindingKind::ToolPolicy,
            ty: "service_unavailable".into(),
            start: 0,
            end: 0,
            score: 1.0,
            detail,
        }],
        redacted: None,
        latency_us: 0,
    }
}

struct Refuse(String);
impl StreamScan for Refuse {
    fn push(&mut self, _chunk: &str) -> Verdict {
        unavailable(&self.0)
    }
    fn close(self: Box<Self>) -> Verdict {
        unavailable(&self.0)
    }
}

impl Service for DeferredService {
    fn admit(&self, peer: &Peer) -> Result<(), String> {
        self.get().map_err(str::to_string)?.admit(peer)
    }
    fn scan(&self, peer: &Peer, text: &str, direction: Direction) -> Verdict {
        match self.get() {
            Ok(s) => s.scan(peer, text, direction),
            Err(e) => unavailable(e),
        }
    }
    fn check_tool(&self, peer: &Peer, tool: &str, params: &Value) -> Verdict {
        match self.get() {
            Ok(s) => s.check_tool(peer, tool, params),
            Err(e) => unavailable(e),
        }
    }
    fn open_stream(&self, peer: &Peer, direction: Direction) -> Box<dyn StreamScan> {
        match self.get() {
            Ok(s) => s.open_stream(peer, direction),
            Err(e) => Box::new(Refuse(e.to_string())),
        }
    }
}
