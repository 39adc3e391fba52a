//! The wire types of the scan API (SPEC.md sections 4 and 5): the one
//! definition shared by the server (`shieldd`) and every Rust client.

use serde::{Deserialize, Serialize};

/// Which way text flows relative to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Text the agent reads: user messages, web pages, tool outputs.
    #[default]
    Inbound,
    /// Text the agent writes: answers, tool arguments.
    Outbound,
}

/// What the caller should do with the text or tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Use it as it is.
    Allow,
    /// Use `redacted` instead of the original.
    Redact,
    /// A person must approve the tool call first (tool policy only).
    NeedsApproval,
    /// Do not use it.
    Block,
}

/// The family of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Prompt injection or jailbreak.
    Injection,
    /// Personal data.
    Pii,
    /// Credentials and keys.
    Secret,
    /// Data leaving through URLs, images or encoded blobs.
    Exfiltration,
    /// A tool call the tool policy refuses.
    ToolPolicy,
}

/// One thing the scanner found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Family of the finding.
    pub kind: FindingKind,
    /// Specific type, e.g. `direct_injection`, `ssn`, `credit_card`, `aws_key`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Byte offset into the original UTF-8 text (inclusive).
    pub start: usize,
    /// Byte offset into the original UTF-8 text (exclusive).
    pub end: usize,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Human-readable explanation; never contains the found value itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The answer to a scan or a tool-call check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What to do.
    pub action: Action,
    /// `true` when `action` is `block` (kept for clients that test one flag).
    pub blocked: bool,
    /// Everything found, in order of `start`.
    pub findings: Vec<Finding>,
    /// The text with redactions applied, present when `action` is `redact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    /// Time spent deciding, in microseconds.
    pub latency_us: u64,
}

impl Verdict {
    /// An `allow` verdict with no findings.
    pub fn allow() -> Self {
        Verdict {
            action: Action::Allow,
            blocked: false,
            findings: Vec::new(),
            redacted: None,
            latency_us: 0,
        }
    }
}
