//! Per-call latency of the whole scanner (inbound, default policy) on
//! 200-byte and 1 KiB texts cut from the eval corpus, in thread CPU time
//! (p50/p99/max). Development aid; the criterion benches hold the targets.
//!
//! ```text
//! cargo run --release -p shieldd --example scan_latency_cpu -- [EVAL_DIR] [--calls N]
//! ```
use std::path::PathBuf;

use shield_client::wire::Direction;
use shieldd::policy::ScanPolicy;
use shieldd::scan::Scanner;

#[path = "../benches/common/mod.rs"]
mod common;

fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `n` texts of about `size` bytes: the corpus run together and cut on char
/// boundaries, so each sample is real text.
fn samples(texts: &[String], size: usize, n: usize) -> Vec<String> {
    let all: String = texts.join("\n");
    let mut out = Vec::with_capacity(n);
    let mut at = 0usize;
    while out.len() < n && !all.is_empty() {
        if at + size >= all.len() {
            at = 0;
        }
        let mut end = at + size;
        while end < all.len() && !all.is_char_boundary(end) {
            end += 1;
        }
        let mut start = at;
        while !all.is_char_boundary(start) {
            start += 1;
        }
        if let Some(s) = all.get(start..end) {
            out.push(s.to_string());
        }
        // A prime stride spreads the samples over the corpus.
        at = end + 7919;
    }
    out
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

fn main() {
    let mut dir = PathBuf::from("/work/shared/eval");
    let mut calls = 5000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--calls" => calls = args.next().and_then(|n| n.parse().ok()).unwrap_or(5000),
            _ => dir = PathBuf::from(a),
        }
    }
    let scanner = match Scanner::new(&ScanPolicy::default(), Vec::new()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scanner: {e}");
            return;
        }
    };
    let texts = common::corpus(&dir);
    for size in [200usize, 1024] {
        let inputs = samples(&texts, size, calls);
        for t in inputs.iter().take(100) {
            std::hint::black_box(scanner.scan(t, Direction::Inbound));
        }
        let mut ns: Vec<u64> = Vec::with_capacity(inputs.len());
        for t in &inputs {
            let t0 = cpu_ns();
            std::hint::black_box(scanner.scan(t, Direction::Inbound));
            ns.push(cpu_ns().saturating_sub(t0));
        }
        ns.sort_unstable();
        let mean = ns.iter().sum::<u64>() as f64 / ns.len().max(1) as f64 / 1000.0;
        println!(
            "{size:5} B  {} calls  p50 {:.1} us  p99 {:.1} us  max {:.1} us  mean {mean:.1} us (thread CPU)",
            ns.len(),
            pct(&ns, 0.5),
            pct(&ns, 0.99),
            pct(&ns, 1.0),
        );
    }
}
