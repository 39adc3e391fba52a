//! Policy YAML -> [`Policy`], reporting every error with line, column and hint.
//!
//! Written here rather than with serde_yaml's derive because serde stops at
//! the first error and drops positions of semantic errors (relative path,
//! bad CIDR, bad glob); a policy author wants all of them at once, each placed.
//! The YAML itself is tokenised by `yaml-rust2`, which reports positions.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::*;

/// One problem in a policy file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{file}: cannot read policy: {source}")]
    Io {
        /// File name.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file has errors; all of them, in file order.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl PolicyError {
    /// The diagnostics, if the file was read but invalid.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid(d) => d,
            PolicyError::Io { .. } => &[],
        }
    }
}

/// Largest policy accepted; a policy is a page of YAML, not a data set.
const MAX_POLICY_BYTES: usize = 1 << 20;
/// Node budget, so aliases cannot expand into a "billion laughs".
const MAX_NODES: usize = 100_000;

#[derive(Debug, Clone)]
enum NodeKind {
    Scalar(String, TScalarStyle),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
struct Node {
    kind: NodeKind,
    line: usize,
    col: usize,
}

impl Node {
    fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(..) => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
    fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s, TScalarStyle::Plain) if s.is_empty() || s == "~" || s == "null")
    }
}

/// A collection being built, and for a mapping the key awaiting its value.
struct Frame {
    node: Node,
    anchor: usize,
    key: Option<Node>,
}

/// Builds a [`Node`] tree from parser events.
#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    nodes: usize,
    error: Option<(String, usize, usize)>,
}

impl TreeBuilder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        self.nodes += count_nodes(&node);
        if self.nodes > MAX_NODES {
            if self.error.is_none() {
                self.error = Some((
                    format!("policy expands to more than {MAX_NODES} nodes"),
                    node.line,
                    node.col,
                ));
            }
            return;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(frame) = self.stack.last_mut() else {
            self.docs.push(node);
            return;
        };
        match &mut frame.node.kind {
            NodeKind::Seq(v) => v.push(node),
            NodeKind::Map(pairs) => match frame.key.take() {
                Some(key) => pairs.push((key, node)),
                None => frame.key = Some(node),
            },
            NodeKind::Scalar(..) => {}
        }
    }

    fn open(&mut self, kind: NodeKind, anchor: usize, line: usize, col: usize) {
        self.stack.push(Frame {
            node: Node { kind, line, col },
            anchor,
            key: None,
        });
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Scalar(..) => 1,
        NodeKind::Seq(v) => 1 + v.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(p) => {
            1 + p
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let (line, col) = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(s, style, anchor, _) => self.push_value(
                Node {
                    kind: NodeKind::Scalar(s, style),
                    line,
                    col,
                },
                anchor,
            ),
            Event::SequenceStart(anchor, _) => {
                self.open(NodeKind::Seq(Vec::new()), anchor, line, col)
            }
            Event::MappingStart(anchor, _) => {
                self.open(NodeKind::Map(Vec::new()), anchor, line, col)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(f) = self.stack.pop() {
                    self.push_value(f.node, f.anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut n) => {
                    n.line = line;
                    n.col = col;
                    self.push_value(n, 0)
                }
                None => self.error = Some(("unknown alias".into(), line, col)),
            },
            _ => {}
        }
    }
}

