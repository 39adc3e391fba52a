//! What the learned layer adds to the rules, per inbound row of the eval
//! corpus: prints `file\tid\tlabel\trule_hit\tlearned_score` as TSV.
//!
//! ```text
//! cargo run --release -p shieldd --example learned_contrib -- [EVAL_DIR] [--skip FILE]...
//! ```
//! `--skip` leaves a file out entirely (use it for benign_self_instruct when
//! working on the model: its licence forbids tuning on it).

use shield_client::wire::{Direction, FindingKind};
use shieldd::policy::ScanPolicy;
use shieldd::scan::{learned, Scanner};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = "/work/shared/eval".to_string();
    let mut skip: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--skip" {
            skip.push(args.next().ok_or("--skip needs a file")?);
        } else {
            dir = a;
        }
    }
    // Rules only: the learned layer is switched off here and scored apart.
    let scanner = Scanner::new(&ScanPolicy::default(), Vec::new())?.with_learned_threshold(2.0);
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".jsonl") && !skip.contains(f))
        .collect();
    files.sort();
    println!("file\tid\tlabel\trule_hit\tlearned");
    for file in files {
        let text = std::fs::read_to_string(format!("{dir}/{file}"))?;
        for line in text.lines() {
            let row: serde_json::Value = serde_json::from_str(line)?;
            if row["direction"] != "inbound" {
                continue;
            }
            let body = row["text"].as_str().unwrap_or("");
            let rule = scanner
                .findings(body, Direction::Inbound)
                .iter()
                .any(|f| f.kind == FindingKind::Injection);
            println!(
                "{}\t{}\t{}\t{}\t{:.5}",
                file.trim_end_matches(".jsonl"),
                row["id"].as_str().unwrap_or(""),
                row["label"].as_str().unwrap_or(""),
                u8::from(rule),
                learned::score(body)
            );
        }
    }
    Ok(())
}
