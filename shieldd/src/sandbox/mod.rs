//! Policy -> a confined child: Landlock, seccomp, no capabilities, its own
//! cgroup. [`prepare`] checks everything that can fail before the agent
//! exists; [`launch`] then forks and execs with raw system calls only.

pub mod cgroup;
pub mod landlock;
pub mod launch;
pub mod seccomp;

use std::ffi::{CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::policy::{ConnectTarget, Policy, Protocol, ResolveBase};

/// Parts of the confinement that may be left out, each only when the user
/// names it with `--allow-degraded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Degrade {
    /// Run without Landlock (or with an ABI older than 3).
    Landlock,
    /// Run without Landlock's TCP port rules (ABI older than 4).
    LandlockNet,
    /// Run without `limits` the cgroup hierarchy cannot enforce.
    CgroupLimits,
    /// Enforce only ports where the policy names hosts or address ranges
    /// (the address filter is the eBPF monitor's).
    NetAddresses,
    /// Run without the eBPF monitor (no in-kernel address filter, exec and
    /// open checks, or process events).
    Monitor,
}

impl Degrade {
    /// Every name accepted by `--allow-degraded`.
    pub const NAMES: &'static [&'static str] = &[
        "landlock",
        "landlock-net",
        "cgroup-limits",
        "net-addresses",
        "monitor",
    ];

    /// Parse one name.
    pub fn parse(s: &str) -> Option<Degrade> {
        match s {
            "landlock" => Some(Degrade::Landlock),
            "landlock-net" => Some(Degrade::LandlockNet),
            "cgroup-limits" => Some(Degrade::CgroupLimits),
            "net-addresses" => Some(Degrade::NetAddresses),
            "monitor" => Some(Degrade::Monitor),
            _ => None,
        }
    }

    /// The name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Degrade::Landlock => "landlock",
            Degrade::LandlockNet => "landlock-net",
            Degrade::CgroupLimits => "cgroup-limits",
            Degrade::NetAddresses => "net-addresses",
            Degrade::Monitor => "monitor",
        }
    }
}

