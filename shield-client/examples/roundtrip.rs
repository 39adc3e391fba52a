//! Round-trip figures of the scan API from Rust.
//!
//! ```text
//! shieldd serve --socket /tmp/s.sock --policy policies/support-agent.yaml &
//! cargo run --release -p shield-client --features async --example roundtrip -- /tmp/s.sock [SECONDS] [--text-bytes N] [--json]
//! ```
//!
//! Latency: one blocking client, 2000 sequential scans of a 1 KiB text
//! (`--text-bytes N` for a shorter one). Throughput: 1, 16 and 64 blocking
//! clients (a thread and a connection each), then 1, 16 and 64 async
//! clients (one connection each), each scanning in a loop for SECONDS
//! (default 3); then 64 tasks pipelining over one shared client. `--json`
//! prints one JSON object (read by `cargo xtask bench --only api`).

use std::time::{Duration, Instant};

use shield_client::{AsyncClient, Client, Direction};

const REQUESTS: usize = 2000;

/// About 1 KiB of ordinary support-desk text, cut at a character boundary.
fn text_1k() -> String {
    let base = "Hello, I placed order 1042 last Tuesday and the tracking page still says \
                it is being prepared. Could you tell me when it will ship, and whether I can \
                change the delivery address to my office? Thanks for your help. ";
    let mut t = base.repeat(1024 / base.len() + 1);
    let mut cut = 1024.min(t.len());
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    t.truncate(cut);
    t
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(Duration::ZERO)
}

/// Round-trip times, and the server's own decision times (`latency_us`).
fn latency(
    socket: &str,
    text: &str,
) -> Result<(Vec<Duration>, Vec<Duration>), shield_client::Error> {
    let mut c = Client::connect(socket)?;
    for _ in 0..100 {
        c.try_scan(text, Direction::Inbound)?;
    }
    let mut times = Vec::with_capacity(REQUESTS);
    let mut server = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let v = c.try_scan(text, Direction::Inbound)?;
        times.push(t.elapsed());
        server.push(Duration::from_micros(v.latency_us));
    }
    times.sort();
    server.sort();
    Ok((times, server))
}

/// `clients` tasks scanning in a loop; with `shared`, all of them pipeline
/// over one client (one connection), else each has its own.
async fn throughput(
    socket: &str,
    text: &str,
    clients: usize,
    shared: bool,
    secs: u64,
) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    let one = AsyncClient::new(socket);
    for _ in 0..clients {
        let c = if shared {
            one.clone()
        } else {
            AsyncClient::new(socket)
        };
        let text = text.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut err) = (0u64, 0u64);
            while Instant::now() < deadline {
                match c.try_scan(&text, Direction::Inbound).await {
                    Ok(_) => ok += 1,
                    Err(_) => err += 1,
                }
            }
            (ok, err)
        }));
    }
    let mut total = (0, 0);
    for t in tasks {
        if let Ok((ok, err)) = t.await {
            total.0 += ok;
            total.1 += err;
        }
    }
    total
}

/// `clients` threads, each with its own blocking client, scanning in a loop.
fn blocking_throughput(socket: &str, text: &str, clients: usize, secs: u64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (socket, text) = (socket.to_owned(), text.to_owned());
            std::thread::spawn(move || {
                let mut c = Client::new(socket);
                let (mut ok, mut err) = (0u64, 0u64);
                while Instant::now() < deadline {
                    match c.try_scan(&text, Direction::Inbound) {
                        Ok(_) => ok += 1,
                        Err(_) => err += 1,
                    }
                }
                (ok, err)
            })
        })
        .collect();
    handles
        .into_iter()
        .filter_map(|h| h.join().ok())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let socket = args
        .next()
        .or_else(|| std::env::var(shield_client::SOCKET_ENV).ok())
        .unwrap_or_else(|| "/tmp/shieldd.sock".into());
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let rest: Vec<String> = args.collect();
    let flag = |name: &str| rest.iter().position(|a| a == name);
    let json = flag("--json").is_some();
    let mut text = text_1k();
    if let Some(n) = flag("--text-bytes")
        .and_then(|i| rest.get(i + 1))
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut cut = n.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    // A freshly started shieldd may still be building its scanner.
    let ready = Instant::now() + Duration::from_secs(60);
    while Client::new(&socket).ping().is_err() && Instant::now() < ready {
        std::thread::sleep(Duration::from_millis(100));
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (t, srv) = match latency(&socket, &text) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("roundtrip: {e}");
            std::process::exit(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("roundtrip: cannot start tokio: {e}");
            std::process::exit(1);
        }
    };
    let mut blocking = Vec::new();
    for n in [1usize, 16, 64] {
        let t0 = Instant::now();
        let (ok, err) = blocking_throughput(&socket, &text, n, secs);
        blocking.push((n, ok as f64 / t0.elapsed().as_secs_f64(), err));
    }
    let mut asynchronous = Vec::new();
    for (n, shared) in [(1usize, false), (16, false), (64, false), (64, true)] {
        let t0 = Instant::now();
        let (ok, err) = rt.block_on(throughput(&socket, &text, n, shared, secs));
        asynchronous.push((n, shared, ok as f64 / t0.elapsed().as_secs_f64(), err));
    }
    if json {
        let b: Vec<String> = blocking
            .iter()
            .map(|(n, r, e)| format!("{{\"clients\":{n},\"scans_per_s\":{r:.0},\"errors\":{e}}}"))
            .collect();
        let a: Vec<String> = asynchronous
            .iter()
            .map(|(n, sh, r, e)| {
                format!("{{\"clients\":{n},\"shared\":{sh},\"scans_per_s\":{r:.0},\"errors\":{e}}}")
            })
            .collect();
        println!(
            "{{\"text_bytes\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"server_p50_us\":{:.1},\"server_p99_us\":{:.1},\"blocking\":[{}],\"async\":[{}]}}",
            text.len(),
            us(percentile(&t, 0.50)),
            us(percentile(&t, 0.99)),
            us(percentile(&srv, 0.50)),
            us(percentile(&srv, 0.99)),
            b.join(","),
            a.join(",")
        );
        return;
    }
    println!("socket {socket}, text {} bytes", text.len());
    println!("\nblocking client, {REQUESTS} sequential scans");
    println!("| | p50 | p99 | max |\n|---|---|---|---|");
    println!(
        "| round trip | {:.1} µs | {:.1} µs | {:.1} µs |",
        us(percentile(&t, 0.50)),
        us(percentile(&t, 0.99)),
        us(percentile(&t, 1.0)),
    );
    println!(
        "| server decision (latency_us) | {:.1} µs | {:.1} µs | {:.1} µs |",
        us(percentile(&srv, 0.50)),
        us(percentile(&srv, 0.99)),
        us(percentile(&srv, 1.0)),
    );
    println!("\nthroughput, {secs} s each");
    println!("| client | concurrent | connections | scans/s | errors |\n|---|---|---|---|---|");
    for (n, rate, err) in &blocking {
        println!("| blocking | {n} | {n} | {rate:.0} | {err} |");
    }
    for (n, shared, rate, err) in &asynchronous {
        let conns = if *shared { 1 } else { *n };
        println!("| async | {n} | {conns} | {rate:.0} | {err} |");
    }
}
