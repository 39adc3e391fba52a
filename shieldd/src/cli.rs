//! The command line (SPEC section 1). Each subcommand maps to a library
//! function; this module only parses arguments and prints.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::policy::{Policy, PolicyError};
use crate::run::{run, RunOptions};
use crate::sandbox::{self, Degrade, Request};

/// Run an AI agent on a Linux host without trusting it.
#[derive(Debug, Parser)]
#[command(name = "shieldd", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Launch CMD as a supervised agent and wait for it.
    Run {
        /// Policy file (default: the built-in default policy).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Append the session's events (JSON lines) to FILE.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Path of the scan API socket for this session.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Session id (letters, digits, `-`, `_`, `.`; default: random).
        #[arg(long)]
        session: Option<String>,
        /// Run the agent as USER (overrides sandbox.user).
        #[arg(long)]
        user: Option<String>,
        /// Parts of the confinement that may be left out when the kernel
        /// lacks them: monitor, landlock, landlock-net, cgroup-limits,
        /// net-addresses.
        #[arg(long, value_delimiter = ',')]
        allow_degraded: Vec<String>,
        /// Seconds the agent has to exit after a forwarded SIGTERM/SIGINT.
        #[arg(long, default_value_t = 5.0)]
        grace: f64,
        /// Run the agent here even when a daemon is running.
        #[arg(long)]
        standalone: bool,
        /// Seconds between resolutions of the policy's host names while the
        /// agent runs (standalone; the daemon's config has `dns_refresh`);
        /// 0 = resolve at launch only.
        #[arg(long, default_value_t = crate::run::DNS_REFRESH.as_secs_f64())]
        dns_refresh: f64,
        /// The daemon's control socket (default: $SHIELDD_CONTROL, else
        /// /run/shieldd/control.sock). Without a daemon there, `run` works
        /// standalone.
        #[arg(long)]
        control: Option<PathBuf>,
        /// The agent command and its arguments.
        #[arg(last = true, required = true)]
        cmd: Vec<OsString>,
    },
    /// Long-running host service: loads the kernel programs once and
    /// supervises the agents started through it.
    Daemon {
        /// Configuration file (default /etc/shieldd/config.yaml; missing = defaults).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List the daemon's sessions.
    Sessions {
        /// JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
        /// The daemon's control socket (default: $SHIELDD_CONTROL, else /run/shieldd/control.sock).
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Kill a session's whole process tree.
    Kill {
        /// Session id.
        session: String,
        /// The daemon's control socket.
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Freeze a session and cut its network (kept until release or kill).
    Isolate {
        /// Session id.
        session: String,
        /// The daemon's control socket.
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Undo isolate.
    Release {
        /// Session id.
        session: String,
        /// The daemon's control socket.
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Validate a policy; errors name the line and column.
    CheckPolicy {
        /// Policy file.
        file: PathBuf,
    },
    /// Scan text from stdin and print a verdict (exit 0 allowed, 1 blocked, 2 input error).
    Scan {
        /// Which way the text flows.
        #[arg(long, value_enum, default_value = "inbound")]
        direction: DirectionArg,
        /// Policy whose `scan:` section applies (default: the built-in default).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Each stdin line is `{"id", "text", "direction"}`; each stdout line a verdict with its id.
        /// Exit 0 whatever the verdicts (read each line's `action`), 2 if stdin or stdout fails.
        #[arg(long)]
        jsonl: bool,
    },
    /// Evaluate one tool call against the policy's `tools:` section.
    CheckTool {
        /// Tool name.
        #[arg(long)]
        tool: String,
        /// Parameters as a JSON object.
        #[arg(long)]
        params: String,
        /// Policy file (default: the built-in default, which allows no tool).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Print audit records (JSON lines), optionally of one session, optionally following the file.
    Events {
        /// Only this session.
        #[arg(long)]
        session: Option<String>,
        /// Keep printing records as they are appended.
        #[arg(long)]
        follow: bool,
        /// The audit trail (an `--events` file of `shieldd run`).
        #[arg(long, default_value = crate::report::DEFAULT_TRAIL)]
        file: PathBuf,
    },
    /// A session's blast radius: programs, files, addresses, tool calls,
    /// violations and containment, credentials to rotate.
    Report {
        /// Session id.
        session: String,
        /// The audit trail (an `--events` file of `shieldd run`).
        #[arg(long, default_value = crate::report::DEFAULT_TRAIL)]
        file: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Serve the scan API on a Unix socket without supervising an agent
    /// (for developing against the SDKs).
    Serve {
        /// Socket path to create.
        #[arg(long)]
        socket: PathBuf,
        /// Policy whose `scan:` and `tools:` sections apply.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Longest request line in bytes.
        #[arg(long, default_value_t = shield_client::wire::DEFAULT_MAX_LINE)]
        max_line: usize,
    },
}

/// `--direction`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DirectionArg {
    /// Text the agent reads.
    Inbound,
    /// Text the agent writes.
    Outbound,
}

impl From<DirectionArg> for shield_client::wire::Direction {
    fn from(d: DirectionArg) -> Self {
        match d {
            DirectionArg::Inbound => shield_client::wire::Direction::Inbound,
            DirectionArg::Outbound => shield_client::wire::Direction::Outbound,
        }
    }
}

/// Run the parsed command line; returns the process exit status.
pub fn main_with(cli: Cli) -> i32 {
    match cli.command {
        Command::Run {
            policy,
            events,
            socket,
            session,
            user,
            allow_degraded,
            grace,
            standalone,
            dns_refresh,
            control,
            cmd,
        } => {
            let policy_path = policy.clone();
            // A named policy is checked here, so its errors print with
            // their positions; the built-in default is parsed only for a
            // standalone run (the daemon applies its own default).
            let loaded = match &policy_path {
                Some(_) => match load_policy(policy.as_ref()) {
                    Ok(p) => Some(p),
                    Err(code) => return code,
                },
                None => None,
            };
            let mut degrade = Vec::new();
            for name in &allow_degraded {
                match Degrade::parse(name) {
                    Some(d) => degrade.push(d),
                    None => {
                        eprintln!(
                            "shieldd: unknown --allow-degraded part `{name}` (known: {})",
                            Degrade::NAMES.join(", ")
                        );
                        return 125;
                    }
                }
            }
            let session = match session {
                Some(s) if sandbox::valid_session_id(&s) => s,
                Some(s) => {
                    eprintln!("shieldd: bad --session `{s}`: use up to 64 letters, digits, `-`, `_` or `.`");
                    return 125;
                }
                None => sandbox::new_session_id(),
            };
            if !grace.is_finite() || grace < 0.0 {
                eprintln!("shieldd: --grace must be a number of seconds");
                return 125;
            }
            if !dns_refresh.is_finite() || dns_refresh < 0.0 {
                eprintln!("shieldd: --dns-refresh must be a number of seconds");
                return 125;
            }
            if !standalone {
                use crate::service::control::{control_path, Client, ClientError};
                match Client::connect(&control_path(control.as_deref())) {
                    Ok(client) => {
                        if let Some(s) = &socket {
                            eprintln!(
                                "shieldd: --socket {} is ignored through the daemon (the agent gets the daemon's session socket); pass --standalone to use it",
                                s.display()
                            );
                        }
                        let text = match &policy_path {
                            Some(p) => match std::fs::read_to_string(p) {
                                Ok(t) => Some(t),
                                Err(e) => {
                                    eprintln!("shieldd: {}: {e}", p.display());
                                    return 125;
                                }
                            },
                            None => None,
                        };
                        // Exact bytes: an agent started through the daemon
                        // sees what it would see started directly.
                        let cwd = std::env::current_dir()
                            .map(|c| c.into_os_string().into())
                            .unwrap_or_else(|_| "/".into());
                        let start = crate::service::registry::StartRequest {
                            argv: cmd.iter().map(|c| c.as_os_str().into()).collect(),
                            cwd,
                            env: std::env::vars_os()
                                .map(|(k, v)| (k.into(), v.into()))
                                .collect(),
                            policy: text,
                            policy_source: loaded.as_ref().map(|(_, s)| s.clone()),
                            session: Some(session),
                            user,
                            events: events.map(|e| {
                                std::path::absolute(&e).unwrap_or(e).into_os_string().into()
                            }),
                            allow_degraded,
                            grace_secs: Some(grace),
                        };
                        return crate::service::attach::run_attached(client, start);
                    }
                    Err(ClientError::NoDaemon(_)) => {}
                    Err(e) => {
                        eprintln!("shieldd: {e}; pass --standalone to run without the daemon");
                        return 125;
                    }
                }
            }
            let (policy, source) = match loaded {
                Some(p) => p,
                None => match load_policy(None) {
                    Ok(p) => p,
                    Err(code) => return code,
                },
            };
            run(RunOptions {
                policy,
                policy_source: source,
                request: Request {
                    command: cmd,
                    session,
                    user,
                    degrade,
                    extra_env: Vec::new(),
                    monitor: true,
                    cwd: None,
                    env: None,
                },
                events,
                socket,
                grace: Duration::from_secs_f64(grace.min(86_400.0)),
                dns_refresh: Duration::from_secs_f64(dns_refresh.min(86_400.0)),
            })
        }
        Command::Scan {
            direction,
            policy,
            jsonl,
        } => match load_policy(policy.as_ref()) {
            Ok((p, _)) => crate::scan::cli::run_scan(&p, direction.into(), jsonl),
            Err(_) => 2,
        },
        Command::CheckTool {
            tool,
            params,
            policy,
        } => match load_policy(policy.as_ref()) {
            Ok((p, _)) => {
                let (code, line) = crate::tools::cmd_check_tool(&p.tools, &tool, &params);
                println!("{line}");
                code
            }
            Err(_) => 2,
        },
        Command::Serve {
            socket,
            policy,
            max_line,
        } => match load_policy(policy.as_ref()) {
            Ok((p, _)) => crate::api::serve_standalone(&p, &socket, max_line),
            Err(_) => 2,
        },
        Command::Events {
            session,
            follow,
            file,
        } => {
            let mut out = std::io::stdout().lock();
            match crate::report::events(&file, session.as_deref(), follow, &mut out) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("shieldd: {e}{}", trail_hint(&e));
                    1
                }
            }
        }
        Command::Report {
            session,
            file,
            json,
        } => match crate::report::report(&file, &session) {
            Ok(r) => {
                if json {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                } else {
                    print!("{}", crate::report::render(&r));
                }
                0
            }
            Err(e) => {
                eprintln!("shieldd: {e}{}", trail_hint(&e));
                1
            }
        },
        Command::Daemon { config } => crate::service::daemon::run_daemon(config.as_deref()),
        Command::Sessions { json, control } => control_op(
            control.as_deref(),
            serde_json::json!({"op": "sessions"}),
            |v| {
                if json {
                    println!("{v}");
                } else {
                    print!("{}", sessions_table(&v));
                }
            },
        ),
        Command::Kill { session, control } => control_op(
            control.as_deref(),
            serde_json::json!({"op": "kill", "session": session, "reason": "shieldd kill"}),
            |_| println!("session {session} killed"),
        ),
        Command::Isolate { session, control } => control_op(
            control.as_deref(),
            serde_json::json!({"op": "isolate", "session": session, "reason": "shieldd isolate"}),
            |_| {
                println!("session {session} isolated (frozen, network cut); `shieldd release {session}` or `shieldd kill {session}`")
            },
        ),
        Command::Release { session, control } => control_op(
            control.as_deref(),
            serde_json::json!({"op": "release", "session": session}),
            |_| println!("session {session} released"),
        ),
        Command::CheckPolicy { file } => match Policy::load(&file) {
            Ok(p) => {
                println!(
                    "{}: ok (policy `{}`, {} read, {} write, {} deny paths, {} connect rules, {} tools)",
                    file.display(),
                    if p.name.is_empty() { "(unnamed)" } else { &p.name },
                    p.sandbox.filesystem.read.len(),
                    p.sandbox.filesystem.write.len(),
                    p.sandbox.filesystem.deny.len(),
                    p.sandbox.network.connect.len(),
                    p.tools.allowed_tools.len()
                );
                0
            }
            Err(e) => {
                print_policy_error(&e);
                1
            }
        },
    }
}

/// One request on the control socket; 0 on success, 1 with a message
/// otherwise (no daemon included).
fn control_op(
    control: Option<&std::path::Path>,
    req: serde_json::Value,
    ok: impl FnOnce(serde_json::Value),
) -> i32 {
    use crate::service::control::{control_path, Client};
    let path = control_path(control);
    let r = Client::connect(&path).and_then(|mut c| c.call(req));
    match r {
        Ok(v) => {
            ok(v);
            0
        }
        Err(e) => {
            eprintln!("shieldd: {e}");
            1
        }
    }
}

fn sessions_table(v: &serde_json::Value) -> String {
    let mut out = format!(
        "{:<20} {:>8} {:<9} {:>6} {:>6} {:>7} {:<24} {}\n",
        "SESSION", "PID", "STATE", "VIOL", "SCANS", "STATUS", "POLICY", "COMMAND"
    );
    let empty = Vec::new();
    for s in v.as_array().unwrap_or(&empty) {
        let str_of = |k: &str| s.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let num = |k: &str| s.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let status = s
            .get("exit_status")
            .and_then(|x| x.as_i64())
            .map(|x| x.to_string())
            .unwrap_or_else(|| "-".into());
        let cmd: Vec<&str> = s
            .get("command")
            .and_then(|c| c.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<20} {:>8} {:<9} {:>6} {:>6} {:>7} {:<24} {}\n",
            str_of("id"),
            num("pid"),
            str_of("state"),
            num("violations"),
            num("scans"),
            status,
            str_of("policy_source"),
            cmd.join(" ")
        ));
    }
    out
}

fn print_policy_error(e: &PolicyError) {
    match e {
        PolicyError::Invalid(d) => {
            for d in d {
                eprintln!("{d}");
            }
            eprintln!("shieldd: {} error(s) in policy", d.len());
        }
        PolicyError::Io { .. } => eprintln!("shieldd: {e}"),
    }
}

fn load_policy(path: Option<&PathBuf>) -> Result<(Policy, String), i32> {
    match path {
        None => Ok((Policy::builtin_default(), "<built-in default>".into())),
        Some(p) => match Policy::load(p) {
            // Absolute: the trail and `shieldd sessions` are read from
            // elsewhere, where a relative path names nothing.
            Ok(pol) => Ok((
                pol,
                std::path::absolute(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string(),
            )),
            Err(e) => {
                print_policy_error(&e);
                Err(125)
            }
        },
    }
}

/// Where a trail that is not there may be: the daemon's `audit_dir` can be
/// anywhere, and a standalone session writes only its `--events` file.
fn trail_hint(e: &crate::report::ReportError) -> &'static str {
    match e {
        crate::report::ReportError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            " (hint: give the trail with --file: the daemon writes <audit_dir>/audit.jsonl, `shieldd run` only its --events FILE)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn run_help_names_every_part_allow_degraded_accepts() {
        let mut cmd = Cli::command();
        let run = cmd.find_subcommand_mut("run").expect("run subcommand");
        let help = run.render_long_help().to_string();
        for name in Degrade::NAMES {
            assert!(
                help.contains(name),
                "`{name}` missing from run --help:\n{help}"
            );
        }
    }

    #[test]
    fn a_missing_trail_says_how_to_name_one() {
        let missing = crate::report::report(std::path::Path::new("/nonexistent/audit.jsonl"), "s")
            .expect_err("no file");
        assert!(trail_hint(&missing).contains("--file"));
        let dir = tempfile::tempdir().expect("tmp");
        let empty = dir.path().join("audit.jsonl");
        std::fs::write(&empty, "").expect("write");
        let none = crate::report::report(&empty, "s").expect_err("no session");
        assert_eq!(trail_hint(&none), "", "a trail that exists needs no hint");
    }
}
