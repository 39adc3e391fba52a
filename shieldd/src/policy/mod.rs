//! The policy model of SPEC.md section 2: typed, validated, and the only
//! input every other module takes (sandbox, monitor, scan, tools, response).
//!
//! Data path: YAML file -> [`parse`] (every error with line and column) ->
//! [`Policy`] -> [`Policy::resolve`] at launch (`~` and `./` made absolute)
//! -> the sandbox's Landlock/seccomp/cgroup settings.

mod parse;
pub(crate) use parse::parse_size;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use parse::{parse_policy, Diagnostic, PolicyError};

/// A whole policy file.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Schema version; only 1 exists.
    pub version: u32,
    /// Name shown in events and reports.
    pub name: String,
    /// Kernel-enforced confinement of the agent's process tree.
    pub sandbox: Sandbox,
    /// Tool-call policy; `None` means no tools section (every tool denied).
    pub tools: ToolPolicy,
    /// Text scanning actions per direction.
    pub scan: ScanPolicy,
    /// What a violation does.
    pub response: ResponsePolicy,
}

/// `sandbox:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sandbox {
    /// Run the agent as this user (name or numeric uid).
    pub user: Option<String>,
    /// `filesystem:`.
    pub filesystem: Filesystem,
    /// `network:`.
    pub network: Network,
    /// `exec:`.
    pub exec: Exec,
    /// `limits:`.
    pub limits: Limits,
    /// `env:` (extension): variables removed or marked as credentials.
    pub env: EnvPolicy,
    /// `monitor:` (extension): sizes of the eBPF monitor's kernel maps.
    pub monitor: MonitorSizes,
}

/// `sandbox.monitor:` (extension of SPEC section 2): sizes of the kernel
/// maps and the event ring of a standalone session's monitor (a daemon
/// loads its programs once for all sessions and takes the sizes from its
/// own config). Unset fields keep the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonitorSizes {
    /// Event ring buffer bytes: a power of two from 4KiB to 1GiB.
    pub ring_bytes: Option<u32>,
    /// Processes of the tree tracked at once.
    pub max_pids: Option<u32>,
    /// Entries of each path trie (exec allowlist, deny list).
    pub max_path_rules: Option<u32>,
    /// Entries of the network allow trie.
    pub max_net_rules: Option<u32>,
    /// Ports in the bind allowlist.
    pub max_bind_ports: Option<u32>,
}

/// A path as written in the policy: absolute, `~`-relative or `./`-relative.
/// Resolved to an absolute path at launch by [`PolicyPath::resolve`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyPath(pub String);

/// Where `~` and `./` point when a policy is resolved.
#[derive(Debug, Clone)]
pub struct ResolveBase {
    /// Home directory of the invoking user.
    pub home: PathBuf,
    /// Working directory the agent starts in.
    pub cwd: PathBuf,
}

impl PolicyPath {
    /// Make the path absolute against `base`; lexically normalised (`.` and
    /// `..` removed) but symlinks are left to the kernel.
    pub fn resolve(&self, base: &ResolveBase) -> PathBuf {
        let s = self.0.as_str();
        let joined = if s == "~" {
            base.home.clone()
        } else if let Some(rest) = s.strip_prefix("~/") {
            base.home.join(rest)
        } else if s == "." || s == "./" {
            base.cwd.clone()
        } else if let Some(rest) = s.strip_prefix("./") {
            base.cwd.join(rest)
        } else {
            PathBuf::from(s)
        };
        normalize_lexically(&joined)
    }
}

/// Remove `.` and `..` components without touching the file system.
pub fn normalize_lexically(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

/// `sandbox.filesystem:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filesystem {
    /// Read + execute.
    pub read: Vec<PolicyPath>,
    /// Read + write + create.
    pub write: Vec<PolicyPath>,
    /// Never, even inside `read`/`write`.
    pub deny: Vec<PolicyPath>,
}

/// The remote side of a `network.connect` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTarget {
    /// A DNS name, resolved at launch.
    Host(String),
    /// An address range.
    Cidr(ipnet::IpNet),
    /// Any address (`host: "*"`): only the port is restricted.
    Any,
}

/// Transport of a connect or bind rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// TCP and UDP.
    #[default]
    Any,
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
}

/// One `network.connect` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRule {
    /// Where to.
    pub target: ConnectTarget,
    /// Port; `None` = any port.
    pub port: Option<u16>,
    /// TCP, UDP or both.
    pub protocol: Protocol,
}

/// `sandbox.network:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Network {
    /// Outbound allowlist; empty = no network.
    pub connect: Vec<ConnectRule>,
    /// Ports the agent may listen on.
    pub bind: Vec<u16>,
}

impl Network {
    /// Whether any rule names a host or an address range rather than only a port.
    pub fn needs_address_filtering(&self) -> bool {
        self.connect
            .iter()
            .any(|r| !matches!(r.target, ConnectTarget::Any))
    }
}

