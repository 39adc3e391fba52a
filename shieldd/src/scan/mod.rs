//! Text scanning (issue 4): prompt injection, PII, secrets, exfiltration.
//!
//! Layers: [`normalize`] -> [`decode`] -> [`injection`] rules + [`learned`]
//! model on inbound text; [`pii`], [`secrets`], [`exfil`] on any text;
//! [`redact`] builds the redacted text; [`stream`] scans token streams.
//!
//! [`Scanner::scan`] is the entry point: it applies the policy's action per
//! finding kind and returns a [`Verdict`] whose offsets are byte offsets into
//! the text it was given.

pub mod decode;
pub mod exfil;
pub mod injection;
pub mod learned;
pub mod normalize;
pub mod pii;
pub mod redact;
pub mod rules;
pub mod secrets;
pub mod stream;

use std::time::Instant;

use shield_client::wire::{Action, Direction, Finding, FindingKind, Verdict};

use crate::policy::{ScanAction, ScanActions, ScanPolicy};
use injection::InjectionRules;

pub use stream::StreamScanner;

/// Default probability above which the learned model reports an injection.
pub const DEFAULT_LEARNED_THRESHOLD: f32 = 0.5;
/// Texts longer than this are scanned in overlapping windows of this size,
/// so memory stays bounded whatever the input.
pub const WINDOW: usize = 1 << 20;
/// Overlap between windows: an injection or entity split across a window
/// edge is still seen whole if it is shorter than this.
pub const WINDOW_OVERLAP: usize = 4096;

/// The scanner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A built-in injection rule does not compile (a build defect).
    #[error("{0}")]
    Rules(String),
}

/// A text scanner configured by the `scan:` section of a policy.
#[derive(Debug, Clone)]
pub struct Scanner {
    policy: ScanPolicy,
    allowed_hosts: Vec<String>,
    rules: &'static InjectionRules,
    learned_threshold: f32,
}

impl Scanner {
    /// Build a scanner. `allowed_hosts` are the hosts the agent may reach;
    /// links to them are not exfiltration.
    pub fn new(policy: &ScanPolicy, allowed_hosts: Vec<String>) -> Result<Scanner, ScanError> {
        let rules = InjectionRules::builtin().map_err(|e| ScanError::Rules(e.to_string()))?;
        Ok(Scanner {
            policy: *policy,
            allowed_hosts,
            rules,
            learned_threshold: DEFAULT_LEARNED_THRESHOLD,
        })
    }

    /// Change the probability above which the learned model's score is a
    /// finding (`learned_injection`); above 1.0 turns the model off.
    pub fn with_learned_threshold(mut self, threshold: f32) -> Scanner {
        self.learned_threshold = threshold;
        self
    }

    /// The actions that apply to `direction`.
    pub fn actions(&self, direction: Direction) -> ScanActions {
        match direction {
            Direction::Inbound => self.policy.inbound,
            Direction::Outbound => self.policy.outbound,
        }
    }

