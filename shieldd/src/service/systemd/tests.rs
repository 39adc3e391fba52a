//! Notifications received on a real datagram socket, the journald check,
//! the unit through `systemd-analyze verify`, the shipped config parsed.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::service::config::DaemonConfig;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A privileged or tool-dependent test that cannot run fails under CI=true.
fn need(tool: &str) -> bool {
    if Path::new(tool).exists() {
        return true;
    }
    crate::testing::cannot_run(
        "systemd test",
        &format!("{tool} is missing (install the Debian package systemd)"),
    )
}

/// Run by `systemd_notifications_reach_the_manager` in a child process,
/// where NOTIFY_SOCKET and WATCHDOG_USEC are set (not in this process:
/// setting variables under other test threads is unsound).
#[test]
#[ignore = "helper, run by systemd_notifications_reach_the_manager"]
fn systemd_notify_helper() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(async {
        notify_status("2 sessions\nFAKE=1");
        notify_ready();
        let wd = spawn_watchdog().expect("watchdog enabled by WATCHDOG_USEC");
        tokio::time::sleep(Duration::from_millis(350)).await;
        wd.abort();
        notify_stopping();
    });
}

#[test]
fn systemd_notifications_reach_the_manager() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--exact",
            "service::systemd::tests::systemd_notify_helper",
            "--ignored",
            "--test-threads=1",
        ])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .output()
        .expect("run helper");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = Vec::new();
    sock.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(buf.get(..n).unwrap_or(&[])).into_owned());
    }
    assert_eq!(
        got.first().map(String::as_str),
        Some("STATUS=2 sessions FAKE=1\n"),
        "{got:?}"
    );
    assert_eq!(got.get(1).map(String::as_str), Some("READY=1\n"), "{got:?}");
    assert_eq!(
        got.last().map(String::as_str),
        Some("STOPPING=1\n"),
        "{got:?}"
    );
    // Every 100 ms (half of 200 ms) for 350 ms: the first tick at once, then 3.
    let pings = got.iter().filter(|m| *m == "WATCHDOG=1\n").count();
    assert!((2..=5).contains(&pings), "{got:?}");
    assert_eq!(got.len(), pings + 3, "{got:?}");
}

#[test]
fn systemd_no_notify_socket_is_a_no_op() {
    // This process has no NOTIFY_SOCKET (cargo test does not set one).
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        notify_ready();
        notify_stopping();
    }
    if std::env::var_os("WATCHDOG_USEC").is_none() {
        assert!(watchdog_period().is_none());
        assert!(spawn_watchdog().is_none());
    }
}

#[test]
fn systemd_journal_stream_matches_only_its_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = std::fs::File::create(dir.path().join("a")).expect("file");
    let g = std::fs::File::create(dir.path().join("b")).expect("file");
    let m = f.metadata().expect("stat");
    let val = format!("{}:{}", m.dev(), m.ino());
    assert!(stream_is(&val, f.as_fd()));
    assert!(!stream_is(&val, g.as_fd()), "another file matched");
    for bad in ["", ":", "x:y", "12", &format!("{}:", m.dev()), "-1:-1"] {
        assert!(!stream_is(bad, f.as_fd()), "{bad:?}");
    }
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    if !need("/usr/bin/systemd-analyze") {
        return;
    }
    let unit = std::fs::read_to_string(format!("{REPO}/packaging/shieldd.service")).expect("unit");
    assert!(
        unit.contains(
            "\nExecStart=/usr/local/bin/shieldd daemon --config /etc/shieldd/config.yaml\n"
        ),
        "xtask install rewrites this line"
    );
    for key in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=",
        "RuntimeDirectory=shieldd",
        "StateDirectory=shieldd",
        "LogsDirectory=shieldd",
        "Restart=on-failure",
        "KillMode=mixed",
        "CapabilityBoundingSet=CAP_BPF",
    ] {
        assert!(unit.contains(&format!("\n{key}")), "{key} missing");
    }
    // The binary must exist for verify; any existing executable does.
    let exe = std::env::current_exe().expect("exe");
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("shieldd.service");
    std::fs::write(
        &copy,
        unit.replace(
            "ExecStart=/usr/local/bin/shieldd",
            &format!("ExecStart={}", exe.display()),
        ),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 on some bad values and only warns: no output at all.
    assert!(out.status.success() && text.trim().is_empty(), "{text}");

    // The check can fail: a misspelt option is reported.
    std::fs::write(
        &copy,
        unit.replace("KillMode=mixed", "KillMode=mixd").replace(
            "ExecStart=/usr/local/bin/shieldd",
            &format!("ExecStart={}", exe.display()),
        ),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze");
    assert!(String::from_utf8_lossy(&out.stderr).contains("kill mode"));
}

#[test]
fn packaging_config_parses_to_the_defaults() {
    let path = format!("{REPO}/packaging/config.yaml");
    let text = std::fs::read_to_string(&path).expect("config.yaml");
    let c = DaemonConfig::parse(&text, Path::new(&path)).expect("parses");
    // The shipped file spells out the defaults: the two cannot drift apart.
    assert_eq!(c, DaemonConfig::default());
    // Every top-level and nested key is there (and so documented).
    for key in [
        "audit_dir:",
        "control_socket:",
        "session_socket_dir:",
        "admin_group:",
        "default_policy:",
        "keep_ended:",
        "dbus:",
        "enabled:",
        "bus:",
        "metrics:",
        "listen:",
        "alerts:",
        "blocked_inputs_session:",
        "blocked_inputs_host:",
        "tool_denials:",
        "sensitive_output:",
        "tool_rate:",
        "command:",
        "cooldown:",
    ] {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing"));
        let above = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        assert!(
            above.trim_start().starts_with('#'),
            "{key} has no comment above it"
        );
    }
}