/// Collects diagnostics while converting the tree.
struct Ctx<'a> {
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn err(&mut self, n: &Node, message: impl Into<String>, hint: Option<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line: n.line,
            column: n.col,
            message: message.into(),
            hint,
        });
    }

    /// The entries of a mapping, with unknown keys reported.
    fn map<'n>(&mut self, n: &'n Node, what: &str, known: &[&str]) -> Vec<(&'n str, &'n Node)> {
        let NodeKind::Map(pairs) = &n.kind else {
            if !n.is_null() {
                self.err(
                    n,
                    format!("`{what}` must be a mapping, found {}", n.type_name()),
                    None,
                );
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in pairs {
            let NodeKind::Scalar(key, _) = &k.kind else {
                self.err(k, format!("keys of `{what}` must be plain words"), None);
                continue;
            };
            if !known.contains(&key.as_str()) {
                let hint = closest(key, known)
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| Some(format!("known keys: {}", known.join(", "))));
                self.err(k, format!("unknown key `{key}` in `{what}`"), hint);
                continue;
            }
            if seen.contains(&key.as_str()) {
                self.err(k, format!("duplicate key `{key}` in `{what}`"), None);
                continue;
            }
            seen.push(key);
            out.push((key.as_str(), v));
        }
        out
    }

    fn seq<'n>(&mut self, n: &'n Node, what: &str) -> Vec<&'n Node> {
        match &n.kind {
            NodeKind::Seq(v) => v.iter().collect(),
            _ if n.is_null() => Vec::new(),
            _ => {
                self.err(
                    n,
                    format!("`{what}` must be a list, found {}", n.type_name()),
                    Some(format!("write `{what}: [a, b]` or one `- item` per line")),
                );
                Vec::new()
            }
        }
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match &n.kind {
            NodeKind::Scalar(s, _) if !n.is_null() => Some(s.clone()),
            _ => {
                self.err(
                    n,
                    format!("`{what}` must be a string, found {}", n.type_name()),
                    None,
                );
                None
            }
        }
    }

    fn uint(&mut self, n: &Node, what: &str, max: u64) -> Option<u64> {
        let s = self.string(n, what)?;
        match s.trim().parse::<u64>() {
            Ok(v) if v <= max => Some(v),
            Ok(_) => {
                self.err(n, format!("`{what}` is larger than {max}"), None);
                None
            }
            Err(_) => {
                self.err(
                    n,
                    format!("`{what}` must be a whole number, found `{s}`"),
                    None,
                );
                None
            }
        }
    }

    fn boolean(&mut self, n: &Node, what: &str) -> Option<bool> {
        match self.string(n, what)?.as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            other => {
                self.err(
                    n,
                    format!("`{what}` must be true or false, found `{other}`"),
                    None,
                );
                None
            }
        }
    }

    fn string_list(&mut self, n: &Node, what: &str) -> Vec<String> {
        self.seq(n, what)
            .into_iter()
            .filter_map(|i| self.string(i, what))
            .collect()
    }

    fn path(&mut self, n: &Node, what: &str) -> Option<PolicyPath> {
        let s = self.string(n, what)?;
        if s.contains('\0') {
            self.err(n, format!("`{what}` path contains a NUL byte"), None);
            return None;
        }
        let ok = s.starts_with('/')
            || s == "~"
            || s.starts_with("~/")
            || s == "."
            || s.starts_with("./");
        if !ok {
            self.err(
                n,
                format!("relative path `{s}` in `{what}`"),
                Some(format!(
                    "write an absolute path, `./{s}` for the working directory or `~/{s}` for the home directory"
                )),
            );
            return None;
        }
        if s.contains(['*', '?', '[']) {
            self.err(
                n,
                format!("`{what}` takes paths, not globs: `{s}`"),
                Some("list the directories; globs are only for `exec.allow`".into()),
            );
            return None;
        }
        Some(PolicyPath(s))
    }

    fn path_list(&mut self, n: &Node, what: &str) -> Vec<PolicyPath> {
        self.seq(n, what)
            .into_iter()
            .filter_map(|i| self.path(i, what))
            .collect()
    }
}

/// Edit distance for "did you mean" hints.
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `sandbox.monitor:`: the ring as a size, the map entry counts as numbers
/// (bounded so that a typo cannot ask the kernel for gigabytes of maps).
fn monitor_sizes(ctx: &mut Ctx, n: &Node, out: &mut MonitorSizes) {
    let keys = [
        "ring_bytes",
        "max_pids",
        "max_path_rules",
        "max_net_rules",
        "max_bind_ports",
    ];
    for (k, v) in ctx.map(n, "sandbox.monitor", &keys) {
        let what = format!("monitor.{k}");
        if k == "ring_bytes" {
            let Some(s) = ctx.string(v, &what) else {
                continue;
            };
            match parse_size(&s) {
                Some(b) if (4096..=1 << 30).contains(&b) && b.is_power_of_two() => {
                    out.ring_bytes = u32::try_from(b).ok();
                }
                Some(_) => ctx.err(
                    v,
                    format!("`monitor.ring_bytes` must be a power of two from 4KiB to 1GiB, found `{s}`"),
                    Some("for example 1MiB (the default), 4MiB, 16MiB".into()),
                ),
                None => ctx.err(
                    v,
                    format!("bad size `{s}` in `monitor.ring_bytes`"),
                    Some("a power of two with a unit: 1MiB, 4MiB".into()),
                ),
            }
            continue;
        }
        let max = if k == "max_pids" { 4_194_304 } else { 65_536 };
        let Some(x) = ctx.uint(v, &what, max) else {
            continue;
        };
        if x == 0 {
            ctx.err(v, format!("`{what}` must be at least 1"), None);
            continue;
        }
        let x = u32::try_from(x).ok();
        match k {
            "max_pids" => out.max_pids = x,
            "max_path_rules" => out.max_path_rules = x,
            "max_net_rules" => out.max_net_rules = x,
            _ => out.max_bind_ports = x,
        }
    }
}

