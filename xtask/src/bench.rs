//! `cargo xtask bench`: measurements compared side by side in one run, as
//! ratios (the machine is shared and noisy).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// Run every benchmark.
pub fn run(args: &[String]) -> Result<()> {
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    crate::ensure_deps(&["bubblewrap"])?;
    let shieldd = super::build()?;
    launch_overhead(&shieldd, rounds)?;
    println!();
    super::eval_tool("bench", &[])
}

fn time(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let st = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    let d = t.elapsed();
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(d)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// `shieldd run -- /bin/true` against bare `/bin/true` and against bwrap with
/// a comparable read-only setup, interleaved round by round.
fn launch_overhead(shieldd: &Path, rounds: usize) -> Result<()> {
    let work = std::env::temp_dir().join("shieldd-bench-launch");
    std::fs::create_dir_all(&work)?;
    let bwrap_args: Vec<&str> = vec![
        "--ro-bind",
        "/usr",
        "/usr",
        "--ro-bind",
        "/etc",
        "/etc",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
    ];
    let work_s = work.to_string_lossy().into_owned();
    let mut bare = Vec::new();
    let mut sh = Vec::new();
    let mut shm = Vec::new();
    let mut bw = Vec::new();
    // One warm-up of each so page cache state is the same for all three.
    for i in 0..rounds + 1 {
        let a = time(&mut Command::new("/bin/true"))?;
        let b = time(
            Command::new(shieldd)
                .args(["run", "--allow-degraded=monitor", "--", "/bin/true"])
                .current_dir(&work),
        )?;
        let m = time(
            Command::new(shieldd)
                .args(["run", "--", "/bin/true"])
                .current_dir(&work),
        )?;
        let c = time(
            Command::new("bwrap")
                .args(&bwrap_args)
                .args([&work_s, &work_s, "--chdir", &work_s])
                .args([
                    "--unshare-all",
                    "--die-with-parent",
                    "--new-session",
                    "/bin/true",
                ]),
        )?;
        if i > 0 {
            bare.push(a);
            sh.push(b);
            shm.push(m);
            bw.push(c);
        }
    }
    let (mb, ms, mm, mw) = (
        percentile(&mut bare, 0.5),
        percentile(&mut sh, 0.5),
        percentile(&mut shm, 0.5),
        percentile(&mut bw, 0.5),
    );
    let (pb, ps, pm, pw) = (
        percentile(&mut bare, 0.9),
        percentile(&mut sh, 0.9),
        percentile(&mut shm, 0.9),
        percentile(&mut bw, 0.9),
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("launch overhead, {rounds} interleaved rounds (median / p90, microseconds)");
    println!("| command | median | p90 | added over bare (median) |");
    println!("|---|---:|---:|---:|");
    println!("| /bin/true | {:.0} | {:.0} | - |", us(mb), us(pb));
    println!(
        "| shieldd run --allow-degraded=monitor -- /bin/true (Landlock, seccomp, cgroups) | {:.0} | {:.0} | {:.0} |",
        us(ms),
        us(ps),
        us(ms) - us(mb)
    );
    println!(
        "| shieldd run -- /bin/true (+ eBPF monitor loaded for the session) | {:.0} | {:.0} | {:.0} |",
        us(mm),
        us(pm),
        us(mm) - us(mb)
    );
    println!(
        "| bwrap (ro /usr,/etc, unshare-all) /bin/true | {:.0} | {:.0} | {:.0} |",
        us(mw),
        us(pw),
        us(mw) - us(mb)
    );
    let added_s = us(ms) - us(mb);
    let added_b = us(mw) - us(mb);
    println!(
        "ratio of added latency, shieldd without monitor / bwrap: {:.2} (target <= 1.00)",
        added_s / added_b.max(1.0)
    );
    println!(
        "ratio of added latency, shieldd with monitor / bwrap: {:.2}",
        (us(mm) - us(mb)) / added_b.max(1.0)
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
