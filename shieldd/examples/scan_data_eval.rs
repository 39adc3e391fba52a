//! Quality report for the data detectors (PII, secrets, exfiltration) on the
//! shared evaluation corpus. Prints figures; asserts nothing.
//!
//! ```text
//! cargo run --release -p shieldd --example scan_data_eval -- [EVAL_DIR] [FILE.jsonl...] [--show N]
//! ```
//!
//! A row counts as flagged when the detectors named in its line find
//! anything. PII F1 is span-level on the validated types: a predicted span
//! is a true positive when it overlaps a gold span of the same type.
use std::collections::BTreeMap;
use std::path::PathBuf;

use shield_client::wire::Finding;
use shieldd::scan::{exfil, pii, secrets};

const FILES: [&str; 5] = [
    "pii_presidio.jsonl",
    "secrets_gitleaks.jsonl",
    "secrets_detect_secrets.jsonl",
    "benign_fastchat_outbound.jsonl",
    "benign_gsm8k.jsonl",
];

/// Presidio entity -> shieldd PII type, for the types shieldd validates.
const PII_TYPES: [(&str, &str); 6] = [
    ("CREDIT_CARD", "credit_card"),
    ("US_SSN", "ssn"),
    ("EMAIL_ADDRESS", "email"),
    ("PHONE_NUMBER", "phone"),
    ("IBAN_CODE", "iban"),
    ("IP_ADDRESS", "ip_address"),
];

struct Row {
    id: String,
    text: String,
    attack: bool,
    kind_set: bool,
    spans: Vec<(usize, usize, String)>,
}