/// Parse a size like `2GiB`, `512M`, `1000000`.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "k" | "kB" => 1000,
        "KiB" | "Ki" => 1 << 10,
        "M" | "MB" => 1_000_000,
        "MiB" | "Mi" => 1 << 20,
        "G" | "GB" => 1_000_000_000,
        "GiB" | "Gi" => 1 << 30,
        "T" | "TB" => 1_000_000_000_000,
        "TiB" | "Ti" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

const RESPONSES: &[&str] = &["deny", "kill", "isolate", "log"];
const SCAN_ACTIONS: &[&str] = &["off", "log", "redact", "block"];

fn response(ctx: &mut Ctx, n: &Node, what: &str) -> Option<Response> {
    let s = ctx.string(n, what)?;
    match s.as_str() {
        "deny" => Some(Response::Deny),
        "kill" => Some(Response::Kill),
        "isolate" => Some(Response::Isolate),
        "log" => Some(Response::Log),
        other => {
            let hint = closest(other, RESPONSES)
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| format!("one of {}", RESPONSES.join(", ")));
            ctx.err(
                n,
                format!("unknown action `{other}` in `{what}`"),
                Some(hint),
            );
            None
        }
    }
}

fn scan_action(ctx: &mut Ctx, n: &Node, what: &str) -> Option<ScanAction> {
    let s = ctx.string(n, what)?;
    match s.as_str() {
        "off" | "allow" => Some(ScanAction::Off),
        "log" => Some(ScanAction::Log),
        "redact" => Some(ScanAction::Redact),
        "block" => Some(ScanAction::Block),
        other => {
            let hint = closest(other, SCAN_ACTIONS)
                .map(|c| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| format!("one of {}", SCAN_ACTIONS.join(", ")));
            ctx.err(
                n,
                format!("unknown action `{other}` in `{what}`"),
                Some(hint),
            );
            None
        }
    }
}

fn glob(ctx: &mut Ctx, n: &Node, what: &str) -> Option<String> {
    let s = ctx.string(n, what)?;
    if !s.starts_with('/') {
        ctx.err(
            n,
            format!("`{what}` entry `{s}` is not an absolute path or glob"),
            Some(
                "exec rules match the absolute path the kernel executes, e.g. /usr/bin/python3*"
                    .into(),
            ),
        );
        return None;
    }
    match globset::Glob::new(&s) {
        Ok(_) => Some(s),
        Err(e) => {
            ctx.err(n, format!("bad glob `{s}` in `{what}`: {}", e.kind()), None);
            None
        }
    }
}

/// `sandbox.env.remove` entries are globs over variable names; a bad one
/// would make every launch fail, so it is reported here with its place.
fn env_globs(ctx: &mut Ctx, n: &Node) {
    let NodeKind::Seq(items) = &n.kind else {
        return;
    };
    for i in items {
        if let NodeKind::Scalar(s, _) = &i.kind {
            if let Err(e) = globset::Glob::new(s) {
                ctx.err(
                    i,
                    format!("bad glob `{s}` in `env.remove`: {}", e.kind()),
                    Some("variable names, or globs such as AWS_* or *_TOKEN".into()),
                );
            }
        }
    }
}

/// `allowed_paths` of a tool: absolute only, because the tool checker
/// compares them with the paths in the agent's calls and has no working
/// directory or home to resolve `./` or `~/` against.
fn tool_paths(ctx: &mut Ctx, n: &Node) -> Vec<String> {
    let mut out = Vec::new();
    for i in ctx.seq(n, "allowed_paths") {
        let Some(s) = ctx.string(i, "allowed_paths") else {
            continue;
        };
        if s.starts_with('/') && !s.contains('\0') {
            out.push(s);
        } else {
            ctx.err(
                i,
                format!("`allowed_paths` entry `{s}` is not an absolute path"),
                Some(
                    "tool calls are checked against absolute paths; write one, e.g. /srv/repo/ (`./` and `~/` are not resolved here)"
                        .into(),
                ),
            );
        }
    }
    out
}

fn port(ctx: &mut Ctx, n: &Node, what: &str) -> Option<u16> {
    let v = ctx.uint(n, what, 65535)?;
    if v == 0 {
        ctx.err(n, format!("`{what}` must be 1-65535"), None);
        return None;
    }
    Some(v as u16)
}