/// Why the agent could not be started. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// shieldd lacks a privilege.
    #[error("{0}")]
    Privilege(String),
    /// The kernel lacks a feature the policy needs.
    #[error("{0}")]
    Unsupported(String),
    /// The command does not exist.
    #[error("{0}: command not found")]
    NotFound(String),
    /// The command exists but cannot be executed.
    #[error("{0}")]
    NotExecutable(String),
    /// Landlock ruleset construction.
    #[error(transparent)]
    Landlock(#[from] landlock::LandlockError),
    /// seccomp filter construction.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// cgroup setup.
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    /// Fork/exec.
    #[error(transparent)]
    Launch(#[from] launch::LaunchError),
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

impl SetupError {
    /// The exit status of `shieldd run` for this error (SPEC section 1, and
    /// the 126/127 convention of env(1) for the command itself).
    pub fn exit_code(&self) -> i32 {
        match self {
            SetupError::NotFound(_) => 127,
            SetupError::NotExecutable(_) => 126,
            SetupError::Launch(launch::LaunchError::Child {
                stage: launch::Stage::Exec,
                errno,
            }) if *errno == libc::ENOENT => 127,
            SetupError::Launch(launch::LaunchError::Child {
                stage: launch::Stage::Exec,
                ..
            }) => 126,
            _ => 125,
        }
    }
}

/// What the caller asked for, beyond the policy.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// Session id (already validated).
    pub session: String,
    /// `--user`, overriding `sandbox.user`.
    pub user: Option<String>,
    /// What may be left out.
    pub degrade: Vec<Degrade>,
    /// Extra environment for the agent (SHIELD_SOCKET, ...).
    pub extra_env: Vec<(String, String)>,
    /// The eBPF monitor will filter addresses, UDP and TCP connects in the
    /// kernel; without it Landlock and seccomp do what they can alone.
    pub monitor: bool,
    /// Working directory of the agent (default: ours). The daemon launches
    /// agents for callers elsewhere.
    pub cwd: Option<PathBuf>,
    /// The caller's environment (default: ours), before policy filtering.
    pub env: Option<Vec<(OsString, OsString)>>,
}

impl Request {
    /// A variable of the caller's environment.
    fn var(&self, name: &str) -> Option<OsString> {
        match &self.env {
            Some(env) => env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            None => std::env::var_os(name),
        }
    }
}

/// A prepared launch: everything checked, nothing started.
#[derive(Debug)]
pub struct Prepared {
    /// The child's spec.
    pub child: launch::ChildSpec,
    /// The Landlock input (kept for events and tests).
    pub fs: landlock::FsSpec,
    /// Private temporary directory (removed at the end).
    pub private_tmp: PathBuf,
    /// What was left out, by name, with why.
    pub degraded: Vec<String>,
    /// Notes for the user (functional limits that are stricter than the policy).
    pub notes: Vec<String>,
    /// Credential variables to list in reports.
    pub credentials: Vec<String>,
    /// Where `~` and `./` pointed.
    pub base: ResolveBase,
}

fn has(req: &Request, d: Degrade) -> bool {
    req.degrade.contains(&d)
}

/// Check privileges and kernel features and build the child's spec.
pub fn prepare(policy: &Policy, req: &Request) -> Result<Prepared, SetupError> {
    use caps::{CapSet, Capability};
    for cap in [
        Capability::CAP_SYS_ADMIN,
        Capability::CAP_SETPCAP,
        Capability::CAP_SETUID,
        Capability::CAP_SETGID,
    ] {
        if !caps::has_cap(None, CapSet::Effective, cap).unwrap_or(false) {
            return Err(SetupError::Privilege(format!(
                "shieldd run needs root ({cap} is missing): it creates the agent's cgroup and drops the agent's capabilities; run it with sudo or as a systemd service"
            )));
        }
    }
    if req.command.is_empty() {
        return Err(SetupError::Other(
            "no command given (usage: shieldd run -- CMD [ARGS...])".into(),
        ));
    }

    let cwd = match &req.cwd {
        Some(c) => c.clone(),
        None => std::env::current_dir()
            .map_err(|e| SetupError::Other(format!("cannot read the working directory: {e}")))?,
    };
    let home = req
        .var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    let base = ResolveBase { home, cwd };
    // Credentials first: the private temp dir is chowned to them.
    let user = req.user.clone().or_else(|| policy.sandbox.user.clone());
    let ids = match &user {
        Some(u) => Some(resolve_user(u)?),
        None => None,
    };

    let private_tmp = std::env::temp_dir().join(format!("shieldd-{}", req.session));
    make_private_dir(&private_tmp, &req.session, ids.as_ref())?;
    let r = prepare_rest(policy, req, base, ids, private_tmp.clone());
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&private_tmp);
    }
    r
}

