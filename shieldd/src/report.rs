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

/// Build the report of `session` from the trail at `path`.
pub fn report(path: &Path, session: &str) -> Result<Value, ReportError> {
    let f = std::fs::File::open(path).map_err(io(path))?;
    let mut programs: BTreeMap<String, u64> = BTreeMap::new();
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    let mut addresses: BTreeMap<String, u64> = BTreeMap::new();
    let mut tools: BTreeMap<String, u64> = BTreeMap::new();
    let mut scans: BTreeMap<String, u64> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut actions = Vec::new();
    let mut start = Value::Null;
    let mut end = Value::Null;
    let mut pids = std::collections::BTreeSet::new();
    let mut lost = 0u64;
    let mut records = 0u64;
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io(path))?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v.get("session").and_then(Value::as_str) != Some(session) {
            continue;
        }
        records += 1;
        if let Some(p) = v.get("pid").and_then(Value::as_u64) {
            pids.insert(p);
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        match v.get("event").and_then(Value::as_str).unwrap_or("") {
            "session_start" => start = v.clone(),
            "session_end" => end = v.clone(),
            "exec" => *programs.entry(s("exe")).or_default() += 1,
            "open" => *files.entry(s("path")).or_default() += 1,
            "connect" | "bind" => {
                let key = format!(
                    "{} {}:{}/{}{}",
                    s("op"),
                    s("addr"),
                    v.get("port").and_then(Value::as_u64).unwrap_or(0),
                    s("protocol"),
                    if v.get("denied").and_then(Value::as_bool) == Some(true) {
                        " (refused)"
                    } else {
                        ""
                    }
                );
                *addresses.entry(key).or_default() += 1;
            }
            "tool_call" => {
                *tools
                    .entry(format!("{} -> {}", s("tool"), s("action")))
                    .or_default() += 1
            }
            "scan" => {
                *scans
                    .entry(format!("{} -> {}", s("direction"), s("action")))
                    .or_default() += 1
            }
            "violation" => violations.push(json!({
                "ts": v.get("ts"), "pid": v.get("pid"), "rule": v.get("rule"),
                "action": v.get("action"), "detail": v.get("detail"),
            })),
            "kill" | "isolate" | "release" => actions.push(json!({
                "ts": v.get("ts"), "event": v.get("event"), "reason": v.get("reason"),
            })),
            "lost_events" => lost += v.get("count").and_then(Value::as_u64).unwrap_or(0),
            _ => {}
        }
    }
    if records == 0 {
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
        "policy": start.get("policy"),
        "command": start.get("argv"),
        "started": start.get("ts"),
        "ended": end.get("ts"),
        "exit_status": end.get("exit_status"),
        "processes": pids.len(),
        "programs": programs,
        "files": files,
        "network": addresses,
        "tool_calls": tools,
        "scans": scans,
        "violations": violations,
        "containment": actions,
        "credentials_to_rotate": start.get("credentials").cloned().unwrap_or(json!([])),
        "lost_events": lost,
        "records": records,
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