fn connect_rule(ctx: &mut Ctx, n: &Node) -> Option<ConnectRule> {
    let what = "network.connect";
    let entries = ctx.map(n, what, &["host", "cidr", "port", "protocol"]);
    if entries.is_empty() {
        if matches!(n.kind, NodeKind::Map(_)) {
            ctx.err(n, "empty `network.connect` entry", None);
        }
        return None;
    }
    let mut target = None;
    let mut port_v = None;
    let mut protocol = Protocol::Any;
    let mut ok = true;
    for (k, v) in entries {
        match k {
            "host" => {
                let h = ctx.string(v, "host")?;
                if target.is_some() {
                    ctx.err(v, "give either `host` or `cidr`, not both", None);
                    ok = false;
                } else if h == "*" {
                    target = Some(ConnectTarget::Any);
                } else if let Ok(ip) = h.parse::<std::net::IpAddr>() {
                    target = Some(ConnectTarget::Cidr(ipnet::IpNet::from(ip)));
                } else if valid_hostname(&h) {
                    target = Some(ConnectTarget::Host(h.to_ascii_lowercase()));
                } else {
                    ctx.err(v, format!("bad host name `{h}`"), Some(host_hint(&h)));
                    ok = false;
                }
            }
            "cidr" => {
                let c = ctx.string(v, "cidr")?;
                if target.is_some() {
                    ctx.err(v, "give either `host` or `cidr`, not both", None);
                    ok = false;
                    continue;
                }
                match c.parse::<ipnet::IpNet>() {
                    Ok(net) if net.trunc() == net => target = Some(ConnectTarget::Cidr(net)),
                    Ok(net) => {
                        ctx.err(
                            v,
                            format!("CIDR `{c}` has host bits set"),
                            Some(format!("did you mean `{}`?", net.trunc())),
                        );
                        ok = false;
                    }
                    Err(_) => {
                        ctx.err(
                            v,
                            format!("bad CIDR `{c}`"),
                            Some(
                                "write an address and prefix length, e.g. 10.0.0.0/8 or ::1/128"
                                    .into(),
                            ),
                        );
                        ok = false;
                    }
                }
            }
            "port" => match port(ctx, v, "port") {
                Some(p) => port_v = Some(p),
                None => ok = false,
            },
            "protocol" => match ctx.string(v, "protocol").as_deref() {
                Some("tcp") => protocol = Protocol::Tcp,
                Some("udp") => protocol = Protocol::Udp,
                Some("any") => protocol = Protocol::Any,
                Some(other) => {
                    ctx.err(
                        v,
                        format!("unknown protocol `{other}`"),
                        Some("tcp, udp or any".into()),
                    );
                    ok = false;
                }
                None => ok = false,
            },
            _ => {}
        }
    }
    let Some(target) = target else {
        if ok {
            ctx.err(
                n,
                "`network.connect` entry needs `host` or `cidr`",
                Some("use `host: \"*\"` to allow a port on any address".into()),
            );
        }
        return None;
    };
    ok.then_some(ConnectRule {
        target,
        port: port_v,
        protocol,
    })
}