fn load(path: &PathBuf) -> Vec<Row> {
    let Ok(data) = std::fs::read_to_string(path) else {
        eprintln!("cannot read {}", path.display());
        return Vec::new();
    };
    data.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["direction"] == "outbound")
        .map(|v| Row {
            id: v["id"].as_str().unwrap_or("").to_string(),
            text: v["text"].as_str().unwrap_or("").to_string(),
            attack: v["label"] == "attack",
            kind_set: !v["kind"].is_null(),
            spans: v["spans"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| {
                            Some((
                                usize::try_from(s[0].as_u64()?).ok()?,
                                usize::try_from(s[1].as_u64()?).ok()?,
                                s[2].as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".to_string()
    } else {
        format!("{:.1}% ({a}/{b})", 100.0 * a as f64 / b as f64)
    }
}

#[derive(Default)]
struct Prf {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Prf {
    fn line(&self) -> String {
        let p = self.tp as f64 / (self.tp + self.fp).max(1) as f64;
        let r = self.tp as f64 / (self.tp + self.fn_).max(1) as f64;
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        format!(
            "P {:.3} R {:.3} F1 {:.3} (tp {} fp {} fn {})",
            p, r, f1, self.tp, self.fp, self.fn_
        )
    }
}

fn main() {
    let mut dir = PathBuf::from("/work/shared/eval");
    let mut show = 0usize;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--show" {
            show = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
        } else if a.ends_with(".jsonl") {
            only.push(a);
        } else {
            dir = PathBuf::from(a);
        }
    }
    let allowed: Vec<String> = Vec::new();
    for file in FILES {
        if !only.is_empty() && !only.iter().any(|o| o == file) {
            continue;
        }
        let rows = load(&dir.join(file));
        let started = std::time::Instant::now();
        // (pii, secrets, exfil) findings per row.
        let results: Vec<[Vec<Finding>; 3]> = rows
            .iter()
            .map(|r| {
                let mut p = Vec::new();
                let mut s = Vec::new();
                let mut e = Vec::new();
                pii::detect(&r.text, &mut p);
                secrets::detect(&r.text, &mut s);
                exfil::detect(&r.text, &allowed, &mut e);
                [p, s, e]
            })
            .collect();
        let elapsed = started.elapsed();
        println!(
            "== {file}: {} outbound rows, {:.0} us/row",
            rows.len(),
            elapsed.as_micros() as f64 / rows.len().max(1) as f64
        );
        let views: [(&str, &[usize]); 4] = [
            ("all detectors", &[0, 1, 2]),
            ("pii only", &[0]),
            ("secrets only", &[1]),
            ("exfil only", &[2]),
        ];
        for (name, which) in views {
            let flagged = |i: usize| which.iter().any(|&w| !results[i][w].is_empty());
            let attack = rows.iter().filter(|r| r.attack).count();
            let hit = (0..rows.len())
                .filter(|&i| rows[i].attack && flagged(i))
                .count();
            let clean = rows.iter().filter(|r| !r.attack && !r.kind_set).count();
            let clean_fp = (0..rows.len())
                .filter(|&i| !rows[i].attack && !rows[i].kind_set && flagged(i))
                .count();
            let ctx = rows.iter().filter(|r| !r.attack && r.kind_set).count();
            let ctx_fp = (0..rows.len())
                .filter(|&i| !rows[i].attack && rows[i].kind_set && flagged(i))
                .count();
            println!(
                "  {name:14} recall {:>18}  FPR clean {:>16}  FPR benign-with-kind {:>16}",
                pct(hit, attack),
                pct(clean_fp, clean),
                pct(ctx_fp, ctx)
            );
        }
        if file.starts_with("secrets_") {
            // Attack rows whose secret is placeholder-shaped (by design not
            // reported): found only when placeholders are let through.
            let mut placeholder_rows = 0;
            let mut hit_real = 0;
            for (r, res) in rows.iter().zip(&results) {
                if !r.attack {
                    continue;
                }
                if !res[1].is_empty() {
                    hit_real += 1;
                    continue;
                }
                let mut all = Vec::new();
                secrets::detect_including_placeholders(&r.text, &mut all);
                if !all.is_empty() {
                    placeholder_rows += 1;
                }
            }
            let attack = rows.iter().filter(|r| r.attack).count();
            println!(
                "  secrets recall excluding {placeholder_rows} placeholder-shaped attack rows: {}",
                pct(hit_real, attack - placeholder_rows)
            );
        }
        if file == "pii_presidio.jsonl" {
            let mut per: BTreeMap<&str, Prf> = BTreeMap::new();
            for (r, res) in rows.iter().zip(&results) {
                let gold: Vec<(usize, usize, &str)> = r
                    .spans
                    .iter()
                    .filter_map(|(s, e, t)| {
                        PII_TYPES
                            .iter()
                            .find(|(g, _)| g == t)
                            .map(|(_, ours)| (*s, *e, *ours))
                    })
                    .collect();
                for (_, ours) in PII_TYPES {
                    let pred: Vec<&Finding> = res[0].iter().filter(|f| f.ty == ours).collect();
                    let g: Vec<&(usize, usize, &str)> =
                        gold.iter().filter(|x| x.2 == ours).collect();
                    let m = per.entry(ours).or_default();
                    for p in &pred {
                        if g.iter().any(|x| p.start < x.1 && x.0 < p.end) {
                            m.tp += 1;
                        } else {
                            m.fp += 1;
                            if show > 0 {
                                println!(
                                    "    FP {ours} {}: {:?}",
                                    r.id,
                                    r.text.get(p.start..p.end)
                                );
                            }
                        }
                    }
                    for x in &g {
                        if !pred.iter().any(|p| p.start < x.1 && x.0 < p.end) {
                            m.fn_ += 1;
                            if show > 0 {
                                println!("    FN {ours} {}: {:?}", r.id, r.text.get(x.0..x.1));
                            }
                        }
                    }
                }
            }
            let mut all = Prf::default();
            for (ty, m) in &per {
                println!("  span {ty:12} {}", m.line());
                all.tp += m.tp;
                all.fp += m.fp;
                all.fn_ += m.fn_;
            }
            println!("  span {:12} {}", "ALL", all.line());
        }
        if show > 0 {
            let mut shown = 0;
            for (r, res) in rows.iter().zip(&results) {
                let any = res.iter().any(|v| !v.is_empty());
                if shown < show && !r.attack && any {
                    shown += 1;
                    let types: Vec<String> = res
                        .iter()
                        .flatten()
                        .map(|f| format!("{}@{}..{}", f.ty, f.start, f.end))
                        .collect();
                    println!(
                        "    FP-row {} {:?}: {}",
                        r.id,
                        types,
                        r.text.chars().take(300).collect::<String>()
                    );
                }
            }
            shown = 0;
            let relevant = if file.starts_with("secrets") { 1 } else { 0 };
            for (r, res) in rows.iter().zip(&results) {
                if shown < show && r.attack && res[relevant].is_empty() {
                    shown += 1;
                    println!(
                        "    MISS {}: {}",
                        r.id,
                        r.text.chars().take(300).collect::<String>()
                    );
                }
            }
        }
    }
}
