//! The `shieldd` binary: parse arguments, set up logging, hand over to the library.

use clap::Parser;

fn main() {
    // SHIELDD_LOG takes a level (`debug`: shieldd's own messages) or a full
    // filter directive (`shieldd=debug,aya=info`).
    let spec = std::env::var("SHIELDD_LOG").unwrap_or_else(|_| "warn".into());
    let spec = if spec.contains('=') {
        spec
    } else {
        format!("warn,shieldd={spec}")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Under systemd, stderr is the journal: log structured records there
    // (priority, fields) instead of text lines.
    if let Some(journald) = shieldd::service::systemd::journald_layer() {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(filter)
            .with(journald)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
    }
    let cli = shieldd::cli::Cli::parse();
    std::process::exit(shieldd::cli::main_with(cli));
}
