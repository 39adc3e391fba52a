//! Reading the audit trail: `shieldd events` and `shieldd report`.
//!
//! A report is a session's blast radius: every program, file and address it
//! touched with counts, its violations and containment actions in order,
//! the credentials to rotate, and whether the hash chain is intact.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::audit;

/// Default audit trail of the host service.
pub const DEFAULT_TRAIL: &str = "/var/log/shieldd/audit.jsonl";

/// Errors reading the trail.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// No record of that session.
    #[error("no record of session `{0}` in {1}")]
    NoSession(String, String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |e| ReportError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Print the records of `session` (all when `None`) as JSON lines; with
/// `follow`, keep printing what is appended (until the reader goes away).
/// Lines that are not JSON are counted and reported on stderr, not dropped silently.
pub fn events(
    path: &Path,
    session: Option<&str>,
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), ReportError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut r = BufReader::new(f);
    let mut line = String::new();
    let mut bad = 0u64;
    loop {
        line.clear();
        let n = r.read_line(&mut line).map_err(io(path))?;
        if n == 0 {
            if !follow {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line.trim_end()) else {
            if !line.trim().is_empty() {
                bad += 1;
            }
            continue;
        };
        if session.is_some_and(|s| v.get("session").and_then(Value::as_str) != Some(s)) {
            continue;
        }
        if writeln!(out, "{}", line.trim_end()).is_err() {
            break;
        }
        if follow {
            let _ = out.flush();
        }
    }
    if bad > 0 {
        eprintln!(
            "shieldd: {bad} line(s) of {} are not JSON records",
            path.display()
        );
    }
    Ok(())
}

/// What one run of a session left in the trail.
#[derive(Default)]
struct Run {
    programs: BTreeMap<String, u64>,
    files: BTreeMap<String, u64>,
    addresses: BTreeMap<String, u64>,
    tools: BTreeMap<String, u64>,
    scans: BTreeMap<String, u64>,
    violations: Vec<Value>,
    actions: Vec<Value>,
    start: Value,
    end: Value,
    pids: std::collections::BTreeSet<u64>,
    lost: u64,
    records: u64,
}

/// Build the report of `session` from the trail at `path`.
///
/// A session id can be used again once its session has ended (a fixed
/// `--session` in a script, a daemon's id after `keep_ended`): each
/// `session_start` begins a new run, the report is of the last one, and
/// `earlier_runs` says how many came before it, so two agents' records are
/// never merged into one blast radius.
pub fn report(path: &Path, session: &str) -> Result<Value, ReportError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut run = Run::default();
    let mut earlier_runs = 0u64;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io(path))?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v.get("session").and_then(Value::as_str) != Some(session) {
            continue;
        }
        let event = v.get("event").and_then(Value::as_str).unwrap_or("");
        if event == "session_start" && run.records > 0 {
            earlier_runs += 1;
            run = Run::default();
        }
        run.records += 1;
        if let Some(p) = v.get("pid").and_then(Value::as_u64) {
            run.pids.insert(p);
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        let refused = v.get("denied").and_then(Value::as_bool) == Some(true)
            || v.get("violation").and_then(Value::as_bool) == Some(true);
        match event {
            "session_start" => run.start = v.clone(),
            "session_end" => run.end = v.clone(),
            "exec" => *run.programs.entry(s("exe")).or_default() += 1,
            "open" => {
                let key = if refused {
                    format!("{} (denied path)", s("path"))
                } else {
                    s("path")
                };
                *run.files.entry(key).or_default() += 1
            }
            "connect" | "bind" => {
                let key = format!(
                    "{} {}:{}/{}{}",
                    s("op"),
                    s("addr"),
                    v.get("port").and_then(Value::as_u64).unwrap_or(0),
                    s("protocol"),
                    if refused { " (refused)" } else { "" }
                );
                *run.addresses.entry(key).or_default() += 1;
            }
            "tool_call" => {
                *run.tools
                    .entry(format!("{} -> {}", s("tool"), s("action")))
                    .or_default() += 1
            }
            "scan" => {
                *run.scans
                    .entry(format!("{} -> {}", s("direction"), s("action")))
                    .or_default() += 1
            }
            "violation" => run.violations.push(json!({
                "ts": v.get("ts"), "pid": v.get("pid"), "rule": v.get("rule"),
                "action": v.get("action"), "detail": v.get("detail"),
            })),
            "kill" | "isolate" | "release" => run.actions.push(json!({
                "ts": v.get("ts"), "event": v.get("event"), "reason": v.get("reason"),
            })),
            "lost_events" => run.lost += v.get("count").and_then(Value::as_u64).unwrap_or(0),
            _ => {}
        }
    }
    if run.records == 0 {
        return Err(ReportError::NoSession(
            session.to_string(),
            path.display().to_string(),
        ));
    }
    let chain = match audit::verify(path) {
        Ok(n) => json!({"intact": true, "records": n}),
        Err(e) => json!({"intact": false, "error": e.to_string()}),
    };
    Ok(json!({
        "session": session,
        "policy": run.start.get("policy"),
        "command": run.start.get("argv"),
        "started": run.start.get("ts"),
        "ended": run.end.get("ts"),
        "exit_status": run.end.get("exit_status"),
        "processes": run.pids.len(),
        "programs": run.programs,
        "files": run.files,
        "network": run.addresses,
        "tool_calls": run.tools,
        "scans": run.scans,
        "violations": run.violations,
        "containment": run.actions,
        "credentials_to_rotate": run.start.get("credentials").cloned().unwrap_or(json!([])),
        "lost_events": run.lost,
        "records": run.records,
        "earlier_runs": earlier_runs,
        "chain": chain,
    }))
}

