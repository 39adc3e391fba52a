//! The eval corpus for the scanner benchmarks and measuring examples:
//! every `text` of every JSONL file of `dir`, files in name order.

use std::path::Path;

/// Every text of the corpus.
pub fn corpus(dir: &Path) -> Vec<String> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut texts = Vec::new();
    for f in files {
        let Ok(data) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in data.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
                    texts.push(t.to_string());
                }
            }
        }
    }
    texts
}

/// This thread's CPU time in seconds (0 if the clock cannot be read): on a
/// shared machine it moves far less than wall time.
#[allow(dead_code)] // not every includer measures CPU time
pub fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
