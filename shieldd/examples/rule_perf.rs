//! Time the injection rules over a corpus file (development aid):
//! the whole prefiltered pass, then each rule's regex alone.
//! `cargo run --release -p shieldd --example rule_perf -- FILE.jsonl`
use shieldd::scan::injection::{expand, InjectionRules};
use shieldd::scan::normalize::{normalize, Normalized};
use shieldd::scan::rules::RULES;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("need a file")?;
    let text = std::fs::read_to_string(path)?;
    let docs: Vec<Normalized> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| normalize(v["text"].as_str().unwrap_or("")))
        .collect();
    let rules = InjectionRules::builtin().map_err(|e| e.to_string())?;
    let unfiltered: Vec<String> = rules
        .unfiltered()
        .iter()
        .map(|i| format!("{i}:{}", RULES[*i].ty))
        .collect();
    println!("{} literals", rules.literal_count());
    println!("{} rules, unfiltered: {unfiltered:?}", rules.len());
    let t = std::time::Instant::now();
    let mut out = Vec::new();
    for d in &docs {
        rules.scan(d, 0.0, "", &mut out);
    }
    println!(
        "prefiltered pass: {:?} ({} findings)",
        t.elapsed(),
        out.len()
    );
    let mut times = Vec::new();
    for (i, r) in RULES.iter().enumerate() {
        let re = regex::Regex::new(&format!("(?s){}", expand(r.pattern)))?;
        let t = std::time::Instant::now();
        for d in &docs {
            let _ = re.find_iter(d.text()).count();
        }
        times.push((t.elapsed(), i));
    }
    times.sort();
    for (d, i) in times.iter().rev().take(8) {
        println!("{d:?} rule {i} {}", RULES[*i].ty);
    }
    Ok(())
}
