//! Tool-call policy (issue 4, `tools:` of SPEC section 2).
//!
//! Deny by default: a tool not in `allowed_tools` gets `default_action`
//! (tool names compare case-insensitively). A listed tool is checked by the
//! constraints its rule sets:
//!
//! - SQL (`allowed_operations`, `blocked_tables`, `max_rows`): the `query` or
//!   `sql` parameter is parsed with sqlparser in four dialects (`sql.rs`):
//!   every statement kind, every base table referenced anywhere (joins,
//!   subqueries, CTE bodies, set operations, quoted and schema-qualified
//!   names, compared by last identifier, case-insensitively), the top-level
//!   LIMIT, and calls of functions that run SQL text or reach files.
//! - Paths (`allowed_paths`): every parameter named like a path (`path`,
//!   `file`, `filename`, `*path`, `*_file`, `*_dir`, `source`, `target`, ...,
//!   at any depth) must be absolute and lie under an allowed directory,
//!   compared by component after lexical normalisation (`paths.rs`).
//! - Recipients (`allowed_domains`): `to`, `cc`, `bcc`, `recipient(s)` (a
//!   string address list or a list of them) are parsed as RFC 5322 address
//!   lists and every address matched by exact domain (`email.rs`).
//! - Generic `params` rules: keyed by parameter name or dotted path
//!   (`options.mode`); `allow` regexes must match the whole value (they are
//!   anchored), `deny` regexes match anywhere, `max_len` counts bytes.
//!
//! Every string in the parameters (values and keys, at any depth) is also
//! scanned for secrets and personal data; a finding blocks the call.
//!
//! A refused call gets action `block` with one finding per reason, all of
//! kind `tool_policy`, types: `unknown_tool`, `bad_params`, `bad_policy`,
//! `sql_parse_error`, `sql_operation`, `sql_blocked_table`, `sql_max_rows`,
//! `sql_function`, `path_not_allowed`, `recipient_domain`, `param_pattern`,
//! `param_too_long`, `secret_in_param`, `pii_in_param`. A call that passes
//! every check but whose rule says `requires_approval` gets `needs_approval`
//! (not blocked) and one `requires_approval` finding. Findings have
//! `start = end = 0`, except `secret_in_param`/`pii_in_param`, whose
//! `start`/`end` are byte offsets inside the string value (or key) of the
//! parameter named in `detail`.
//!
//! A rule that sets SQL, path or recipient constraints but whose call lacks
//! the parameter they apply to is refused (`bad_params`): a constraint never
//! passes for want of something to check.

mod email;
mod paths;
mod sql;

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use regex::{RegexBuilder, RegexSet, RegexSetBuilder};
use serde_json::{Map, Value};
use shield_client::wire::{Action, Finding, FindingKind, Verdict};

use crate::policy::{ParamRule, ToolDefault, ToolPolicy, ToolRule};
use email::{DomainPattern, RecipientIssue};
use paths::AllowedPaths;
use sql::SqlRules;

/// Deepest nesting of parameter objects and arrays accepted.
pub const MAX_PARAM_DEPTH: usize = 32;