fn prepare_rest(
    policy: &Policy,
    req: &Request,
    base: ResolveBase,
    ids: Option<launch::Ids>,
    private_tmp: PathBuf,
) -> Result<Prepared, SetupError> {
    let sb = &policy.sandbox;
    let cwd = base.cwd.clone();
    let argv0 = req
        .command
        .first()
        .ok_or_else(|| SetupError::Other("no command".into()))?;
    let mut notes = Vec::new();
    let mut degraded = Vec::new();

    let write: Vec<PathBuf> = sb
        .filesystem
        .write
        .iter()
        .map(|p| p.resolve(&base))
        .collect();
    for w in &write {
        if !w.exists() && !w.starts_with("/dev") {
            std::fs::create_dir_all(w).map_err(|e| {
                SetupError::Other(format!("cannot create write path {}: {e}", w.display()))
            })?;
            tracing::info!(path = %w.display(), "created missing write directory");
        }
    }

    // Network: Landlock restricts TCP ports; hosts, CIDRs and UDP need the
    // kernel address filter of the eBPF monitor.
    let net = &sb.network;
    let mut connect_ports = Some(Vec::new());
    let mut udp_allowed = false;
    for r in &net.connect {
        if r.protocol != Protocol::Tcp {
            udp_allowed = true;
        }
        if r.protocol == Protocol::Udp {
            continue;
        }
        match (r.port, connect_ports.as_mut()) {
            (Some(p), Some(list)) => list.push(p),
            (None, _) => connect_ports = None,
            _ => {}
        }
    }
    if req.monitor {
        // The monitor's cgroup hooks enforce host, port and protocol, and
        // record what they refuse; a Landlock refusal would come first and
        // leave no record.
        connect_ports = None;
    } else if net.needs_address_filtering() {
        let hosts: Vec<String> = net
            .connect
            .iter()
            .filter_map(|r| match &r.target {
                ConnectTarget::Host(h) => Some(h.clone()),
                ConnectTarget::Cidr(c) => Some(c.to_string()),
                ConnectTarget::Any => None,
            })
            .collect();
        if !has(req, Degrade::NetAddresses) {
            return Err(SetupError::Unsupported(format!(
                "the policy limits connections to named hosts or address ranges ({}), which needs the eBPF address filter, not available in this build; pass --allow-degraded=net-addresses to enforce the ports only",
                hosts.join(", ")
            )));
        }
        degraded.push(format!(
            "net-addresses: connections are limited by port only, not to {}",
            hosts.join(", ")
        ));
    }
    if udp_allowed && !req.monitor {
        notes.push(
            "UDP sockets are refused entirely: port and address rules for UDP need the eBPF monitor".into(),
        );
    }

    let allowed_exec = sb
        .exec
        .allow
        .as_ref()
        .map(|globs| landlock::expand_exec_allow(globs))
        .transpose()
        .map_err(|e| SetupError::Other(format!("exec.allow: {e}")))?;
    let program = resolve_command(argv0, &cwd, req.var("PATH"))?;
    if let Some(allowed) = &allowed_exec {
        // Said now, clearly, rather than as a kill at the agent's first exec.
        let real = std::fs::canonicalize(&program).unwrap_or_else(|_| program.clone());
        let ok = allowed.iter().any(|a| {
            let a = std::fs::canonicalize(a).unwrap_or_else(|_| a.clone());
            real == a || (a.is_dir() && real.starts_with(&a))
        });
        if !ok {
            return Err(SetupError::NotExecutable(format!(
                "cannot execute {}: not allowed by the policy's exec.allow",
                program.display()
            )));
        }
    }
    let mut fs = landlock::FsSpec {
        read: sb
            .filesystem
            .read
            .iter()
            .map(|p| p.resolve(&base))
            .collect(),
        write,
        deny: sb
            .filesystem
            .deny
            .iter()
            .map(|p| p.resolve(&base))
            .collect(),
        // With the monitor, exec.allow is its to enforce (in the kernel, on
        // the file actually executed) and to record; a Landlock refusal
        // would come first and leave no record. Without it, Landlock alone.
        exec: if req.monitor { None } else { allowed_exec },
        connect_ports,
        bind_ports: net.bind.clone(),
        restrict_net: true,
    };

    let abi = landlock::kernel_abi();
    let landlock_fd = if abi < 3 {
        if !has(req, Degrade::Landlock) {
            return Err(SetupError::Unsupported(if abi == 0 {
                "Landlock is not available in this kernel (needs Linux 5.13+ with `landlock` in the lsm= boot parameter); pass --allow-degraded=landlock to run without file-system confinement".into()
            } else {
                format!("Landlock ABI {abi} is older than the 3 the file rules need (truncate control, Linux 6.2+); pass --allow-degraded=landlock to run without it")
            }));
        }
        degraded.push(format!(
            "landlock: kernel ABI {abi}, file-system and TCP rules not enforced"
        ));
        None
    } else {
        if abi < 4 {
            if !has(req, Degrade::LandlockNet) {
                return Err(SetupError::Unsupported(format!(
                    "Landlock ABI {abi} cannot restrict TCP (needs ABI 4, Linux 6.7+); pass --allow-degraded=landlock-net to run with TCP unrestricted"
                )));
            }
            degraded.push(format!(
                "landlock-net: ABI {abi}, TCP connect and bind not restricted"
            ));
        }
        if abi < 6 {
            notes.push(format!(
                "Landlock ABI {abi}: signal and abstract-socket scoping not available"
            ));
        }
        Some(landlock::build_session_rulesets(&fs, &private_tmp, abi)?)
    };
    // What the agent may do, as one spec (events and tests).
    fs.write.push(private_tmp.clone());
    let (landlock_fd, landlock_own) = match landlock_fd {
        Some(r) => (Some(r.shared), r.own),
        None => (None, None),
    };

    let filters = cached_filters(!req.monitor)?;

    let argv = req
        .command
        .iter()
        .map(|a| cstring(a.as_bytes(), "argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = build_env(policy, req, &private_tmp)?;
    static CAP_LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let cap_last = *CAP_LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(63)
    });

    Ok(Prepared {
        child: launch::ChildSpec {
            program: cstring(program.as_os_str().as_bytes(), "command")?,
            argv,
            envp,
            ids,
            landlock: landlock_fd,
            landlock_own,
            seccomp: filters,
            cap_last,
            stdio: None,
            cwd: match &req.cwd {
                Some(d) => Some(cstring(d.as_os_str().as_bytes(), "working directory")?),
                None => None,
            },
            cgroup_tasks: Vec::new(),
        },
        fs,
        private_tmp,
        degraded,
        notes,
        credentials: sb.env.credentials.clone(),
        base,
    })
}