    /// Scan `text` and decide what to do with it.
    pub fn scan(&self, text: &str, direction: Direction) -> Verdict {
        let t0 = Instant::now();
        let actions = self.actions(direction);
        let mut findings = self.findings(text, direction);
        findings.retain(|f| action_for(&actions, f.kind) != ScanAction::Off);
        findings.sort_by(|a, b| {
            (a.start, a.end, &a.ty)
                .partial_cmp(&(b.start, b.end, &b.ty))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        findings.dedup_by(|a, b| a.start == b.start && a.end == b.end && a.ty == b.ty);
        let strongest = findings
            .iter()
            .map(|f| action_for(&actions, f.kind))
            .max()
            .unwrap_or(ScanAction::Off);
        let action = match strongest {
            ScanAction::Off | ScanAction::Log => Action::Allow,
            ScanAction::Redact => Action::Redact,
            ScanAction::Block => Action::Block,
        };
        let redacted = (action == Action::Redact).then(|| {
            let to_redact: Vec<Finding> = findings
                .iter()
                .filter(|f| action_for(&actions, f.kind) == ScanAction::Redact)
                .cloned()
                .collect();
            redact::redact(text, &to_redact, &redact::RedactMode::Label)
        });
        Verdict {
            action,
            blocked: action == Action::Block,
            findings,
            redacted,
            latency_us: u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// Every finding of `text` for the kinds `direction` does not turn off,
    /// unsorted, offsets into `text`. Long texts are scanned in windows.
    pub fn findings(&self, text: &str, direction: Direction) -> Vec<Finding> {
        let actions = self.actions(direction);
        let mut out = Vec::new();
        if text.len() <= WINDOW {
            self.scan_window(text, &actions, direction, &mut out);
            return out;
        }
        let mut start = 0;
        while start < text.len() {
            let end = floor_boundary(text, (start + WINDOW).min(text.len()));
            let Some(window) = text.get(start..end) else {
                break;
            };
            let mut part = Vec::new();
            self.scan_window(window, &actions, direction, &mut part);
            for mut f in part {
                f.start += start;
                f.end += start;
                out.push(f);
            }
            if end >= text.len() {
                break;
            }
            let next = floor_boundary(text, end.saturating_sub(WINDOW_OVERLAP));
            start = if next > start { next } else { end };
        }
        out
    }

    fn scan_window(
        &self,
        text: &str,
        actions: &ScanActions,
        direction: Direction,
        out: &mut Vec<Finding>,
    ) {
        let mut budget = decode::DEFAULT_BUDGET;
        self.scan_layer(text, actions, 0, &mut budget, out);
        let want_learned = direction == Direction::Inbound
            && actions.injection != ScanAction::Off
            && self.learned_threshold <= 1.0;
        if want_learned {
            let p = learned::score(text);
            if p.is_finite() && p >= self.learned_threshold {
                out.push(Finding {
                    kind: FindingKind::Injection,
                    ty: "learned_injection".into(),
                    start: 0,
                    end: text.len(),
                    score: p.clamp(0.0, 1.0),
                    detail: "learned classifier".into(),
                });
            }
        }
        if actions.exfiltration != ScanAction::Off {
            exfil::detect(text, &self.allowed_hosts, out);
        }
    }

    /// Rules, PII and secrets over `text`, then over every encoded payload
    /// in it (to [`decode::MAX_DEPTH`]), whose findings point at the payload.
    fn scan_layer(
        &self,
        text: &str,
        actions: &ScanActions,
        depth: usize,
        budget: &mut usize,
        out: &mut Vec<Finding>,
    ) {
        if actions.injection != ScanAction::Off {
            let norm = normalize::normalize(text);
            self.rules.scan(&norm, 0.0, "", out);
            // Only strong rules on the ROT13 and reversed views: ordinary
            // text read backwards or rotated is noise.
            self.rules.scan(&norm.rot13(), 0.8, "rot13", out);
            self.rules.scan(&norm.reversed(), 0.8, "reversed", out);
        }
        if actions.pii != ScanAction::Off {
            pii::detect(text, out);
        }
        if actions.secrets != ScanAction::Off {
            secrets::detect(text, out);
        }
        if depth >= decode::MAX_DEPTH {
            return;
        }
        for seg in decode::find_encoded(text, budget) {
            let mut inner = Vec::new();
            self.scan_layer(&seg.text, actions, depth + 1, budget, &mut inner);
            for mut f in inner {
                f.start = seg.start;
                f.end = seg.end;
                f.detail = if f.detail.is_empty() {
                    format!("in {}-encoded text", seg.encoding)
                } else {
                    format!("{} (in {}-encoded text)", f.detail, seg.encoding)
                };
                out.push(f);
            }
        }
    }
}

/// The configured action for a finding kind.
pub fn action_for(actions: &ScanActions, kind: FindingKind) -> ScanAction {
    match kind {
        FindingKind::Injection => actions.injection,
        FindingKind::Pii => actions.pii,
        FindingKind::Secret => actions.secrets,
        FindingKind::Exfiltration => actions.exfiltration,
        FindingKind::ToolPolicy => ScanAction::Block,
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