/// Compiled size limit of one policy regex (bounds memory of a hostile policy).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// An invalid tool policy; every variant names the tool it is about.
#[derive(Debug, thiserror::Error)]
pub enum ToolPolicyError {
    /// A `params` regex does not compile.
    #[error("tool `{tool}`, parameter `{param}`: invalid {which} regex `{pattern}`: {message}")]
    BadRegex {
        /// Tool name.
        tool: String,
        /// Parameter name.
        param: String,
        /// `allow` or `deny`.
        which: &'static str,
        /// The pattern as written.
        pattern: String,
        /// The regex compiler's explanation.
        message: String,
    },
    /// Two entries of `allowed_tools` have the same name (case-insensitively).
    #[error("tool `{tool}` is listed more than once in allowed_tools")]
    DuplicateTool {
        /// Tool name.
        tool: String,
    },
    /// An entry of `allowed_tools` has an empty name.
    #[error("an entry of allowed_tools has an empty name")]
    EmptyName,
    /// An `allowed_domains` entry is not a domain.
    #[error("tool `{tool}`: allowed_domains entry `{entry}`: {reason}")]
    BadDomain {
        /// Tool name.
        tool: String,
        /// The entry as written.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An `allowed_paths` entry is not an absolute path.
    #[error("tool `{tool}`: allowed_paths entry `{entry}`: {reason}")]
    BadPath {
        /// Tool name.
        tool: String,
        /// The entry as written.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// An `allowed_operations` entry is not an SQL keyword.
    #[error("tool `{tool}`: allowed_operations entry `{entry}` is not an SQL keyword")]
    BadOperation {
        /// Tool name.
        tool: String,
        /// The entry as written.
        entry: String,
    },
}

/// A generic parameter rule with its regexes compiled.
#[derive(Debug, Clone)]
struct CompiledParam {
    /// Name or dotted path as written in the policy.
    name: String,
    allow: Option<RegexSet>,
    deny: Option<RegexSet>,
    deny_src: Vec<String>,
    max_len: Option<usize>,
}

/// One `allowed_tools` entry, compiled.
#[derive(Debug, Clone)]
struct CompiledRule {
    name: String,
    requires_approval: bool,
    sql: Option<SqlRules>,
    paths: Option<AllowedPaths>,
    domains: Option<Vec<DomainPattern>>,
    params: Vec<CompiledParam>,
}

/// A tool policy compiled once (regexes built, domains and paths
/// normalised) and then used for any number of checks.
#[derive(Debug, Clone)]
pub struct ToolChecker {
    default_action: ToolDefault,
    /// Keyed by lower-case tool name.
    rules: HashMap<String, CompiledRule>,
    /// Secret and PII scanners (replaceable in tests).
    detectors: &'static [DetectorEntry],
}

fn build_regex_set(
    tool: &str,
    param: &str,
    which: &'static str,
    patterns: &[String],
    anchor: bool,
) -> Result<Option<RegexSet>, ToolPolicyError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let wrapped: Vec<String> = patterns
        .iter()
        .map(|p| {
            if anchor {
                format!("^(?:{p})$")
            } else {
                p.clone()
            }
        })
        .collect();
    // Compile one by one first so that the error names the bad pattern.
    for (src, w) in patterns.iter().zip(&wrapped) {
        if let Err(e) = RegexBuilder::new(w).size_limit(REGEX_SIZE_LIMIT).build() {
            return Err(ToolPolicyError::BadRegex {
                tool: tool.to_string(),
                param: param.to_string(),
                which,
                pattern: src.clone(),
                message: e.to_string(),
            });
        }
    }
    RegexSetBuilder::new(&wrapped)
        .size_limit(REGEX_SIZE_LIMIT * patterns.len().max(1))
        .build()
        .map(Some)
        .map_err(|e| ToolPolicyError::BadRegex {
            tool: tool.to_string(),
            param: param.to_string(),
            which,
            pattern: patterns.join(" | "),
            message: e.to_string(),
        })
}

fn compile_param(tool: &str, name: &str, r: &ParamRule) -> Result<CompiledParam, ToolPolicyError> {
    Ok(CompiledParam {
        name: name.to_string(),
        allow: build_regex_set(tool, name, "allow", &r.allow, true)?,
        deny: build_regex_set(tool, name, "deny", &r.deny, false)?,
        deny_src: r.deny.clone(),
        max_len: r.max_len,
    })
}

/// Whether one rule compiles, for the policy parser to report what
/// [`ToolChecker::new`] would refuse at launch.
pub(crate) fn check_rule(r: &ToolRule) -> Result<(), ToolPolicyError> {
    compile_rule(r).map(|_| ())
}

fn compile_rule(r: &ToolRule) -> Result<CompiledRule, ToolPolicyError> {
    let tool = r.name.as_str();
    let allowed_ops = match &r.allowed_operations {
        None => None,
        Some(list) => {
            let mut set = BTreeSet::new();
            for op in list {
                let up = op.trim().to_ascii_uppercase();
                if up.is_empty() || !up.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                    return Err(ToolPolicyError::BadOperation {
                        tool: tool.to_string(),
                        entry: op.clone(),
                    });
                }
                set.insert(up);
            }
            Some(set)
        }
    };
    let sql = if allowed_ops.is_some() || !r.blocked_tables.is_empty() || r.max_rows.is_some() {
        Some(SqlRules {
            allowed_ops,
            blocked_tables: r
                .blocked_tables
                .iter()
                .map(|t| t.trim().to_lowercase())
                .collect(),
            max_rows: r.max_rows,
        })
    } else {
        None
    };
    let paths = if r.allowed_paths.is_empty() {
        None
    } else {
        Some(
            AllowedPaths::new(&r.allowed_paths).map_err(|(entry, reason)| {
                ToolPolicyError::BadPath {
                    tool: tool.to_string(),
                    entry,
                    reason,
                }
            })?,
        )
    };
    let domains = if r.allowed_domains.is_empty() {
        None
    } else {
        let mut v = Vec::with_capacity(r.allowed_domains.len());
        for d in &r.allowed_domains {
            v.push(
                DomainPattern::new(d).map_err(|reason| ToolPolicyError::BadDomain {
                    tool: tool.to_string(),
                    entry: d.clone(),
                    reason,
                })?,
            );
        }
        Some(v)
    };
    let mut params = Vec::with_capacity(r.params.len());
    for (name, pr) in &r.params {
        params.push(compile_param(tool, name, pr)?);
    }
    Ok(CompiledRule {
        name: r.name.clone(),
        requires_approval: r.requires_approval,
        sql,
        paths,
        domains,
        params,
    })
}

