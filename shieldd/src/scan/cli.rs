//! `shieldd scan`: text or JSON lines from stdin, verdicts to stdout.

use std::io::{BufRead, Read, Write};

use serde_json::{json, Value};
use shield_client::wire::{Direction, Verdict};

use super::Scanner;
use crate::policy::Policy;

/// Largest input accepted in one piece (whole stdin, or one JSON line).
const MAX_INPUT: usize = 64 << 20;

/// Run the command; returns the exit status (SPEC section 1).
pub fn run_scan(policy: &Policy, direction: Direction, jsonl: bool) -> i32 {
    let scanner = match Scanner::new(&policy.scan, Vec::new()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shieldd: {e}");
            return 2;
        }
    };
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    if !jsonl {
        let mut buf = Vec::new();
        if let Err(e) = stdin
            .lock()
            .take(MAX_INPUT as u64 + 1)
            .read_to_end(&mut buf)
        {
            eprintln!("shieldd: cannot read stdin: {e}");
            return 2;
        }
        if buf.len() > MAX_INPUT {
            eprintln!("shieldd: input larger than {MAX_INPUT} bytes");
            return 2;
        }
        let Ok(text) = String::from_utf8(buf) else {
            eprintln!("shieldd: input is not valid UTF-8");
            return 2;
        };
        let v = scanner.scan(&text, direction);
        let _ = writeln!(out, "{}", to_line(Value::Null, &v, false));
        return i32::from(v.blocked);
    }
    for (n, line) in stdin.lock().split(b'\n').enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("shieldd: cannot read stdin: {e}");
                return 2;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reply = match parse_line(&line) {
            Ok((id, text, dir)) => {
                to_line(id, &scanner.scan(&text, dir.unwrap_or(direction)), true)
            }
            Err(msg) => json!({"id": peek_id(&line), "error": {"code": "bad_request",
                                "message": format!("line {}: {msg}", n + 1)}})
            .to_string(),
        };
        if writeln!(out, "{reply}").is_err() {
            return 2;
        }
    }
    0
}

fn parse_line(line: &[u8]) -> Result<(Value, String, Option<Direction>), String> {
    if line.len() > MAX_INPUT {
        return Err(format!("line longer than {MAX_INPUT} bytes"));
    }
    let s = std::str::from_utf8(line).map_err(|_| "not valid UTF-8".to_string())?;
    let v: Value = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?;
    let text = v
        .get("text")
        .and_then(Value::as_str)
        .ok_or("missing string field `text`")?
        .to_string();
    let dir = match v.get("direction").and_then(Value::as_str) {
        None => None,
        Some("inbound") => Some(Direction::Inbound),
        Some("outbound") => Some(Direction::Outbound),
        Some(other) => return Err(format!("unknown direction `{other}`")),
    };
    Ok((v.get("id").cloned().unwrap_or(Value::Null), text, dir))
}

fn peek_id(line: &[u8]) -> Value {
    serde_json::from_slice::<Value>(line)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

fn to_line(id: Value, v: &Verdict, with_id: bool) -> String {
    let mut obj = serde_json::to_value(v).unwrap_or_else(|_| json!({}));
    if with_id {
        if let Value::Object(m) = &mut obj {
            m.insert("id".into(), id);
        }
    }
    obj.to_string()
}