/// The seccomp filters depend on nothing but whether UDP is refused:
/// compiled once per process (the daemon launches many sessions) and
/// copied for each launch.
fn cached_filters(deny_udp: bool) -> Result<Vec<seccompiler::BpfProgram>, SetupError> {
    use std::sync::OnceLock;
    static WITH_UDP: OnceLock<Vec<seccompiler::BpfProgram>> = OnceLock::new();
    static WITHOUT_UDP: OnceLock<Vec<seccompiler::BpfProgram>> = OnceLock::new();
    let cell = if deny_udp { &WITHOUT_UDP } else { &WITH_UDP };
    if let Some(f) = cell.get() {
        return Ok(f.clone());
    }
    let f = seccomp::build_filters(seccomp::SocketRules { deny_udp })?;
    Ok(cell.get_or_init(|| f).clone())
}

fn cstring(b: &[u8], what: &str) -> Result<CString, SetupError> {
    CString::new(b).map_err(|_| SetupError::Other(format!("{what} contains a NUL byte")))
}

fn resolve_user(u: &str) -> Result<launch::Ids, SetupError> {
    use nix::unistd::{Uid, User};
    let user = match u.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(u),
    }
    .map_err(|e| SetupError::Other(format!("cannot look up user `{u}`: {e}")))?
    .ok_or_else(|| SetupError::Other(format!("sandbox.user `{u}` does not exist on this host")))?;
    let name = CString::new(user.name.as_bytes())
        .map_err(|_| SetupError::Other("user name contains a NUL byte".into()))?;
    let groups = nix::unistd::getgrouplist(&name, user.gid)
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|_| vec![user.gid.as_raw()]);
    Ok(launch::Ids {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups,
    })
}

fn make_private_dir(
    dir: &Path,
    session: &str,
    ids: Option<&launch::Ids>,
) -> Result<(), SetupError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let err = |e: std::io::Error| {
        SetupError::Other(format!(
            "cannot create private temp dir {}: {e}",
            dir.display()
        ))
    };
    // A fresh directory only: an existing one could be a planted symlink,
    // or hold what an earlier agent left for the next one to trust.
    let mut moved = None;
    let mut tries = 0;
    loop {
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 3 => {
                tries += 1;
                if cgroup::session_running(session) {
                    return Err(SetupError::Other(format!(
                        "session {session} is running already (its cgroup has processes and {} is its private temp dir); choose another --session, or end that one first",
                        dir.display()
                    )));
                }
                moved = Some(move_aside(dir).map_err(|e| {
                    SetupError::Other(format!(
                        "{} is left over from an earlier session {session} and cannot be moved aside ({e}); remove it, or choose another --session",
                        dir.display()
                    ))
                })?);
            }
            Err(e) => return Err(err(e)),
        }
    }
    if let Some(old) = moved {
        eprintln!(
            "shieldd: the private temp dir of an earlier session {session} that did not end cleanly was moved to {} (kept for inspection; remove it when done); the agent gets a new, empty one",
            old.display()
        );
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    if let Some(ids) = ids {
        std::os::unix::fs::chown(dir, Some(ids.uid), Some(ids.gid)).map_err(err)?;
    }
    Ok(())
}

