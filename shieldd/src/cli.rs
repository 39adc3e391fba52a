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
        /// lacks them: landlock, landlock-net, cgroup-limits, net-addresses.
        #[arg(long, value_delimiter = ',')]
        allow_degraded: Vec<String>,
        /// Seconds the agent has to exit after a forwarded SIGTERM/SIGINT.
        #[arg(long, default_value_t = 5.0)]
        grace: f64,
        /// The agent command and its arguments.
        #[arg(last = true, required = true)]
        cmd: Vec<OsString>,
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
            cmd,
        } => {
            let (policy, source) = match load_policy(policy.as_ref()) {
                Ok(p) => p,
                Err(code) => return code,
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
                },
                events,
                socket,
                grace: Duration::from_secs_f64(grace.min(86_400.0)),
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
                    eprintln!("shieldd: {e}");
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
                eprintln!("shieldd: {e}");
                1
            }
        },
        Command::CheckPolicy { file } => match Policy::load(&file) {
            Ok(p) => {
                println!(
                    "{}: ok (policy `{}`, {} read, {} write, {} deny paths, {} connect rules, {} tools)",
                    file.display(),
                    p.name,
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
            Ok(pol) => Ok((pol, p.display().to_string())),
            Err(e) => {
                print_policy_error(&e);
                Err(125)
            }
        },
    }
}
