//! Project tasks: `cargo xtask build | demo | test | bench | install`.
//!
//! Each task installs the distribution packages it needs (as root, with
//! apt-get) so the README's commands work on a fresh machine.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

mod bench;
mod install;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The real interpreter; `python3` may be a pyenv shim outside any policy.
pub const PY: &str = "/usr/bin/python3.11";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("build") => build().map(|_| ()),
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("deps") => ensure_deps(BUILD_DEPS)
            .and_then(|_| ensure_deps(&["bubblewrap"]))
            .and_then(|_| ensure_deps(TEST_DEPS)),
        Some("install") => install::run(&args[1..]),
        Some("train") => eval_tool("train", &args[1..]),
        Some("eval") => eval_tool("eval", &args[1..]),
        _ => {
            eprintln!("usage: cargo xtask build|demo|test|bench|install|train|eval|deps");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

/// Debian packages that provide each command the tasks use (a package
/// without a command is checked with dpkg).
const PACKAGES: &[(&str, &str)] = &[
    ("bubblewrap", "bwrap"),
    ("clang-19", "clang-19"),
    ("bpftool", "bpftool"),
    ("dbus", "dbus-daemon"),
    ("systemd", "systemd-analyze"),
];

/// What building shieldd needs: its build.rs compiles the eBPF programs
/// with clang-19 against libbpf's headers and a vmlinux.h from bpftool.
pub const BUILD_DEPS: &[&str] = &["clang-19", "libbpf-dev", "bpftool"];

/// What the daemon-mode tests need: a private `dbus-daemon`, `busctl` and
/// `systemd-analyze verify` (setpriv comes with util-linux, always there).
pub const TEST_DEPS: &[&str] = &["dbus", "systemd"];

/// Install missing distribution packages with apt-get (root only).
pub fn ensure_deps(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| {
            let cmd = PACKAGES.iter().find(|(n, _)| n == p).map(|(_, c)| *c);
            match cmd {
                Some(c) => !on_path(c),
                None => !Command::new("dpkg")
                    .args(["-s", p])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success()),
            }
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing packages {}: install them with `sudo apt-get install {}`",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {} with apt-get", missing.join(" "));
    let lists_fresh = Path::new("/var/lib/apt/lists")
        .read_dir()
        .map(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with("Packages")))
        })
        .unwrap_or(false);
    if !lists_fresh {
        sh(Command::new("apt-get").args(["update", "-q"]))?;
    }
    let mut c = Command::new("apt-get");
    c.args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    if sh(&mut c).is_err() {
        sh(Command::new("apt-get").args(["update", "-q"]))?;
        sh(&mut c)?;
    }
    Ok(())
}

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