/// The report as text for a person.
pub fn render(r: &Value) -> String {
    let mut s = String::new();
    let str_of = |v: &Value| match v {
        Value::String(x) => x.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    s.push_str(&format!(
        "session {}  policy {}  exit {}\n  command: {}\n  from {} to {}\n  {} processes, {} records, lost events: {}\n",
        str_of(&r["session"]),
        str_of(&r["policy"]),
        str_of(&r["exit_status"]),
        str_of(&r["command"]),
        str_of(&r["started"]),
        str_of(&r["ended"]),
        r["processes"],
        r["records"],
        r["lost_events"],
    ));
    if let Some(n) = r["earlier_runs"].as_u64().filter(|n| *n > 0) {
        s.push_str(&format!(
            "  this is the last run of this id; {n} earlier run(s) in the trail are not counted here\n"
        ));
    }
    s.push_str(&format!(
        "  audit chain: {}\n",
        if r["chain"]["intact"] == json!(true) {
            "intact".to_string()
        } else {
            format!("BROKEN ({})", str_of(&r["chain"]["error"]))
        }
    ));
    for (title, key) in [("violations", "violations"), ("containment", "containment")] {
        let items = r[key].as_array().cloned().unwrap_or_default();
        s.push_str(&format!("{title} ({}):\n", items.len()));
        for v in items {
            s.push_str(&format!(
                "  {} {} {} {}\n",
                str_of(&v["ts"]),
                str_of(v.get("rule").unwrap_or(&v["event"])),
                str_of(v.get("action").unwrap_or(&Value::Null)),
                str_of(v.get("detail").unwrap_or(&v["reason"])),
            ));
        }
    }
    for (title, key) in [
        ("programs executed", "programs"),
        ("files opened", "files"),
        ("network", "network"),
        ("tool calls", "tool_calls"),
        ("scans", "scans"),
    ] {
        let m = r[key].as_object().cloned().unwrap_or_default();
        s.push_str(&format!("{title} ({}):\n", m.len()));
        for (k, n) in m {
            s.push_str(&format!("  {n:>6}  {k}\n"));
        }
    }
    let creds = r["credentials_to_rotate"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    s.push_str(&format!(
        "credentials to rotate: {}\n",
        if creds.is_empty() {
            "none listed by the policy".into()
        } else {
            creds.iter().map(str_of).collect::<Vec<_>>().join(", ")
        }
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;

    /// Two runs under one id (and another session between them) in one
    /// chained trail, as a script with a fixed `--session` leaves it.
    fn trail(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("audit.jsonl");
        let mut a = AuditLog::open(&path, "job").expect("open");
        let r = |a: &mut AuditLog, s: &str, e: &str, f: Value| {
            a.record_for(s, e, f, false).expect("record")
        };
        r(
            &mut a,
            "job",
            "session_start",
            json!({"pid": 10, "argv": ["old"], "policy": "p", "credentials": ["OLD_KEY"]}),
        );
        r(
            &mut a,
            "job",
            "exec",
            json!({"pid": 10, "exe": "/usr/bin/curl"}),
        );
        r(
            &mut a,
            "job",
            "violation",
            json!({"pid": 10, "rule": "network", "action": "kill", "detail": "old"}),
        );
        r(&mut a, "job", "session_end", json!({"exit_status": 137}));
        r(
            &mut a,
            "other",
            "session_start",
            json!({"pid": 30, "argv": ["x"]}),
        );
        r(
            &mut a,
            "other",
            "exec",
            json!({"pid": 30, "exe": "/usr/bin/nc"}),
        );
        r(
            &mut a,
            "job",
            "session_start",
            json!({"pid": 20, "argv": ["new"], "policy": "p", "credentials": []}),
        );
        r(
            &mut a,
            "job",
            "open",
            json!({"pid": 20, "path": "/etc/shadow", "violation": true}),
        );
        r(
            &mut a,
            "job",
            "open",
            json!({"pid": 20, "path": "/etc/hostname"}),
        );
        r(&mut a, "job", "session_end", json!({"exit_status": 0}));
        a.flush().expect("flush");
        path
    }

    #[test]
    fn a_reused_session_id_reports_its_last_run_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = trail(dir.path());
        let r = report(&path, "job").expect("report");
        assert_eq!(r["command"], json!(["new"]));
        assert_eq!(r["exit_status"], json!(0));
        assert_eq!(r["processes"], json!(1));
        assert_eq!(r["records"], json!(4));
        assert_eq!(r["earlier_runs"], json!(1));
        assert_eq!(r["programs"], json!({}), "the first run's curl leaked in");
        assert_eq!(
            r["violations"],
            json!([]),
            "the first run's violation leaked in"
        );
        assert_eq!(r["credentials_to_rotate"], json!([]));
        assert_eq!(r["chain"]["intact"], json!(true));
        let text = render(&r);
        assert!(text.contains("1 earlier run(s)"), "{text}");
        // A session used once says nothing about earlier runs.
        let o = report(&path, "other").expect("report");
        assert_eq!(o["earlier_runs"], json!(0));
        assert!(!render(&o).contains("earlier run"));
    }

    #[test]
    fn denied_opens_are_marked_in_the_file_list() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = report(&trail(dir.path()), "job").expect("report");
        assert_eq!(r["files"]["/etc/shadow (denied path)"], json!(1));
        assert_eq!(
            r["files"]["/etc/hostname"],
            json!(1),
            "an allowed open is not marked"
        );
        assert!(r["files"].get("/etc/shadow").is_none());
    }
}