/// Rename a leftover private dir (whatever it is: directory, symlink or
/// file; rename never follows a symlink) to a new name beside it.
fn move_aside(dir: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 0..100u32 {
        let to = dir.with_file_name(format!("{name}.left-{secs}-{n}"));
        let Ok(to_c) = CString::new(to.as_os_str().as_bytes()) else {
            break;
        };
        let Ok(from_c) = CString::new(dir.as_os_str().as_bytes()) else {
            break;
        };
        // SAFETY: renameat2 on two valid NUL-terminated paths; NOREPLACE so
        // nothing already at `to` (planted or an earlier leftover) is lost.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from_c.as_ptr(),
                libc::AT_FDCWD,
                to_c.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(to);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e);
        }
    }
    Err(std::io::Error::other("no free name to move it to"))
}

/// Find the program like execvp would, but before fork, so a missing
/// command is reported clearly.
fn resolve_command(
    argv0: &OsString,
    cwd: &Path,
    path: Option<OsString>,
) -> Result<PathBuf, SetupError> {
    let shown = argv0.to_string_lossy().into_owned();
    let candidates: Vec<PathBuf> = if argv0.as_bytes().contains(&b'/') {
        vec![cwd.join(argv0)]
    } else {
        let path = path.unwrap_or_else(|| "/usr/bin:/bin".into());
        std::env::split_paths(&path)
            .map(|d| d.join(argv0))
            .collect()
    };
    for c in candidates {
        if c.is_file() {
            let cs = cstring(c.as_os_str().as_bytes(), "command")?;
            // SAFETY: access(2) on a valid NUL-terminated path.
            if unsafe { libc::access(cs.as_ptr(), libc::X_OK) } != 0 {
                return Err(SetupError::NotExecutable(format!(
                    "{}: permission denied (not executable)",
                    c.display()
                )));
            }
            return Ok(c);
        }
    }
    Err(SetupError::NotFound(shown))
}

fn build_env(
    policy: &Policy,
    req: &Request,
    private_tmp: &Path,
) -> Result<Vec<CString>, SetupError> {
    let mut b = globset::GlobSetBuilder::new();
    for pat in &policy.sandbox.env.remove {
        let g = globset::Glob::new(pat)
            .map_err(|e| SetupError::Other(format!("bad env.remove pattern `{pat}`: {e}")))?;
        b.add(g);
    }
    let remove = b
        .build()
        .map_err(|e| SetupError::Other(format!("env.remove: {e}")))?;
    let ours = ["SHIELD_SESSION", "TMPDIR"];
    let mut env: Vec<CString> = Vec::new();
    let vars: Vec<(OsString, OsString)> = match &req.env {
        Some(e) => e.clone(),
        None => std::env::vars_os().collect(),
    };
    for (k, v) in vars {
        let ks = k.to_string_lossy();
        if remove.is_match(ks.as_ref())
            || ours.contains(&ks.as_ref())
            // shieldd's own systemd sockets are not the agent's to use.
            || crate::service::systemd::SYSTEMD_ENV.contains(&ks.as_ref())
            || req.extra_env.iter().any(|(n, _)| *n == ks)
        {
            continue;
        }
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        env.push(cstring(&kv, "environment")?);
    }
    env.push(cstring(
        format!("SHIELD_SESSION={}", req.session).as_bytes(),
        "environment",
    )?);
    let mut tmp = b"TMPDIR=".to_vec();
    tmp.extend_from_slice(private_tmp.as_os_str().as_bytes());
    env.push(cstring(&tmp, "environment")?);
    for (k, v) in &req.extra_env {
        env.push(cstring(format!("{k}={v}").as_bytes(), "environment")?);
    }
    Ok(env)
}

/// Whether a session id is safe to use in paths.
pub fn valid_session_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !s.starts_with('.')
}

/// A new random session id.
pub fn new_session_id() -> String {
    let mut b = [0u8; 6];
    // SAFETY: getrandom fills the buffer we own.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // getrandom cannot fail for 6 bytes after boot; fall back to the pid and time.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("s{:x}{:x}", std::process::id(), t);
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("s-{hex}")
}
