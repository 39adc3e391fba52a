//! Tool-call policy (issue 4, `tools:` of SPEC section 2).
use crate::policy::ToolPolicy;
use shield_client::wire::Verdict;

/// Evaluate one tool call against the tool policy.
pub fn check_tool(_policy: &ToolPolicy, _name: &str, _params: &serde_json::Value) -> Verdict {
    Verdict::allow()
}
