//! `shieldd-eval train [--check] | eval [...] | score`: run by `cargo xtask
//! train` and `cargo xtask eval`. A crate of its own so that xtask, which
//! installs shieldd's build prerequisites, does not itself depend on shieldd.

mod evaldata;
mod speed;
mod train;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    let r = match args.first().map(String::as_str) {
        Some("train") => train::run(rest),
        Some("eval") => evaldata::run(rest),
        Some("score") => score(),
        Some("bench") => speed::run(),
        _ => Err(anyhow::anyhow!(
            "usage: shieldd-eval train [--check] [--out PATH] | eval [--threshold P] [--no-seed] | score (stdin lines)"
        )),
    };
    if let Err(e) = r {
        eprintln!("shieldd-eval: {e:#}");
        std::process::exit(1);
    }
}

fn score() -> anyhow::Result<()> {
    for line in std::io::stdin().lines() {
        let line = line?;
        println!("{:.4}\t{line}", shieldd::scan::learned::score(&line));
    }
    Ok(())
}