fn sh(c: &mut Command) -> Result<()> {
    let st = c.status().with_context(|| format!("cannot run {c:?}"))?;
    if !st.success() {
        bail!("{c:?} failed: {st}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Build everything in release mode; returns the shieldd binary.
fn build() -> Result<PathBuf> {
    ensure_deps(BUILD_DEPS)?;
    sh(cargo().args(["build", "--release", "--workspace"]))?;
    Ok(root().join("target/release/shieldd"))
}

/// The main job: a demo agent under the default policy.
fn demo() -> Result<()> {
    let shieldd = build()?;
    let dir = std::env::temp_dir().join(format!("shieldd-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let home = dir.join("home");
    let work = dir.join("work");
    std::fs::create_dir_all(home.join(".ssh"))?;
    std::fs::create_dir_all(&work)?;
    let secret = home.join(".ssh/id_ed25519");
    std::fs::write(&secret, "-----BEGIN OPENSSH PRIVATE KEY----- demo canary")?;
    let events = dir.join("events.jsonl");
    // The agent's code lives in its working directory, as a deployed agent's would.
    std::fs::copy(
        root().join("examples/demo_agent.py"),
        work.join("demo_agent.py"),
    )?;

    // A listener standing in for the attacker's server.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::channel::<usize>();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = Vec::new();
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.read_to_end(&mut buf);
            let _ = tx.send(buf.len());
        }
    });

    println!("== shieldd demo: an agent under the built-in default policy ==");
    println!(
        "$ cd {} && HOME={} shieldd run --events {} -- {PY} demo_agent.py --port {port} --secret {}",
        work.display(),
        home.display(),
        events.display(),
        secret.display()
    );
    let t0 = Instant::now();
    let status = Command::new(&shieldd)
        .args(["run", "--events"])
        .arg(&events)
        .args(["--", PY, "demo_agent.py"])
        .args(["--port", &port.to_string(), "--secret"])
        .arg(&secret)
        .current_dir(&work)
        .env("HOME", &home)
        .status()
        .context("running shieldd")?;
    let took = t0.elapsed();
    let received: usize =
        rx.try_iter().sum::<usize>() + rx.recv_timeout(Duration::from_millis(200)).unwrap_or(0);
    println!("== what shieldd did ==");
    println!(
        "agent exit status: {} (after {:.0} ms)",
        status.code().unwrap_or(-1),
        took.as_secs_f64() * 1e3
    );
    println!("attacker's listener on 127.0.0.1:{port} received {received} bytes");
    println!(
        "report.txt written by the agent: {}",
        std::fs::read_to_string(work.join("report.txt")).unwrap_or_else(|_| "(missing)".into())
    );
    let text = std::fs::read_to_string(&events).unwrap_or_default();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut shown = Vec::new();
    for l in text.lines() {
        let name = l
            .split("\"event\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?")
            .to_string();
        *counts.entry(name.clone()).or_default() += 1;
        if !matches!(name.as_str(), "open" | "exec" | "fork" | "exit")
            || l.contains("\"violation\":true")
        {
            shown.push(truncate(l, 200));
        }
    }
    println!(
        "events file {} ({} records, hash-chained): {:?}",
        events.display(),
        text.lines().count(),
        counts
    );
    println!("the records that matter (every open/exec/fork/exit is in the file too):");
    for l in shown {
        println!("  {l}");
    }
    // The default policy answers a network violation by killing the tree
    // (SIGKILL: 137); the refused file reads only fail (response `deny`).
    let ok = status.code() == Some(137) && received == 0 && work.join("report.txt").exists();
    let _ = std::fs::remove_dir_all(&dir);
    if !ok {
        bail!("demo failed: the agent got through or did not finish");
    }
    println!("demo ok: the allowed work was done; the key and /etc/shadow reads were refused (deny) and the exfiltration attempt killed the agent (kill), with nothing received");
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Lint and run every test (the README's test command; CI runs it).
fn test(extra: &[String]) -> Result<()> {
    ensure_deps(BUILD_DEPS)?;
    ensure_deps(TEST_DEPS)?;
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    sh(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Echo cargo's output and total it, so the run closes on one line that
    // says how many tests ran (the doc-test runs print "0 passed" last).
    let mut child = cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let num = |key: &str| {
                    rest.split(';')
                        .find_map(|p| {
                            p.trim()
                                .strip_suffix(key)
                                .and_then(|n| n.trim().rsplit(' ').next()?.parse::<u64>().ok())
                        })
                        .unwrap_or(0)
                };
                passed += num(" passed");
                failed += num(" failed");
                ignored += num(" ignored");
            }
        }
    }
    let st = child.wait()?;
    // The Python client's tests, against the shieldd binary just built.
    let py = Command::new("bash")
        .arg(root().join("shield-client/python/run_tests.sh"))
        .current_dir(root())
        .env("SHIELDD_BIN", root().join("target/debug/shieldd"))
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run the Python tests")?;
    let out = py.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    // pytest's summary: "45 passed, 1 skipped in 12.3s" (failed/error when any).
    for line in text
        .lines()
        .filter(|l| l.contains(" passed") || l.contains(" failed") || l.contains(" error"))
    {
        for part in line.trim_matches(|c| c == '=' || c == ' ').split(", ") {
            let mut it = part.split_whitespace();
            if let (Some(n), Some(what)) =
                (it.next().and_then(|n| n.parse::<u64>().ok()), it.next())
            {
                match what {
                    "passed" => passed += n,
                    "failed" | "error" | "errors" => failed += n,
                    "skipped" => ignored += n,
                    _ => {}
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed, {ignored} skipped");
    if !st.success() || failed > 0 || !out.status.success() {
        bail!("tests failed");
    }
    Ok(())
}

/// `train` and `eval` live in the shieldd-eval crate (it links shieldd).
pub fn eval_tool(cmd: &str, extra: &[String]) -> Result<()> {
    ensure_deps(BUILD_DEPS)?;
    sh(cargo()
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "shieldd-eval",
            "--",
            cmd,
        ])
        .args(extra))
}