/// The hint for a `host:` that is not a host: say what the value looks like
/// (a CIDR, a URL, `host:port`) and where that part goes instead.
fn host_hint(h: &str) -> String {
    if h.contains("://") {
        "write the host name only, without the scheme or path, e.g. api.openai.com".into()
    } else if h.contains('/') {
        "an address range goes in `cidr:`, e.g. `cidr: 10.0.0.0/8`".into()
    } else if h
        .rsplit_once(':')
        .is_some_and(|(name, port)| valid_hostname(name) && port.parse::<u16>().is_ok())
    {
        "put the port in `port:`, e.g. `{ host: api.openai.com, port: 443 }`".into()
    } else {
        "a DNS name like api.openai.com, an IP address, or \"*\"".into()
    }
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn sandbox(ctx: &mut Ctx, n: &Node, out: &mut Sandbox) {
    for (k, v) in ctx.map(
        n,
        "sandbox",
        &[
            "user",
            "filesystem",
            "network",
            "exec",
            "limits",
            "env",
            "monitor",
        ],
    ) {
        match k {
            "user" => out.user = ctx.string(v, "sandbox.user"),
            "filesystem" => {
                for (k, v) in ctx.map(v, "sandbox.filesystem", &["read", "write", "deny"]) {
                    let what = format!("filesystem.{k}");
                    let list = ctx.path_list(v, &what);
                    match k {
                        "read" => out.filesystem.read = list,
                        "write" => out.filesystem.write = list,
                        _ => out.filesystem.deny = list,
                    }
                }
            }
            "network" => {
                for (k, v) in ctx.map(v, "sandbox.network", &["connect", "bind"]) {
                    if k == "connect" {
                        out.network.connect = ctx
                            .seq(v, "network.connect")
                            .into_iter()
                            .filter_map(|e| connect_rule(ctx, e))
                            .collect();
                    } else {
                        out.network.bind = ctx
                            .seq(v, "network.bind")
                            .into_iter()
                            .filter_map(|e| port(ctx, e, "network.bind"))
                            .collect();
                    }
                }
            }
            "exec" => {
                for (_, v) in ctx.map(v, "sandbox.exec", &["allow"]) {
                    out.exec.allow = Some(
                        ctx.seq(v, "exec.allow")
                            .into_iter()
                            .filter_map(|e| glob(ctx, e, "exec.allow"))
                            .collect(),
                    );
                }
            }
            "limits" => {
                for (k, v) in ctx.map(v, "sandbox.limits", &["pids", "memory"]) {
                    if k == "pids" {
                        out.limits.pids = ctx.uint(v, "limits.pids", 4_194_304);
                        if out.limits.pids == Some(0) {
                            ctx.err(v, "`limits.pids` must be at least 1", None);
                        }
                    } else if let Some(s) = ctx.string(v, "limits.memory") {
                        match parse_size(&s) {
                            Some(b) if b >= 1 << 20 => out.limits.memory = Some(b),
                            Some(_) => {
                                ctx.err(v, "`limits.memory` below 1MiB would stop any agent", None)
                            }
                            None => ctx.err(
                                v,
                                format!("bad size `{s}` in `limits.memory`"),
                                Some("a number with an optional unit: 512MiB, 2GiB, 1G".into()),
                            ),
                        }
                    }
                }
            }
            "monitor" => monitor_sizes(ctx, v, &mut out.monitor),
            "env" => {
                for (k, v) in ctx.map(v, "sandbox.env", &["remove", "credentials"]) {
                    let list = ctx.string_list(v, &format!("env.{k}"));
                    if k == "remove" {
                        env_globs(ctx, v);
                        out.env.remove = list;
                    } else {
                        out.env.credentials = list;
                    }
                }
            }
            _ => {}
        }
    }
}

fn tools(ctx: &mut Ctx, n: &Node, out: &mut ToolPolicy) {
    for (k, v) in ctx.map(n, "tools", &["default_action", "allowed_tools"]) {
        if k == "default_action" {
            match ctx.string(v, "tools.default_action").as_deref() {
                Some("deny") | Some("block") => out.default_action = ToolDefault::Deny,
                Some("allow") => out.default_action = ToolDefault::Allow,
                Some(other) => ctx.err(
                    v,
                    format!("unknown action `{other}` in `tools.default_action`"),
                    Some("deny or allow".into()),
                ),
                None => {}
            }
            continue;
        }
        let mut names = std::collections::HashSet::new();
        for t in ctx.seq(v, "tools.allowed_tools") {
            let errors_before = ctx.diags.len();
            let mut rule = ToolRule::default();
            let mut has_name = false;
            let mut name_node = None;
            for (k, v) in ctx.map(
                t,
                "tools.allowed_tools[]",
                &[
                    "name",
                    "allowed_operations",
                    "blocked_tables",
                    "max_rows",
                    "requires_approval",
                    "allowed_domains",
                    "allowed_paths",
                    "params",
                ],
            ) {
                match k {
                    "name" => {
                        if let Some(s) = ctx.string(v, "name") {
                            rule.name = s;
                            has_name = true;
                            name_node = Some(v);
                        }
                    }
                    "allowed_operations" => {
                        let ops = ctx.string_list(v, "allowed_operations");
                        rule.allowed_operations =
                            Some(ops.into_iter().map(|o| o.to_ascii_uppercase()).collect());
                    }
                    "blocked_tables" => rule.blocked_tables = ctx.string_list(v, "blocked_tables"),
                    "max_rows" => rule.max_rows = ctx.uint(v, "max_rows", u64::MAX),
                    "requires_approval" => {
                        rule.requires_approval =
                            ctx.boolean(v, "requires_approval").unwrap_or(false)
                    }
                    "allowed_domains" => {
                        rule.allowed_domains = ctx.string_list(v, "allowed_domains")
                    }
                    "allowed_paths" => rule.allowed_paths = tool_paths(ctx, v),
                    "params" => {
                        for (pname, pv) in param_map(ctx, v) {
                            rule.params.insert(pname, param_rule(ctx, pv));
                        }
                    }
                    _ => {}
                }
            }
            if !has_name && matches!(t.kind, NodeKind::Map(_)) {
                ctx.err(t, "tool entry without `name`", None);
            }
            // What the tool checker refuses at launch is refused here too,
            // at the entry's place, so `check-policy` never passes a policy
            // that `run` or `check-tool` then rejects.
            let at = name_node.unwrap_or(t);
            if has_name && ctx.diags.len() == errors_before {
                if rule.name.trim().is_empty() {
                    ctx.err(at, "tool entry with an empty `name`", None);
                } else if !names.insert(rule.name.to_lowercase()) {
                    ctx.err(
                        at,
                        format!("tool `{}` is listed more than once", rule.name),
                        Some("tool names are matched case-insensitively; merge the entries".into()),
                    );
                } else if let Err(e) = crate::tools::check_rule(&rule) {
                    ctx.err(at, e.to_string(), None);
                }
            }
            out.allowed_tools.push(rule);
        }
    }
}

fn param_map<'n>(ctx: &mut Ctx, n: &'n Node) -> Vec<(String, &'n Node)> {
    match &n.kind {
        NodeKind::Map(pairs) => pairs
            .iter()
            .filter_map(|(k, v)| ctx.string(k, "params key").map(|k| (k, v)))
            .collect(),
        _ => {
            ctx.err(n, "`params` must map parameter names to rules", None);
            Vec::new()
        }
    }
}