fn finding(ty: &str, detail: String) -> Finding {
    Finding {
        kind: FindingKind::ToolPolicy,
        ty: ty.to_string(),
        start: 0,
        end: 0,
        score: 1.0,
        detail,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Longest parameter key or tool name shown in a path or `detail`.
const MAX_SHOWN_KEY: usize = 64;

/// Longest parameter path kept; deeper segments are elided. Paths are built
/// for every value, so without a cap a long key above a long array would
/// cost (key length x elements) memory.
const MAX_SHOWN_PATH: usize = 256;

/// `s` cut to at most `max` bytes on a character boundary, `…` marking a cut.
fn clip(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", s.get(..end).unwrap_or_default()))
}

/// `parent` + `sep` + `seg`, both bounded in length.
fn child_path(parent: &str, sep: &str, seg: &str) -> String {
    if parent.len() >= MAX_SHOWN_PATH {
        // Already elided: keep it as it is, so every descendant costs the same.
        return parent.to_string();
    }
    let mut p = format!("{parent}{sep}{}", clip(seg, MAX_SHOWN_KEY));
    if p.len() > MAX_SHOWN_PATH {
        p = clip(&p, MAX_SHOWN_PATH).into_owned();
    }
    p
}

/// One value inside the parameters, with where it is.
struct Node<'a> {
    /// `a.b[2].c`.
    path: String,
    /// The nearest object key above it (array elements inherit their array's).
    key: &'a str,
    /// Whether it is an object member (its `key` is its own name).
    member: bool,
    value: &'a Value,
}

/// Every value of the parameter object, depth-first, without recursion.
fn collect_nodes(obj: &Map<String, Value>) -> Result<Vec<Node<'_>>, String> {
    let mut out = Vec::new();
    let mut stack: Vec<(Node<'_>, usize)> = obj
        .iter()
        .rev()
        .map(|(k, v)| {
            (
                Node {
                    path: clip(k, MAX_SHOWN_KEY).into_owned(),
                    key: k.as_str(),
                    member: true,
                    value: v,
                },
                1,
            )
        })
        .collect();
    while let Some((node, depth)) = stack.pop() {
        match node.value {
            Value::Object(m) => {
                if depth >= MAX_PARAM_DEPTH {
                    return Err(format!(
                        "parameters are nested deeper than {MAX_PARAM_DEPTH}"
                    ));
                }
                for (k, v) in m.iter().rev() {
                    stack.push((
                        Node {
                            path: child_path(&node.path, ".", k),
                            key: k.as_str(),
                            member: true,
                            value: v,
                        },
                        depth + 1,
                    ));
                }
            }
            Value::Array(a) => {
                if depth >= MAX_PARAM_DEPTH {
                    return Err(format!(
                        "parameters are nested deeper than {MAX_PARAM_DEPTH}"
                    ));
                }
                for (i, v) in a.iter().enumerate().rev() {
                    stack.push((
                        Node {
                            path: child_path(&node.path, "[", &format!("{i}]")),
                            key: node.key,
                            member: false,
                            value: v,
                        },
                        depth + 1,
                    ));
                }
            }
            _ => {}
        }
        out.push(node);
    }
    Ok(out)
}

/// The value at a parameter name or dotted path.
fn lookup<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut cur = obj.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

impl CompiledRule {
    fn check(&self, obj: &Map<String, Value>, nodes: &[Node<'_>], out: &mut Vec<Finding>) {
        if let Some(sql) = &self.sql {
            self.check_sql(sql, obj, out);
        }
        if let Some(paths) = &self.paths {
            self.check_paths(paths, nodes, out);
        }
        if let Some(domains) = &self.domains {
            self.check_recipients(domains, obj, out);
        }
        for p in &self.params {
            check_param(p, obj, out);
        }
    }

    fn check_sql(&self, rules: &SqlRules, obj: &Map<String, Value>, out: &mut Vec<Finding>) {
        let mut seen = 0;
        for (k, v) in obj {
            let lk = k.to_ascii_lowercase();
            if lk != "query" && lk != "sql" {
                continue;
            }
            seen += 1;
            match v {
                Value::String(q) => {
                    for (ty, detail) in sql::check_sql(rules, q) {
                        out.push(finding(ty, format!("parameter `{k}`: {detail}")));
                    }
                }
                other => out.push(finding(
                    "bad_params",
                    format!("parameter `{k}` must be a string, got {}", json_type(other)),
                )),
            }
        }
        if seen == 0 {
            out.push(finding(
                "bad_params",
                format!(
                    "tool `{}` has SQL rules but the call has no `query` or `sql` parameter",
                    self.name
                ),
            ));
        }
    }

    fn check_paths(&self, paths: &AllowedPaths, nodes: &[Node<'_>], out: &mut Vec<Finding>) {
        let mut seen = 0;
        for n in nodes {
            if !paths::is_path_param(n.key) {
                continue;
            }
            match n.value {
                Value::String(s) => {
                    seen += 1;
                    if let Err(why) = paths.check(s) {
                        out.push(finding(
                            "path_not_allowed",
                            format!("parameter `{}`: {why}", n.path),
                        ));
                    }
                }
                // Elements and members are nodes of their own.
                Value::Array(_) | Value::Object(_) | Value::Null => {}
                other => {
                    seen += 1;
                    out.push(finding(
                        "bad_params",
                        format!(
                            "parameter `{}` must be a path string, got {}",
                            n.path,
                            json_type(other)
                        ),
                    ));
                }
            }
        }
        if seen == 0 {
            out.push(finding(
                "bad_params",
                format!(
                    "tool `{}` has allowed_paths but the call has no path parameter (path, file, filename, *path, ...)",
                    self.name
                ),
            ));
        }
    }

    fn check_recipients(
        &self,
        domains: &[DomainPattern],
        obj: &Map<String, Value>,
        out: &mut Vec<Finding>,
    ) {
        let mut count = 0;
        let mut check_one = |param: &str, list: &str, out: &mut Vec<Finding>| {
            let (n, issues) = email::check_list(domains, list);
            count += n;
            for issue in issues {
                out.push(match issue {
                    RecipientIssue::Outside(d) => finding(
                        "recipient_domain",
                        format!(
                            "parameter `{param}`: recipient domain `{d}` is not in allowed_domains"
                        ),
                    ),
                    RecipientIssue::Unparseable(why) => finding(
                        "recipient_domain",
                        format!("parameter `{param}`: not a valid address list: {why}"),
                    ),
                });
            }
        };
        let mut bad = false;
        for (k, v) in obj {
            if !email::is_recipient_param(k) {
                continue;
            }
            match v {
                Value::String(s) => check_one(k, s, out),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match item {
                            Value::String(s) => check_one(&format!("{k}[{i}]"), s, out),
                            other => {
                                bad = true;
                                out.push(finding(
                                    "bad_params",
                                    format!(
                                        "parameter `{k}[{i}]` must be an address string, got {}",
                                        json_type(other)
                                    ),
                                ));
                            }
                        }
                    }
                }
                Value::Null => {}
                other => {
                    bad = true;
                    out.push(finding(
                        "bad_params",
                        format!(
                            "parameter `{k}` must be a string or a list of strings, got {}",
                            json_type(other)
                        ),
                    ));
                }
            }
        }
        if count == 0 && !bad && !out.iter().any(|f| f.ty == "recipient_domain") {
            out.push(finding(
                "bad_params",
                format!("tool `{}` has allowed_domains but the call names no recipient (to, cc, bcc, recipients)", self.name),
            ));
        }
    }
}

fn check_param(p: &CompiledParam, obj: &Map<String, Value>, out: &mut Vec<Finding>) {
    let Some(v) = lookup(obj, &p.name) else {
        return;
    };
    let mut values: Vec<(String, String)> = Vec::new();
    match v {
        Value::Null => {}
        Value::String(s) => values.push((p.name.clone(), s.clone())),
        Value::Number(n) => values.push((p.name.clone(), n.to_string())),
        Value::Bool(b) => values.push((p.name.clone(), b.to_string())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{}[{i}]", p.name);
                match item {
                    Value::String(s) => values.push((path, s.clone())),
                    Value::Number(n) => values.push((path, n.to_string())),
                    Value::Bool(b) => values.push((path, b.to_string())),
                    other => out.push(finding(
                        "bad_params",
                        format!(
                            "parameter `{path}` must be a scalar, got {}",
                            json_type(other)
                        ),
                    )),
                }
            }
        }
        Value::Object(_) => out.push(finding(
            "bad_params",
            format!(
                "parameter `{}` must be a scalar or a list, got an object",
                p.name
            ),
        )),
    }
    for (path, s) in values {
        if let Some(max) = p.max_len {
            if s.len() > max {
                out.push(finding(
                    "param_too_long",
                    format!("parameter `{path}` is {} bytes; max_len is {max}", s.len()),
                ));
            }
        }
        if let Some(deny) = &p.deny {
            if let Some(i) = deny.matches(&s).iter().next() {
                let pat = p.deny_src.get(i).map(String::as_str).unwrap_or("?");
                out.push(finding(
                    "param_pattern",
                    format!("parameter `{path}` matches deny pattern `{pat}`"),
                ));
            }
        }
        if let Some(allow) = &p.allow {
            if !allow.is_match(&s) {
                out.push(finding(
                    "param_pattern",
                    format!("parameter `{path}` matches no allow pattern"),
                ));
            }
        }
    }
}

