//! Temporary runner until the lead wires `train` and `evaldata` into
//! xtask's main: `cargo run -p xtask --release --bin learned -- train|eval ...`.

#[path = "../evaldata.rs"]
mod evaldata;
#[path = "../train.rs"]
mod train;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    match args.first().map(String::as_str) {
        Some("train") => train::run(rest),
        Some("eval") => evaldata::run(rest),
        Some("score") => {
            for line in std::io::stdin().lines() {
                let line = line?;
                println!("{:.4}\t{line}", shieldd::scan::learned::score(&line));
            }
            Ok(())
        }
        _ => anyhow::bail!("usage: learned train [--check] [--out PATH] | score (stdin lines) | eval [--threshold P] [--no-seed]"),
    }
}