fn param_rule(ctx: &mut Ctx, n: &Node) -> ParamRule {
    let mut r = ParamRule::default();
    for (k, v) in ctx.map(n, "params.<name>", &["allow", "deny", "max_len"]) {
        match k {
            "max_len" => r.max_len = ctx.uint(v, "max_len", u32::MAX as u64).map(|v| v as usize),
            _ => {
                let mut list = Vec::new();
                for e in ctx.seq(v, k) {
                    if let Some(s) = ctx.string(e, k) {
                        match regex::Regex::new(&s) {
                            Ok(_) => list.push(s),
                            Err(err) => ctx.err(
                                e,
                                format!(
                                    "bad regular expression in `{k}`: {}",
                                    first_line(&err.to_string())
                                ),
                                None,
                            ),
                        }
                    }
                }
                if k == "allow" {
                    r.allow = list;
                } else {
                    r.deny = list;
                }
            }
        }
    }
    r
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

fn scan(ctx: &mut Ctx, n: &Node, out: &mut ScanPolicy) {
    for (dir, v) in ctx.map(n, "scan", &["inbound", "outbound"]) {
        let acts = if dir == "inbound" {
            &mut out.inbound
        } else {
            &mut out.outbound
        };
        let what = format!("scan.{dir}");
        for (k, v) in ctx.map(v, &what, &["injection", "pii", "secrets", "exfiltration"]) {
            let a = scan_action(ctx, v, &format!("{what}.{k}"));
            if let Some(a) = a {
                match k {
                    "injection" => acts.injection = a,
                    "pii" => acts.pii = a,
                    "secrets" => acts.secrets = a,
                    _ => acts.exfiltration = a,
                }
            }
        }
    }
}

/// Rule families and finding kinds that `response:` may name.
pub const RESPONSE_KEYS: &[&str] = &[
    "default",
    "filesystem",
    "network",
    "exec",
    "injection",
    "pii",
    "secret",
    "exfiltration",
    "tool_policy",
];

fn response_policy(ctx: &mut Ctx, n: &Node, out: &mut ResponsePolicy) {
    for (k, v) in ctx.map(n, "response", RESPONSE_KEYS) {
        if let Some(r) = response(ctx, v, &format!("response.{k}")) {
            if k == "default" {
                out.default = r;
            } else {
                out.overrides.insert(k.to_string(), r);
            }
        }
    }
}

/// Parse policy text. `file` names it in diagnostics.
pub fn parse_policy(text: &str, file: &str) -> Result<Policy, PolicyError> {
    let diag = |line, column, message: String, hint: Option<String>| {
        PolicyError::Invalid(vec![Diagnostic {
            file: file.to_string(),
            line,
            column,
            message,
            hint,
        }])
    };
    if text.len() > MAX_POLICY_BYTES {
        return Err(diag(
            1,
            1,
            format!("policy is larger than {MAX_POLICY_BYTES} bytes"),
            None,
        ));
    }
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        return Err(diag(
            e.marker().line(),
            e.marker().col() + 1,
            format!("YAML syntax: {}", e.info()),
            Some("check indentation and that lists use `- ` or `[a, b]`".into()),
        ));
    }
    if let Some((msg, line, col)) = builder.error {
        return Err(diag(line, col, msg, None));
    }
    let root = match builder.docs.len() {
        0 => {
            return Err(diag(
                1,
                1,
                "empty policy".into(),
                Some("start with `version: 1`".into()),
            ))
        }
        1 => builder.docs.remove(0),
        _ => {
            return Err(diag(
                1,
                1,
                "a policy file holds one YAML document".into(),
                None,
            ))
        }
    };

    let mut ctx = Ctx {
        file,
        diags: Vec::new(),
    };
    let mut policy = Policy {
        version: 0,
        name: String::new(),
        sandbox: Sandbox::default(),
        tools: ToolPolicy::default(),
        scan: ScanPolicy::default(),
        response: ResponsePolicy::default(),
    };
    let mut has_version = false;
    for (k, v) in ctx.map(
        &root,
        "policy",
        &["version", "name", "sandbox", "tools", "scan", "response"],
    ) {
        match k {
            "version" => {
                has_version = true;
                if let Some(ver) = ctx.uint(v, "version", u32::MAX as u64) {
                    if ver != 1 {
                        ctx.err(
                            v,
                            format!("unsupported policy version {ver}"),
                            Some("this shieldd reads `version: 1`".into()),
                        );
                    }
                    policy.version = ver as u32;
                }
            }
            "name" => policy.name = ctx.string(v, "name").unwrap_or_default(),
            "sandbox" => sandbox(&mut ctx, v, &mut policy.sandbox),
            "tools" => tools(&mut ctx, v, &mut policy.tools),
            "scan" => scan(&mut ctx, v, &mut policy.scan),
            "response" => response_policy(&mut ctx, v, &mut policy.response),
            _ => {}
        }
    }
    if !has_version && matches!(root.kind, NodeKind::Map(_)) {
        ctx.err(
            &root,
            "missing `version`",
            Some("add `version: 1` at the top".into()),
        );
    }
    if ctx.diags.is_empty() {
        Ok(policy)
    } else {
        ctx.diags.sort_by_key(|d| (d.line, d.column));
        Err(PolicyError::Invalid(ctx.diags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<Diagnostic> {
        match parse_policy(text, "p.yaml") {
            Ok(_) => panic!("expected errors"),
            Err(e) => e.diagnostics().to_vec(),
        }
    }

    #[test]
    fn spec_example_parses() {
        let text = r#"
version: 1
name: support-agent
sandbox:
  user: nobody
  filesystem:
    read:  [/usr, /lib, /lib64, /etc, ./]
    write: [/tmp/agent-work]
    deny:  [/etc/shadow, ~/.ssh, ~/.aws]
  network:
    connect:
      - { host: api.openai.com, port: 443 }
      - { cidr: 127.0.0.1/32, port: 8080 }
    bind: []
  exec:
    allow: [/usr/bin/python3*, /usr/bin/git]
  limits: { pids: 256, memory: 2GiB }
tools:
  default_action: deny
  allowed_tools:
    - name: database_query
      allowed_operations: [SELECT]
      blocked_tables: [users_pii, credentials, audit_log]
      max_rows: 100
    - name: send_email
      requires_approval: true
      allowed_domains: ["@yourcompany.com"]
scan:
  inbound:  { injection: block, pii: redact, secrets: redact }
  outbound: { pii: redact, secrets: block, exfiltration: block }
response:
  default: kill
  filesystem: deny
"#;
        let p = parse_policy(text, "p.yaml").expect("valid");
        assert_eq!(p.name, "support-agent");
        assert_eq!(p.sandbox.user.as_deref(), Some("nobody"));
        assert_eq!(p.sandbox.filesystem.read.len(), 5);
        assert_eq!(p.sandbox.network.connect.len(), 2);
        assert_eq!(
            p.sandbox.network.connect[0].target,
            ConnectTarget::Host("api.openai.com".into())
        );
        assert_eq!(p.sandbox.limits.memory, Some(2 << 30));
        assert_eq!(p.sandbox.limits.pids, Some(256));
        assert_eq!(p.tools.allowed_tools[0].max_rows, Some(100));
        assert!(p.tools.allowed_tools[1].requires_approval);
        assert_eq!(p.response.for_rule("filesystem"), Response::Deny);
        assert_eq!(p.response.for_rule("exec"), Response::Kill);
    }

    #[test]
    fn every_error_is_reported_with_its_place() {
        let text = "version: 1\nsandbox:\n  filesystem:\n    read: [usr/lib]\n    wirte: [/tmp]\n  network:\n    connect:\n      - { cidr: 10.0.0.0/33, port: 80 }\n  exec:\n    allow: ['/usr/bin/[abc']\nresponse:\n  default: explode\n";
        let d = errs(text);
        let msgs: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert_eq!(d.len(), 5, "{msgs:#?}");
        assert!(
            msgs[0].starts_with("p.yaml:4:12: error: relative path `usr/lib`"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].starts_with("p.yaml:5:5: error: unknown key `wirte`"),
            "{}",
            msgs[1]
        );
        assert!(msgs[1].contains("did you mean `write`"), "{}", msgs[1]);
        assert!(
            msgs[2].contains("8:") && msgs[2].contains("bad CIDR `10.0.0.0/33`"),
            "{}",
            msgs[2]
        );
        assert!(
            msgs[3].contains("10:") && msgs[3].contains("bad glob"),
            "{}",
            msgs[3]
        );
        assert!(
            msgs[4].contains("12:12") && msgs[4].contains("unknown action `explode`"),
            "{}",
            msgs[4]
        );
    }

    #[test]
    fn wrong_types_and_syntax() {
        let d = errs("version: 1\nsandbox:\n  limits: { pids: lots }\n  filesystem: [/usr]\n");
        assert!(d[0].message.contains("must be a whole number"), "{:?}", d);
        assert!(d[1].message.contains("must be a mapping"), "{:?}", d);
        let d = errs("version: 1\nsandbox: [\n");
        assert!(d[0].message.starts_with("YAML syntax"), "{:?}", d);
        let d = errs("name: x\n");
        assert!(d[0].message.contains("missing `version`"));
        let d = errs("");
        assert!(d[0].message.contains("empty policy"));
    }

    #[test]
    fn monitor_sizes_parse_and_bad_ones_say_where() {
        let p = parse_policy(
            "version: 1\nsandbox:\n  monitor: { ring_bytes: 4MiB, max_pids: 100, max_bind_ports: 7 }\n",
            "p.yaml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.sandbox.monitor.ring_bytes, Some(4 << 20));
        assert_eq!(p.sandbox.monitor.max_pids, Some(100));
        assert_eq!(p.sandbox.monitor.max_bind_ports, Some(7));
        assert_eq!(p.sandbox.monitor.max_path_rules, None);
        let d = errs("version: 1\nsandbox:\n  monitor:\n    ring_bytes: 3000\n");
        assert_eq!((d[0].line, d[0].column), (4, 17), "{d:?}");
        assert!(d[0].message.contains("power of two"), "{d:?}");
        let d = errs("version: 1\nsandbox:\n  monitor: { max_pids: 0 }\n");
        assert!(d[0].message.contains("at least 1"), "{d:?}");
        let d = errs("version: 1\nsandbox:\n  monitor: { max_net_rules: 100000000 }\n");
        assert!(d[0].message.contains("larger than 65536"), "{d:?}");
        let d = errs("version: 1\nsandbox:\n  monitor: { ring: 1MiB }\n");
        assert!(
            d[0].hint.as_deref().unwrap_or("").contains("ring_bytes"),
            "{d:?}"
        );
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut t = String::from("version: 1\nname: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            t.push_str(&format!(
                "n{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let d = errs(&t);
        assert!(d[0].message.contains("more than"), "{:?}", d);
    }

    #[test]
    fn paths_resolve() {
        let base = ResolveBase {
            home: "/home/a".into(),
            cwd: "/work/x".into(),
        };
        assert_eq!(
            PolicyPath("~/.ssh".into()).resolve(&base),
            PathBuf::from("/home/a/.ssh")
        );
        assert_eq!(
            PolicyPath("./".into()).resolve(&base),
            PathBuf::from("/work/x")
        );
        assert_eq!(
            PolicyPath("./a/../b".into()).resolve(&base),
            PathBuf::from("/work/x/b")
        );
        assert_eq!(
            PolicyPath("/etc/../../x".into()).resolve(&base),
            PathBuf::from("/x")
        );
    }

    #[test]
    fn shipped_policies_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let mut n = 0;
        for e in std::fs::read_dir(dir).expect("policies dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "yaml") {
                Policy::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 4, "expected the four shipped policies, found {n}");
        let d = Policy::builtin_default();
        assert!(d.sandbox.network.connect.is_empty());
        assert!(d.sandbox.exec.allow.is_none());
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod check_tests;