/// A text detector: appends findings with byte offsets into the text.
type Detector = fn(&str, &mut Vec<Finding>);

/// A detector, the finding type it maps to, what it finds (for `detail`),
/// and whether it looks for personal data.
type DetectorEntry = (Detector, &'static str, &'static str, bool);

/// The scanners run on every string of the parameters.
const PARAM_DETECTORS: &[DetectorEntry] = &[
    (
        crate::scan::secrets::detect,
        "secret_in_param",
        "a secret",
        false,
    ),
    (
        crate::scan::pii::detect,
        "pii_in_param",
        "personal data",
        true,
    ),
];

/// Whether `n` is a top-level recipient value (`to`, `cc[1]`, ...).
fn is_recipient_value(n: &Node<'_>) -> bool {
    email::is_recipient_param(n.key)
        && n.path
            .strip_prefix(n.key)
            .is_some_and(|rest| rest.is_empty() || (rest.starts_with('[') && !rest.contains('.')))
}

/// Scan every string (values and object keys) with `detectors`. When
/// `recipients_checked`, recipient values are exempt from the personal-data
/// detectors: they are e-mail addresses by design and were already matched
/// against `allowed_domains`.
fn scan_strings(
    nodes: &[Node<'_>],
    detectors: &[DetectorEntry],
    recipients_checked: bool,
    out: &mut Vec<Finding>,
) {
    let mut found = Vec::new();
    let mut scan = |text: &str, what: &str, exempt_personal: bool, out: &mut Vec<Finding>| {
        for (detect, ty, noun, personal) in detectors {
            if *personal && exempt_personal {
                continue;
            }
            found.clear();
            detect(text, &mut found);
            for f in found.drain(..) {
                out.push(Finding {
                    kind: FindingKind::ToolPolicy,
                    ty: (*ty).to_string(),
                    start: f.start,
                    end: f.end,
                    score: f.score,
                    detail: format!("{what} contains {noun} ({})", f.ty),
                });
            }
        }
    };
    for n in nodes {
        if n.member {
            scan(
                n.key,
                &format!("the name of parameter `{}`", n.path),
                false,
                out,
            );
        }
        if let Value::String(s) = n.value {
            let exempt = recipients_checked && is_recipient_value(n);
            scan(s, &format!("parameter `{}`", n.path), exempt, out);
        }
    }
}

impl ToolChecker {
    /// Compile a tool policy. Errors name the tool and the entry at fault.
    pub fn new(policy: &ToolPolicy) -> Result<ToolChecker, ToolPolicyError> {
        let mut rules = HashMap::with_capacity(policy.allowed_tools.len());
        for r in &policy.allowed_tools {
            if r.name.trim().is_empty() {
                return Err(ToolPolicyError::EmptyName);
            }
            let key = r.name.to_lowercase();
            if rules.contains_key(&key) {
                return Err(ToolPolicyError::DuplicateTool {
                    tool: r.name.clone(),
                });
            }
            rules.insert(key, compile_rule(r)?);
        }
        Ok(ToolChecker {
            default_action: policy.default_action,
            rules,
            detectors: PARAM_DETECTORS,
        })
    }

    /// Evaluate one tool call. Never panics; a malformed call is blocked
    /// with a `bad_params` finding.
    ///
    /// Tool names are matched case-insensitively, so that a dispatcher that
    /// ignores case cannot be used to slip past a listed tool's rule.
    pub fn check(&self, name: &str, params: &Value) -> Verdict {
        let started = Instant::now();
        let mut findings = Vec::new();
        let rule = self.rules.get(&name.to_lowercase());
        if rule.is_none() && self.default_action == ToolDefault::Deny {
            findings.push(finding(
                "unknown_tool",
                format!(
                    "tool `{}` is not in allowed_tools and default_action is deny",
                    clip(name, MAX_SHOWN_KEY)
                ),
            ));
        } else if let Some(obj) = params.as_object() {
            match collect_nodes(obj) {
                Err(why) => findings.push(finding("bad_params", why)),
                Ok(nodes) => {
                    if let Some(r) = rule {
                        r.check(obj, &nodes, &mut findings);
                    }
                    let recipients_checked = rule.is_some_and(|r| r.domains.is_some());
                    scan_strings(&nodes, self.detectors, recipients_checked, &mut findings);
                }
            }
        } else {
            findings.push(finding(
                "bad_params",
                format!("params must be a JSON object, got {}", json_type(params)),
            ));
        }
        let action = if !findings.is_empty() {
            Action::Block
        } else if let Some(r) = rule.filter(|r| r.requires_approval) {
            findings.push(finding(
                "requires_approval",
                format!("tool `{}` requires a person's approval", r.name),
            ));
            Action::NeedsApproval
        } else {
            Action::Allow
        };
        Verdict {
            action,
            blocked: action == Action::Block,
            findings,
            redacted: None,
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        }
    }
}

/// Evaluate one tool call against the tool policy (compiles the policy each
/// time: use [`ToolChecker`] to check many calls). An invalid policy blocks
/// every call with a `bad_policy` finding.
pub fn check_tool(policy: &ToolPolicy, name: &str, params: &Value) -> Verdict {
    match ToolChecker::new(policy) {
        Ok(c) => c.check(name, params),
        Err(e) => Verdict {
            action: Action::Block,
            blocked: true,
            findings: vec![finding("bad_policy", e.to_string())],
            redacted: None,
            latency_us: 0,
        },
    }
}

/// Parse tool parameters from JSON text, refusing duplicate object keys.
///
/// `{"path": "/etc/passwd", "path": "/data/reports/a"}` is valid JSON that
/// serde_json reads as its last value and a first-wins parser reads as its
/// first: the policy would judge a different call from the one the tool
/// runs. Use this wherever parameters arrive as text (CLI, scan API).
pub fn parse_params(json: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<NoDupValue>(json).map(|v| v.0)
}

/// A JSON value whose objects have no duplicate keys.
struct NoDupValue(Value);

impl<'de> serde::Deserialize<'de> for NoDupValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDupVisitor).map(NoDupValue)
    }
}

