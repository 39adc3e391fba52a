//! Dumps, per corpus text, the sorted `(kind, type, start, end)` of the PII,
//! secrets and exfiltration detectors, one text per line, so that a speed
//! change can be checked for identical findings against a baseline dump.
//! Development aid; asserts nothing.
//!
//! ```text
//! cargo run --release -p shieldd --example data_diff -- OUT.txt [EVAL_DIR]
//! cargo run --release -p shieldd --example data_diff -- --compare A.txt B.txt
//! cargo run --release -p shieldd --example data_diff -- --time pii|secrets|exfil ROUNDS
//! ```
use std::fmt::Write as _;
use std::path::PathBuf;

use shield_client::wire::Finding;
use shieldd::scan::{exfil, pii, secrets};

#[path = "../benches/common/mod.rs"]
mod common;
use common::cpu_seconds;

fn line(text: &str) -> String {
    let mut all: Vec<Finding> = Vec::new();
    pii::detect(text, &mut all);
    secrets::detect(text, &mut all);
    exfil::detect(text, &[], &mut all);
    let mut keys: Vec<(String, String, usize, usize)> = all
        .into_iter()
        .map(|f| (format!("{:?}", f.kind), f.ty, f.start, f.end))
        .collect();
    keys.sort();
    let mut s = String::new();
    for (k, t, a, b) in keys {
        let _ = write!(s, "{k}:{t}:{a}-{b} ");
    }
    s
}

fn compare(a: &str, b: &str) {
    let (Ok(a), Ok(b)) = (std::fs::read_to_string(a), std::fs::read_to_string(b)) else {
        eprintln!("cannot read the dumps");
        return;
    };
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    if la.len() != lb.len() {
        println!("different text counts: {} vs {}", la.len(), lb.len());
    }
    let mut diff = 0;
    for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
        if x != y {
            diff += 1;
            if diff <= 20 {
                println!("text {i}:\n  - {x}\n  + {y}");
            }
        }
    }
    println!("{diff} of {} texts differ", la.len().min(lb.len()));
}

/// One layer over the corpus `rounds` times (for `perf record`), best round in thread CPU time.
fn time(layer: &str, rounds: usize) {
    let texts = common::corpus(&PathBuf::from("/work/shared/eval"));
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut out = Vec::new();
    let mut best = f64::MAX;
    for _ in 0..rounds.max(1) {
        let t0 = cpu_seconds();
        for t in &texts {
            out.clear();
            match layer {
                "pii" => pii::detect(t, &mut out),
                "secrets" => secrets::detect(t, &mut out),
                _ => exfil::detect(t, &[], &mut out),
            }
        }
        best = best.min(cpu_seconds() - t0);
    }
    println!("{layer}: {:.1} MB/s", bytes as f64 / best / 1e6);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--time") {
        let layer = args.get(1).map_or("pii", String::as_str);
        let rounds = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);
        time(layer, rounds);
        return;
    }
    if args.first().map(String::as_str) == Some("--compare") {
        if let (Some(a), Some(b)) = (args.get(1), args.get(2)) {
            compare(a, b);
        }
        return;
    }
    let Some(out) = args.first() else {
        eprintln!("usage: data_diff OUT.txt [EVAL_DIR] | --compare A B");
        return;
    };
    let dir = PathBuf::from(args.get(1).map_or("/work/shared/eval", String::as_str));
    let texts = common::corpus(&dir);
    let mut s = String::new();
    for t in &texts {
        s.push_str(&line(t));
        s.push('\n');
    }
    if let Err(e) = std::fs::write(out, s) {
        eprintln!("write {out}: {e}");
    }
    println!("{} texts dumped to {out}", texts.len());
}
