//! The audit trail of SPEC section 6: JSON lines, append-only, each record
//! carrying the hash of the previous one, fsync'd before a violation is
//! reported as handled.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Errors writing or verifying the trail.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// File I/O.
    #[error("audit file {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The chain is broken at a line.
    #[error("audit chain broken at line {line}: {why}")]
    Broken {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// Hash of the "previous record" of an empty trail.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An open audit file.
#[derive(Debug)]
pub struct AuditLog {
    file: BufWriter<File>,
    path: String,
    prev: String,
    session: String,
}

fn hash_line(line: &str) -> String {
    let d = Sha256::digest(line.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3339 UTC timestamp with microseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

impl AuditLog {
    /// Open (append) `path` for `session`, continuing the chain of what is there.
    pub fn open(path: &Path, session: &str) -> Result<AuditLog, AuditError> {
        let ps = path.display().to_string();
        let io = |e| AuditError::Io {
            path: ps.clone(),
            source: e,
        };
        let prev = match File::open(path) {
            Ok(f) => {
                let mut last = None;
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(io)?;
                    if !line.trim().is_empty() {
                        last = Some(line);
                    }
                }
                last.map(|l| hash_line(&l))
                    .unwrap_or_else(|| GENESIS.into())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => GENESIS.into(),
            Err(e) => return Err(io(e)),
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        Ok(AuditLog {
            // Records are buffered (an event storm costs a write per 64 KiB,
            // not per record) and flushed by `flush`, by every record that
            // asks for `sync`, and on drop.
            file: BufWriter::with_capacity(64 * 1024, file),
            path: ps,
            prev,
            session: session.to_string(),
        })
    }

    /// Append one record: `ts`, `session`, `event`, the given fields, `prev`.
    /// `sync` fsyncs before returning (violations, session end).
    pub fn record(&mut self, event: &str, fields: Value, sync: bool) -> Result<(), AuditError> {
        let session = self.session.clone();
        self.record_for(&session, event, fields, sync)
    }

    /// [`AuditLog::record`] for another session: the daemon keeps one
    /// trail, one chain, for all of its sessions.
    pub fn record_for(
        &mut self,
        session: &str,
        event: &str,
        fields: Value,
        sync: bool,
    ) -> Result<(), AuditError> {
        let mut m = Map::new();
        m.insert("ts".into(), Value::String(now_rfc3339()));
        m.insert("session".into(), Value::String(session.to_string()));
        m.insert("event".into(), Value::String(event.into()));
        if let Value::Object(f) = fields {
            for (k, v) in f {
                m.insert(k, v);
            }
        }
        m.insert("prev".into(), Value::String(self.prev.clone()));
        let line = Value::Object(m).to_string();
        let io = |e| AuditError::Io {
            path: self.path.clone(),
            source: e,
        };
        self.file
            .write_all(format!("{line}\n").as_bytes())
            .map_err(io)?;
        if sync {
            self.file.flush().map_err(io)?;
            self.file.get_ref().sync_data().map_err(io)?;
        }
        self.prev = hash_line(&line);
        Ok(())
    }

    /// Write out buffered records and fsync them.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        self.flush()?;
        self.file.get_ref().sync_data().map_err(|e| AuditError::Io {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Write out buffered records (not fsync'd).
    pub fn flush(&mut self) -> Result<(), AuditError> {
        self.file.flush().map_err(|e| AuditError::Io {
            path: self.path.clone(),
            source: e,
        })
    }
}

/// Verify the hash chain of a whole file; returns the number of records.
pub fn verify(path: &Path) -> Result<usize, AuditError> {
    let f = File::open(path).map_err(|e| AuditError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| AuditError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| AuditError::Broken {
            line: i + 1,
            why: format!("not JSON: {e}"),
        })?;
        let got = v.get("prev").and_then(Value::as_str).unwrap_or("");
        if got != prev {
            return Err(AuditError::Broken {
                line: i + 1,
                why: "prev does not match the hash of the record before".into(),
            });
        }
        prev = hash_line(&line);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let p = std::env::temp_dir().join(format!("shieldd-audit-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let mut a = AuditLog::open(&p, "s1").unwrap();
        a.record("session_start", json!({"pid": 1}), false).unwrap();
        a.record("exit", json!({"pid": 1}), true).unwrap();
        drop(a);
        // Reopening continues the chain.
        let mut a = AuditLog::open(&p, "s1").unwrap();
        a.record("session_end", json!({"exit_status": 0}), true)
            .unwrap();
        assert_eq!(verify(&p).unwrap(), 3);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replacen("\"pid\":1", "\"pid\":2", 1)).unwrap();
        assert!(matches!(
            verify(&p),
            Err(AuditError::Broken { line: 2, .. })
        ));
        std::fs::remove_file(&p).unwrap();
    }
}
