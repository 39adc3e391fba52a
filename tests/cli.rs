//! The CLI's promises that need no privilege: `check-policy` messages and
//! exit codes.

mod common;

use std::process::Command;

use common::*;

#[test]
fn check_policy_reports_every_error_with_place_and_hint() {
    let d = TempDir::new("cli");
    let bad = d.write(
        "bad.yaml",
        "version: 1\nsandbox:\n  filesystem:\n    read: [usr/lib, /etc]\n    wirte: [/tmp]\n  network:\n    connect:\n      - { cidr: 10.0.0.0/33, port: 80 }\n      - { host: \"bad host\", port: 99999 }\n  exec:\n    allow: ['/usr/bin/[abc']\nresponse:\n  default: explode\n",
    );
    let o = Command::new(shieldd())
        .arg("check-policy")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let f = bad.display().to_string();
    for want in [
        format!("{f}:4:12: error: relative path `usr/lib` in `filesystem.read` (hint: write an absolute path"),
        format!("{f}:5:5: error: unknown key `wirte` in `sandbox.filesystem` (hint: did you mean `write`?)"),
        format!("{f}:8:17: error: bad CIDR `10.0.0.0/33`"),
        format!("{f}:9:17: error: bad host name `bad host`"),
        format!("{f}:9:35: error: `port` is larger than 65535"),
        format!("{f}:11:13: error: bad glob `/usr/bin/[abc`"),
        format!("{f}:13:12: error: unknown action `explode` in `response.default`"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("7 error(s)"), "{err}");
}

#[test]
fn shipped_policies_check_ok() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    for name in [
        "default.yaml",
        "support-agent.yaml",
        "coding-agent.yaml",
        "research-agent.yaml",
    ] {
        let o = Command::new(shieldd())
            .arg("check-policy")
            .arg(dir.join(name))
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(stdout(&o).contains(": ok (policy"), "{}", stdout(&o));
    }
    let o = Command::new(shieldd())
        .args(["check-policy", "/nonexistent/p.yaml"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/p.yaml: cannot read policy"),
        "{}",
        stderr(&o)
    );
}
