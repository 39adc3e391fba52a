//! The `shieldd` binary: parse arguments, set up logging, hand over to the library.

use clap::Parser;

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIELDD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = shieldd::cli::Cli::parse();
    std::process::exit(shieldd::cli::main_with(cli));
}