struct NoDupVisitor;

impl<'de> serde::de::Visitor<'de> for NoDupVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so `from_f64` fails on nothing read here.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(NoDupValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom(format!("duplicate key `{k}`")));
            }
            let NoDupValue(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// `shieldd check-tool`: the exit status and the JSON line to print.
///
/// Exit status (SPEC section 1): 0 allowed, 1 blocked, 2 input error (params
/// not JSON, invalid tool policy). `needs_approval` exits 1, with that
/// action in the verdict: the call must not proceed unattended.
pub fn cmd_check_tool(policy: &ToolPolicy, tool: &str, params_json: &str) -> (i32, String) {
    let error = |code: &str, message: String| {
        let line = serde_json::json!({"error": {"code": code, "message": message}});
        (2, line.to_string())
    };
    let params = match parse_params(params_json) {
        Ok(v) => v,
        Err(e) => return error("bad_request", format!("--params: {e}")),
    };
    let checker = match ToolChecker::new(policy) {
        Ok(c) => c,
        Err(e) => return error("bad_policy", format!("invalid tool policy: {e}")),
    };
    let verdict = checker.check(tool, &params);
    let code = match verdict.action {
        Action::Allow | Action::Redact => 0,
        Action::NeedsApproval | Action::Block => 1,
    };
    match serde_json::to_string(&verdict) {
        Ok(line) => (code, line),
        Err(e) => error("internal", format!("cannot serialise the verdict: {e}")),
    }
}

#[cfg(test)]
mod tests;
