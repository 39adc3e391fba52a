//! Quick quality check of the text scanner on the shared evaluation corpus
//! (not a CI test: it prints figures, it does not assert thresholds).
//!
//! ```text
//! cargo run --release -p shieldd --example scan_eval -- [EVAL_DIR] [--misses FILE]
//! ```
//! Prints, per inbound injection/benign file, recall on attack rows and the
//! false-positive rate on benign rows (blocked = any injection finding).
//! `--misses FILE` writes missed attacks and false positives as JSON lines.

use std::io::Write;

use shield_client::wire::{Direction, FindingKind};
use shieldd::policy::ScanPolicy;
use shieldd::scan::Scanner;

const FILES: &[&str] = &[
    "injection_purplellama.jsonl",
    "injection_purplellama_multilingual.jsonl",
    "injection_bipia.jsonl",
    "jailbreak_garak.jsonl",
    "benign_xstest.jsonl",
    "benign_mitre_frr.jsonl",
    "benign_mitre_frr_multilingual.jsonl",
    "benign_fastchat_inbound.jsonl",
    "benign_gsm8k.jsonl",
    "benign_self_instruct.jsonl",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = "/work/shared/eval".to_string();
    let mut misses: Option<std::fs::File> = None;
    let mut i = 0;
    while i < args.len() {
        match args.get(i).map(String::as_str) {
            Some("--misses") => {
                i += 1;
                let path = args.get(i).ok_or("--misses needs a file")?;
                misses = Some(std::fs::File::create(path)?);
            }
            Some(d) => dir = d.to_string(),
            None => {}
        }
        i += 1;
    }
    let scanner = Scanner::new(&ScanPolicy::default(), Vec::new())?;
    println!(
        "{:<42} {:>6} {:>16} {:>6} {:>14} {:>9}",
        "file", "attack", "recall", "benign", "FPR", "ms/row"
    );
    for file in FILES {
        let text = std::fs::read_to_string(format!("{dir}/{file}"))?;
        let (mut att, mut att_hit, mut ben, mut ben_hit) = (0usize, 0usize, 0usize, 0usize);
        let t0 = std::time::Instant::now();
        let mut rows = 0usize;
        for line in text.lines() {
            let row: serde_json::Value = serde_json::from_str(line)?;
            if row["direction"] != "inbound" {
                continue;
            }
            rows += 1;
            let body = row["text"].as_str().unwrap_or("");
            let v = scanner.scan(body, Direction::Inbound);
            let inj: Vec<_> = v
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::Injection)
                .collect();
            let hit = !inj.is_empty();
            let attack = row["label"] == "attack";
            if attack {
                att += 1;
                att_hit += hit as usize;
            } else {
                ben += 1;
                ben_hit += hit as usize;
            }
            if let Some(m) = misses.as_mut() {
                if attack != hit {
                    let why: Vec<String> = inj
                        .iter()
                        .map(|f| {
                            format!(
                                "{} {}: {}",
                                f.ty,
                                f.detail,
                                body.get(f.start..f.end).unwrap_or("")
                            )
                        })
                        .collect();
                    writeln!(
                        m,
                        "{}",
                        serde_json::json!({"file": file, "id": row["id"], "label": row["label"],
                            "types": row["types"], "why": why, "text": body})
                    )?;
                }
            }
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0 / rows.max(1) as f64;
        let pct = |a: usize, b: usize| {
            if b == 0 {
                "-".to_string()
            } else {
                format!("{:.1}% ({a}/{b})", 100.0 * a as f64 / b as f64)
            }
        };
        println!(
            "{:<42} {:>6} {:>16} {:>6} {:>14} {:>9.3}",
            file,
            att,
            pct(att_hit, att),
            ben,
            pct(ben_hit, ben),
            ms
        );
    }
    Ok(())
}
