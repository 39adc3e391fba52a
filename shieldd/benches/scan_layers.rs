//! Per-layer throughput of the data detectors (PII, secrets, exfiltration),
//! single thread, on the evaluation corpus and on adversarial inputs.
//!
//! ```text
//! cargo bench -p shieldd --bench scan_layers            # corpus + adversarial
//! SHIELDD_EVAL_DIR=/path cargo bench -p shieldd --bench scan_layers -- corpus
//! ```
//!
//! The corpus is every row of every `*.jsonl` file in `SHIELDD_EVAL_DIR`
//! (default `/work/shared/eval`), each text scanned separately, as the
//! scanner sees them; without the corpus a synthetic one stands in.
//! Adversarial inputs (digits, base64 alphabet, one long line) are
//! measured at two sizes so that a non-linear layer shows as a lower MB/s
//! at the larger one.
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shieldd::scan::{exfil, pii, secrets};

mod common;

fn corpus() -> Vec<String> {
    let dir = std::env::var_os("SHIELDD_EVAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/eval"));
    common::corpus(&dir)
}

type Layer = fn(&str, &mut Vec<shield_client::wire::Finding>);

fn exfil_layer(text: &str, out: &mut Vec<shield_client::wire::Finding>) {
    exfil::detect(text, &[], out);
}

const LAYERS: [(&str, Layer); 3] = [
    ("pii", pii::detect),
    ("secrets", secrets::detect),
    ("exfil", exfil_layer),
];

fn bench_corpus(c: &mut Criterion) {
    let texts = corpus();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut g = c.benchmark_group("corpus");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for (name, layer) in LAYERS {
        g.bench_function(name, |b| {
            let mut out = Vec::new();
            b.iter(|| {
                for t in &texts {
                    out.clear();
                    layer(black_box(t), &mut out);
                }
                out.len()
            });
        });
    }
    g.finish();
}

fn adversarial_inputs(n: usize) -> Vec<(&'static str, String)> {
    let b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let words = "password=hunter2 call 555 0143 at 10.0.0.1 key: AKIA ";
    vec![
        ("digits", "0123456789".repeat(n / 10)),
        ("digit_groups", "1234 5678 ".repeat(n / 10)),
        ("base64", b64.repeat(n / b64.len())),
        ("line", words.repeat(n / words.len())),
    ]
}

fn bench_adversarial(c: &mut Criterion) {
    let mut g = c.benchmark_group("adversarial");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    for n in [1usize << 20, 10 << 20] {
        for (kind, text) in adversarial_inputs(n) {
            g.throughput(Throughput::Bytes(text.len() as u64));
            for (name, layer) in LAYERS {
                let id = BenchmarkId::new(format!("{name}/{kind}"), n >> 20);
                g.bench_with_input(id, &text, |b, t| {
                    let mut out = Vec::new();
                    b.iter(|| {
                        out.clear();
                        layer(black_box(t), &mut out);
                        out.len()
                    });
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, bench_corpus, bench_adversarial);
criterion_main!(benches);
