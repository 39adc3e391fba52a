//! Time the injection rules over the eval corpus (development aid): the
//! texts are normalised first (untimed), then `InjectionRules::scan_all`
//! runs over them in thread CPU time, with the process's resident memory
//! before and after; then each rule's regex alone over the whole corpus.
//!
//! ```text
//! cargo run --release -p shieldd --example rule_perf -- [EVAL_DIR] [--rounds N] [--per-rule]
//!     [--cache-budget BYTES]
//! ```
use std::path::PathBuf;

use shieldd::scan::injection::{expand, InjectionRules};
use shieldd::scan::normalize::{normalize, Normalized};
use shieldd::scan::rules::RULES;

#[path = "../benches/common/mod.rs"]
mod common;
use common::cpu_seconds;

/// `VmRSS` and `VmHWM` of this process in kB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = PathBuf::from("/work/shared/eval");
    let mut rounds = 3;
    let mut per_rule = false;
    let mut budget = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).unwrap_or(3),
            "--per-rule" => per_rule = true,
            "--cache-budget" => budget = args.next().and_then(|n| n.parse::<usize>().ok()),
            _ => dir = PathBuf::from(a),
        }
    }
    let texts = common::corpus(&dir);
    let bytes: usize = texts.iter().map(String::len).sum();
    let docs: Vec<Normalized> = texts.iter().map(|t| normalize(t)).collect();
    let m0 = memory();
    let rules = InjectionRules::builtin().map_err(|e| e.to_string())?;
    if let Some(b) = budget {
        rules.set_cache_budget(b);
    }
    let m1 = memory();
    println!(
        "{} rules, {} literals, {} gate literals, unfiltered {:?}",
        rules.len(),
        rules.literal_count(),
        rules.gate_literal_count(),
        rules.unfiltered()
    );
    let mut best = f64::MAX;
    let mut found = 0;
    for _ in 0..rounds.max(1) {
        let mut out = Vec::new();
        let t = cpu_seconds();
        for d in &docs {
            rules.scan_all(d, &mut out);
        }
        best = best.min(cpu_seconds() - t);
        found = out.len();
    }

    let m2 = memory();
    println!(
        "scan_all: {:.3} s, {:.1} MB/s over {} texts, {bytes} bytes ({found} findings)",
        best,
        bytes as f64 / best / 1e6,
        docs.len()
    );
    println!(
        "memory kB (RSS, HWM): texts normalised {m0:?}, rules compiled {m1:?}, after scans {m2:?}"
    );
    println!(
        "engine's own count: automata {} kB, search caches {} kB",
        rules.memory_usage() >> 10,
        rules.cache_memory() >> 10
    );
    if per_rule {
        let mut caches: Vec<(usize, usize, usize)> = rules
            .cache_memory_by_rule()
            .iter()
            .enumerate()
            .map(|(i, m)| (m.0 + m.1, m.1, i))
            .collect();
        caches.sort_unstable_by(|a, b| b.cmp(a));
        println!("largest search caches (kB, of which relaxed form):");
        for (total, relaxed, i) in caches.iter().take(16) {
            println!("  rule {i}: {} kB ({} kB)", total >> 10, relaxed >> 10);
        }
        let (mem, literals) = rules.memory_by_rule();
        let mut mem: Vec<(usize, usize, usize)> = mem
            .iter()
            .enumerate()
            .map(|(i, m)| (m.0 + m.1, m.1, i))
            .collect();
        mem.sort_unstable_by(|a, b| b.cmp(a));
        println!(
            "literal automaton {} kB; largest rules (kB, of which relaxed form):",
            literals >> 10
        );
        println!(
            "all rules {} kB, relaxed forms {} kB",
            mem.iter().map(|m| m.0).sum::<usize>() >> 10,
            mem.iter().map(|m| m.1).sum::<usize>() >> 10
        );
        for (total, relaxed, i) in mem.iter().take(12) {
            println!("  rule {i}: {} kB ({} kB)", total >> 10, relaxed >> 10);
        }
        let mut times = Vec::new();
        for (i, r) in RULES.iter().enumerate() {
            let re = regex::Regex::new(&format!("(?s){}", expand(r.pattern)))?;
            let t = cpu_seconds();
            for d in &docs {
                let _ = re.find_iter(d.text()).count();
            }
            times.push((cpu_seconds() - t, i));
        }
        times.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (d, i) in times.iter().take(12) {
            println!("{d:.3} s rule {i} {}", RULES[*i].ty);
        }
    }
    Ok(())
}
