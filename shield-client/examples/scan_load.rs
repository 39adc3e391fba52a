//! A supervised agent that scans at full speed through its own session's
//! socket (`SHIELD_SOCKET`), for the daemon's concurrent-session benchmark
//! (`cargo xtask bench --only daemon-scan`).
//!
//! ```text
//! shieldd run -- scan_load [SECONDS] [START_FILE]
//! ```
//!
//! Waits until START_FILE exists (so that every session starts scanning at
//! once), scans a 1 KiB text in a loop for SECONDS (default 3) and prints
//! one JSON line: `{"scans": N, "errors": N, "latencies_us": [...]}`.

use std::time::{Duration, Instant};

use shield_client::{Client, Direction};

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let start = args.next();
    let mut client = match Client::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("scan_load: {e}");
            std::process::exit(2);
        }
    };
    let base = "Hello, I placed order 1042 last Tuesday and the tracking page still says \
                it is being prepared. Could you tell me when it will ship? ";
    let mut text = base.repeat(1024 / base.len() + 1);
    text.truncate(1024);
    if let Some(f) = start {
        while !std::path::Path::new(&f).exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let (mut lat, mut errors) = (Vec::new(), 0u64);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        let t = Instant::now();
        match client.try_scan(&text, Direction::Inbound) {
            Ok(_) => lat.push(t.elapsed().as_micros() as u64),
            Err(_) => errors += 1,
        }
    }
    println!(
        "{}",
        serde_json::json!({"scans": lat.len(), "errors": errors, "latencies_us": lat})
    );
}