/// `sandbox.exec:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exec {
    /// Paths or globs that may be executed; `None` = anything under `read`.
    pub allow: Option<Vec<String>>,
}

/// `sandbox.limits:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    /// Maximum number of tasks in the tree.
    pub pids: Option<u64>,
    /// Maximum memory in bytes.
    pub memory: Option<u64>,
}

/// `sandbox.env:` (extension of SPEC section 2).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvPolicy {
    /// Variable names or globs (`AWS_*`) removed from the agent's environment.
    pub remove: Vec<String>,
    /// Variables passed to the agent but listed in reports as credentials to rotate.
    pub credentials: Vec<String>,
}

/// `tools.default_action` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolDefault {
    /// Unlisted tools are refused.
    #[default]
    Deny,
    /// Unlisted tools are allowed.
    Allow,
}

/// `tools:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolPolicy {
    /// What happens to a tool not listed.
    pub default_action: ToolDefault,
    /// Listed tools and their constraints.
    pub allowed_tools: Vec<ToolRule>,
}

/// One entry of `tools.allowed_tools`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolRule {
    /// Tool name as the agent calls it.
    pub name: String,
    /// SQL statement kinds allowed (`SELECT`, `INSERT`, ...); `None` = any.
    pub allowed_operations: Option<Vec<String>>,
    /// Tables that may not be referenced anywhere in the SQL.
    pub blocked_tables: Vec<String>,
    /// Largest LIMIT allowed; a query without LIMIT is refused when set.
    pub max_rows: Option<u64>,
    /// The call needs a person's approval.
    pub requires_approval: bool,
    /// Recipient domains allowed (`@example.com` or `example.com`).
    pub allowed_domains: Vec<String>,
    /// Directory prefixes, compared by path component.
    pub allowed_paths: Vec<String>,
    /// Generic per-parameter rules.
    pub params: BTreeMap<String, ParamRule>,
}

/// A generic rule on one parameter of a tool.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamRule {
    /// The value must match one of these regexes (when non-empty).
    pub allow: Vec<String>,
    /// The value must match none of these regexes.
    pub deny: Vec<String>,
    /// Maximum length in bytes.
    pub max_len: Option<usize>,
}

/// What the scanner does with one kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScanAction {
    /// Not reported.
    Off,
    /// Reported, text allowed.
    Log,
    /// Reported, text redacted.
    Redact,
    /// Reported, text blocked.
    Block,
}

/// Actions per finding kind for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanActions {
    /// Prompt injection.
    pub injection: ScanAction,
    /// Personal data.
    pub pii: ScanAction,
    /// Secrets.
    pub secrets: ScanAction,
    /// Exfiltration.
    pub exfiltration: ScanAction,
}

/// `scan:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanPolicy {
    /// Text the agent reads.
    pub inbound: ScanActions,
    /// Text the agent writes.
    pub outbound: ScanActions,
}

impl Default for ScanPolicy {
    fn default() -> Self {
        ScanPolicy {
            inbound: ScanActions {
                injection: ScanAction::Block,
                pii: ScanAction::Redact,
                secrets: ScanAction::Redact,
                exfiltration: ScanAction::Log,
            },
            outbound: ScanActions {
                injection: ScanAction::Log,
                pii: ScanAction::Redact,
                secrets: ScanAction::Block,
                exfiltration: ScanAction::Block,
            },
        }
    }
}

/// What a violation does (SPEC section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Response {
    /// The operation fails with EPERM and the agent goes on.
    Deny,
    /// Recorded only.
    Log,
    /// The tree is frozen and cut from the network.
    Isolate,
    /// The whole tree is killed.
    Kill,
}

/// `response:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePolicy {
    /// For any rule without its own entry.
    pub default: Response,
    /// Per rule family (`filesystem`, `network`, `exec`) or finding kind
    /// (`injection`, `pii`, `secret`, `exfiltration`, `tool_policy`).
    pub overrides: BTreeMap<String, Response>,
}

impl Default for ResponsePolicy {
    fn default() -> Self {
        ResponsePolicy {
            default: Response::Kill,
            overrides: BTreeMap::new(),
        }
    }
}

impl ResponsePolicy {
    /// The response for a rule family or finding kind.
    pub fn for_rule(&self, rule: &str) -> Response {
        self.overrides.get(rule).copied().unwrap_or(self.default)
    }
}

/// The built-in default policy (SPEC section 1), as YAML so that it is
/// parsed by the same code as every user policy.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../../policies/default.yaml");

impl Policy {
    /// The built-in default policy.
    pub fn builtin_default() -> Policy {
        match parse_policy(DEFAULT_POLICY_YAML, "<built-in default>") {
            Ok(p) => p,
            // The default policy is tested; failing here is a build defect.
            Err(e) => panic!("built-in default policy is invalid: {e}"),
        }
    }

    /// Read and parse a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Io {
            file: path.display().to_string(),
            source: e,
        })?;
        parse_policy(&text, &path.display().to_string())
    }
}
