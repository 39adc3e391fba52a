//! Per-layer throughput of every scanner layer, and of the whole scanner, in
//! thread CPU time (a shared, loaded machine inflates wall-clock figures;
//! CPU time does not move much).
//! Development aid beside the criterion bench `benches/scan_layers.rs`.
//!
//! ```text
//! cargo run --release -p shieldd --example scan_layers_cpu -- [EVAL_DIR] [--rounds N] [--adversarial MB]
//! ```
use std::path::PathBuf;

use shield_client::wire::Finding;
use std::sync::OnceLock;

use shield_client::wire::Direction;
use shieldd::policy::ScanPolicy;
use shieldd::scan::injection::InjectionRules;
use shieldd::scan::{decode, exfil, learned, normalize, pii, secrets, Scanner};

#[path = "../benches/common/mod.rs"]
mod common;
use common::{corpus, cpu_seconds};

type Layer = fn(&str, &mut Vec<Finding>);

fn exfil_layer(text: &str, out: &mut Vec<Finding>) {
    exfil::detect(text, &[], out);
}

fn normalize_layer(text: &str, _out: &mut Vec<Finding>) {
    std::hint::black_box(normalize::normalize(text));
}

/// Normalisation included: the rules only ever see normalised text.
fn injection_layer(text: &str, out: &mut Vec<Finding>) {
    if let Ok(rules) = InjectionRules::builtin() {
        rules.scan_all(&normalize::normalize(text), out);
    }
}

fn learned_layer(text: &str, _out: &mut Vec<Finding>) {
    std::hint::black_box(learned::score(text));
}

fn decode_layer(text: &str, _out: &mut Vec<Finding>) {
    let mut budget = decode::DEFAULT_BUDGET;
    std::hint::black_box(decode::find_encoded(text, &mut budget));
}

fn scanner() -> Option<&'static Scanner> {
    static S: OnceLock<Option<Scanner>> = OnceLock::new();
    S.get_or_init(|| Scanner::new(&ScanPolicy::default(), Vec::new()).ok())
        .as_ref()
}

/// The whole scanner, inbound (every layer on under the default policy).
fn scanner_layer(text: &str, out: &mut Vec<Finding>) {
    if let Some(s) = scanner() {
        out.extend(s.scan(text, Direction::Inbound).findings);
    }
}

const LAYERS: [(&str, Layer); 8] = [
    ("normalize", normalize_layer),
    ("inject", injection_layer),
    ("learned", learned_layer),
    ("decode", decode_layer),
    ("pii", pii::detect),
    ("secrets", secrets::detect),
    ("exfil", exfil_layer),
    ("SCANNER", scanner_layer),
];

fn measure(texts: &[String], layer: Layer, rounds: usize) -> (f64, usize) {
    let mut out = Vec::new();
    // Warm-up: lazy statics and caches.
    for t in texts.iter().take(50) {
        layer(t, &mut out);
    }
    let mut best = f64::MAX;
    let mut found = 0;
    for _ in 0..rounds.max(1) {
        found = 0;
        let t0 = cpu_seconds();
        for t in texts {
            out.clear();
            layer(t, &mut out);
            found += out.len();
        }
        best = best.min(cpu_seconds() - t0);
    }
    (best, found)
}

fn main() {
    let mut dir = PathBuf::from("/work/shared/eval");
    let mut rounds = 3;
    let mut adversarial: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).unwrap_or(3),
            "--adversarial" => adversarial = args.next().and_then(|n| n.parse().ok()),
            _ => dir = PathBuf::from(a),
        }
    }
    if let Some(mb) = adversarial {
        let n = mb << 20;
        let b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let words = "password=hunter2 call 555 0143 at 10.0.0.1 key: AKIA ";
        let inputs = [
            ("digits", "0123456789".repeat(n / 10)),
            ("digit_groups", "1234 5678 ".repeat(n / 10)),
            ("base64", b64.repeat(n / b64.len())),
            ("line", words.repeat(n / words.len())),
        ];
        for (kind, text) in &inputs {
            for (name, layer) in LAYERS {
                let (s, found) = measure(std::slice::from_ref(text), layer, 1);
                println!(
                    "{kind:13} {name:8} {:>8.1} MB/s  {:.3} s  {found} findings",
                    text.len() as f64 / s / 1e6,
                    s
                );
            }
        }
        return;
    }
    let texts = corpus(&dir);
    let bytes: usize = texts.iter().map(String::len).sum();
    println!(
        "{} texts, {:.2} MB, best of {rounds} rounds, thread CPU time",
        texts.len(),
        bytes as f64 / 1e6
    );
    for (name, layer) in LAYERS {
        let (s, found) = measure(&texts, layer, rounds);
        println!(
            "{name:8} {:>8.1} MB/s  {:.3} s  {found} findings",
            bytes as f64 / s / 1e6,
            s
        );
    }
}
