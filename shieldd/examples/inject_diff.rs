//! Dump the injection rules' findings per corpus text (development aid):
//! one line per text, its index then the sorted (type, start, end, detail)
//! of `InjectionRules::scan_all` on the normalised text. Two dumps taken
//! before and after an engine change are compared with `--compare A B`.
//!
//! ```text
//! cargo run --release -p shieldd --example inject_diff -- OUT.txt [EVAL_DIR]
//! cargo run --release -p shieldd --example inject_diff -- --compare A.txt B.txt
//! ```
use std::io::Write;
use std::path::PathBuf;

use shieldd::scan::injection::InjectionRules;
use shieldd::scan::normalize::normalize;

#[path = "../benches/common/mod.rs"]
mod common;

fn line(i: usize, text: &str, rules: &InjectionRules) -> String {
    let mut out = Vec::new();
    rules.scan_all(&normalize(text), &mut out);
    let mut v: Vec<(String, usize, usize, String)> = out
        .into_iter()
        .map(|f| (f.ty, f.start, f.end, f.detail))
        .collect();
    v.sort();
    let items: Vec<String> = v
        .iter()
        .map(|(t, s, e, d)| format!("{t} {s} {e} [{d}]"))
        .collect();
    format!("{i}\t{}", items.join("; "))
}

/// Lines of a dump, keyed by text index; without the detail when `short`.
fn load(path: &str, short: bool) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let data = std::fs::read_to_string(path)?;
    Ok(data
        .lines()
        .map(|l| {
            if short {
                l.split("; ")
                    .map(|item| item.split(" [").next().unwrap_or(item))
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                l.to_string()
            }
        })
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--compare") {
        let (Some(a), Some(b)) = (args.get(1), args.get(2)) else {
            return Err("--compare A B".into());
        };
        for short in [true, false] {
            let (la, lb) = (load(a, short)?, load(b, short)?);
            let mut differ = 0;
            for (x, y) in la.iter().zip(&lb) {
                if x != y {
                    differ += 1;
                    if short && differ <= 20 {
                        println!("- {x}\n+ {y}");
                    }
                }
            }
            println!(
                "{} texts ({} vs {}), {differ} differ in {}",
                la.len().min(lb.len()),
                la.len(),
                lb.len(),
                if short {
                    "(type, start, end)"
                } else {
                    "(type, start, end, detail)"
                }
            );
        }
        return Ok(());
    }
    let out_path = args.first().ok_or("need an output file")?;
    let dir = args
        .get(1)
        .map_or_else(|| PathBuf::from("/work/shared/eval"), PathBuf::from);
    let texts = common::corpus(&dir);
    let rules = InjectionRules::builtin().map_err(|e| e.to_string())?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(out_path)?);
    for (i, t) in texts.iter().enumerate() {
        writeln!(f, "{}", line(i, t, rules))?;
    }
    f.flush()?;
    eprintln!("{} texts", texts.len());
    Ok(())
}
