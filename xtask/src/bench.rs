//! `cargo xtask bench`: measurements compared side by side in one run, as
//! ratios (the machine is shared and noisy).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

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
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let want = |name: &str| only.is_none_or(|o| o == name);
    if want("launch") {
        launch_overhead(&shieldd, rounds)?;
        println!();
    }
    if want("daemon") {
        daemon_overhead(&shieldd, rounds)?;
        println!();
    }
    if want("daemon-scan") {
        daemon_scan(&shieldd, 32, 3.0)?;
        println!();
    }
    if want("syscalls") {
        syscall_overhead(&shieldd, 5)?;
        println!();
    }
    if only == Some("syscall-layers") {
        syscall_layers(&shieldd, 5)?;
        println!();
    }
    if want("containment") {
        containment_latency(&shieldd, 100)?;
        println!();
    }
    if want("events") {
        event_throughput(&shieldd)?;
        println!();
    }
    if want("api") {
        api_roundtrip(&shieldd)?;
        println!();
    }
    if want("scanner") {
        super::eval_tool("bench", &[])?;
    }
    Ok(())
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
            bw.push(c);
        }
    }
    // Apart: a session that loaded the eBPF programs leaves the kernel
    // freeing them (RCU callbacks, cgroup program detach) for milliseconds
    // after it exits, which would land on whichever command runs next.
    for i in 0..rounds + 1 {
        let m = time(
            Command::new(shieldd)
                .args(["run", "--", "/bin/true"])
                .current_dir(&work),
        )?;
        if i > 0 {
            shm.push(m);
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
    println!("launch overhead, {rounds} interleaved rounds of bare, shieldd without the monitor and bwrap, then {rounds} rounds with the monitor (median / p90, microseconds)");
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

/// Policy for the monitored benchmarks: the loopback port is allowed, the
/// forbidden port and /usr/bin/id are not.
fn bench_policy(dir: &Path, allowed_port: u16) -> Result<std::path::PathBuf> {
    let p = dir.join("bench-policy.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nname: bench\nsandbox:\n  filesystem:\n    read: [/usr, /lib, /lib64, /etc, /bin]\n    write: [./]\n  network:\n    connect:\n      - {{ cidr: 127.0.0.1/32, port: {allowed_port} }}\n  exec:\n    allow: [/usr/bin/python3*, /usr/bin/true, /bin/true]\n  limits: {{ pids: 4096 }}\nresponse:\n  default: kill\n"
        ),
    )?;
    Ok(p)
}

// Prints wall and CPU seconds (the agent's own plus its reaped children's:
// on this shared 2-core VM other jobs' load moves wall time far more than
// the overhead being measured). It first waits for shieldd's one-time
// start-up work (the scanner's rule sets, ~0.3 s of CPU on a low-priority
// thread) to finish, so the loop measures the per-call overhead only.
const SYSCALL_LOOPS: &str = r#"
import os, resource, socket, sys, time
kind, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
open("f.txt", "w").write("x")
time.sleep(float(os.environ.get("BENCH_SETTLE", "1.0")))
def cpu():
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime
c0 = cpu()
t = time.perf_counter()
if kind == "open":
    for _ in range(n):
        os.close(os.open("f.txt", os.O_RDONLY))
elif kind == "connect":
    for _ in range(n):
        s = socket.socket(); s.connect(("127.0.0.1", port)); s.close()
elif kind == "forkexec":
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os.execv("/usr/bin/true", ["true"])
        os.waitpid(pid, 0)
print(time.perf_counter() - t, cpu() - c0)
"#;

/// An empty directory at `dir` (whatever was there is removed).
fn fresh_dir(dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// A loopback TCP port that accepts and drops every connection.
fn sink_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    Ok(port)
}

/// Issue 3: syscall overhead on the supervised agent, bare against under
/// `shieldd run` with the monitor, interleaved; the time is measured inside
/// the agent, so launch cost is excluded.
pub fn syscall_overhead(shieldd: &Path, rounds: usize) -> Result<()> {
    let work = std::env::temp_dir().join("shieldd-bench-syscalls");
    fresh_dir(&work)?;
    let port = sink_port()?;
    let policy = bench_policy(&work, port)?;
    let script = work.join("loops.py");
    std::fs::write(&script, SYSCALL_LOOPS)?;
    let py = crate::PY;
    println!("syscall overhead under the monitor, {rounds} interleaved rounds, time measured inside the agent (wall; CPU = agent + children)");
    println!("| loop | iterations | bare wall s | shieldd wall s | wall ratio | bare CPU s | shieldd CPU s | CPU ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, n) in [("open", "100000"), ("connect", "5000"), ("forkexec", "500")] {
        let mut bare = Vec::new();
        let mut under = Vec::new();
        for _ in 0..rounds {
            bare.push(run_loop(
                Command::new(py)
                    .arg(&script)
                    .args([kind, n, &port.to_string()]),
                &work,
            )?);
            under.push(run_loop(
                Command::new(shieldd)
                    .args(["run", "--policy"])
                    .arg(&policy)
                    .args(["--", py])
                    .arg(&script)
                    .args([kind, n, &port.to_string()]),
                &work,
            )?);
        }
        let (bw, bc) = medians(&bare);
        let (uw, uc) = medians(&under);
        println!(
            "| {kind} | {n} | {bw:.4} | {uw:.4} | {:.3} | {bc:.4} | {uc:.4} | {:.3} |",
            uw / bw,
            uc / bc
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Run one loop script; (wall s, CPU s) as it printed them.
fn run_loop(c: &mut Command, work: &Path) -> Result<(f64, f64)> {
    let o = c.current_dir(work).stderr(Stdio::inherit()).output()?;
    if !o.status.success() {
        bail!("{c:?} failed: {}", o.status);
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>());
    match (it.next(), it.next()) {
        (Some(Ok(w)), Some(Ok(c))) => Ok((w, c)),
        _ => bail!("unexpected loop output: {text}"),
    }
}

/// Medians of the wall and CPU columns.
fn medians(v: &[(f64, f64)]) -> (f64, f64) {
    let med = |mut x: Vec<f64>| {
        x.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        x.get(x.len() / 2).copied().unwrap_or(f64::NAN)
    };
    (
        med(v.iter().map(|p| p.0).collect()),
        med(v.iter().map(|p| p.1).collect()),
    )
}

/// Where the syscall overhead comes from: the open/close and connect loops
/// bare and under each layer alone, through the `layers` example (the
/// product has no switch to leave a layer out), interleaved; CPU time.
pub fn syscall_layers(shieldd: &Path, rounds: usize) -> Result<()> {
    let root = shieldd
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .context("workspace root")?;
    let st = Command::new("cargo")
        .args(["build", "--release", "-p", "shieldd", "--example", "layers"])
        .current_dir(root)
        .status()?;
    if !st.success() {
        bail!("building the layers example failed");
    }
    let layers = root.join("target/release/examples/layers");
    let work = std::env::temp_dir().join("shieldd-bench-layers");
    fresh_dir(&work)?;
    let port = sink_port()?;
    let plain = bench_policy(&work, port)?;
    let deny = work.join("bench-policy-deny.yaml");
    std::fs::write(
        &deny,
        std::fs::read_to_string(&plain)?.replace(
            "    write: [./]\n",
            "    write: [./]\n    deny: [./secret, ~/.ssh]\n",
        ),
    )?;
    std::fs::create_dir_all(work.join("secret"))?;
    let script = work.join("loops.py");
    std::fs::write(&script, SYSCALL_LOOPS)?;
    let sets = [
        "none",
        "cgroup",
        "seccomp",
        "landlock",
        "monitor",
        "cgroup,seccomp,landlock,monitor",
    ];
    println!("syscall overhead by layer ({rounds} interleaved rounds, median CPU s inside the agent, ratio to bare)");
    for (kind, n) in [("open", "100000"), ("connect", "5000")] {
        for (pname, policy) in [("no deny paths", &plain), ("with deny paths", &deny)] {
            let mut bare = Vec::new();
            let mut by: Vec<Vec<(f64, f64)>> = vec![Vec::new(); sets.len()];
            for _ in 0..rounds {
                bare.push(run_loop(
                    Command::new(crate::PY)
                        .env("BENCH_SETTLE", "0")
                        .arg(&script)
                        .args([kind, n, &port.to_string()]),
                    &work,
                )?);
                for (i, set) in sets.iter().enumerate() {
                    let r = run_loop(
                        Command::new(&layers)
                            .env("BENCH_SETTLE", "0")
                            .arg("--policy")
                            .arg(policy)
                            .args(["--layers", set, "--", crate::PY])
                            .arg(&script)
                            .args([kind, n, &port.to_string()]),
                        &work,
                    )?;
                    if let Some(v) = by.get_mut(i) {
                        v.push(r);
                    }
                }
            }
            let b = medians(&bare).1;
            let cells: Vec<String> = sets
                .iter()
                .zip(&by)
                .map(|(s, v)| format!("{s} {:.3}", medians(v).1 / b))
                .collect();
            println!(
                "| {kind} ({pname}) | bare {b:.4} s | {} |",
                cells.join(" | ")
            );
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

const CONTAIN: &str = r#"
import os, socket, sys, time
kind, port = sys.argv[1], int(sys.argv[2])
pid = os.fork()
if pid == 0:
    time.sleep(60); os._exit(0)
print(pid, os.getpid(), flush=True)
sys.stdin.readline()
t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
print(t0, flush=True)
if kind == "exec":
    os.execv("/usr/bin/id", ["id"])
else:
    socket.socket().connect(("127.0.0.1", port))
time.sleep(60)
"#;

/// Issue 3: from a forbidden exec (killed in the kernel) or connect
/// (refused in the kernel, the tree killed from user space) to the whole
/// tree dead: a sibling that only sleeps is watched with a pidfd.
pub fn containment_latency(shieldd: &Path, trials: usize) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let work = std::env::temp_dir().join("shieldd-bench-contain");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let forbidden = std::net::TcpListener::bind("127.0.0.1:0")?;
    let fport = forbidden.local_addr()?.port();
    let policy = bench_policy(&work, 9)?;
    let script = work.join("contain.py");
    std::fs::write(&script, CONTAIN)?;
    println!("containment latency, {trials} trials each: from the forbidden operation to the offending process dead (killed in the kernel for exec) and to the whole tree dead (a sleeping sibling, killed from user space with cgroup.kill), each seen through a pidfd");
    println!(
        "| trigger | offender dead median µs | p99 µs | tree dead median µs | p99 µs | max µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for kind in ["exec", "connect"] {
        let mut own = Vec::new();
        let mut lat = Vec::new();
        for _ in 0..trials {
            let mut child = Command::new(shieldd)
                .args(["run", "--policy"])
                .arg(&policy)
                .args(["--", crate::PY])
                .arg(&script)
                .args([kind, &fport.to_string()])
                .current_dir(&work)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let mut out = BufReader::new(child.stdout.take().context("stdout")?);
            let mut line = String::new();
            out.read_line(&mut line)?;
            let mut pids = line
                .split_whitespace()
                .map(|p| p.parse::<i32>().context("pid"));
            let sibling = pids.next().context("sibling pid")??;
            let agent = pids.next().context("agent pid")??;
            let pidfd = |pid: i32| -> Result<i32> {
                // SAFETY: pidfd_open on a pid we were just told; no memory passed.
                let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
                if fd < 0 {
                    bail!("pidfd_open: {}", std::io::Error::last_os_error());
                }
                Ok(fd)
            };
            let sfd = pidfd(sibling)?;
            let afd = pidfd(agent)?;
            child.stdin.as_mut().context("stdin")?.write_all(b"go\n")?;
            line.clear();
            out.read_line(&mut line)?;
            let t0: i64 = line.trim().parse().context("t0")?;
            let now = || {
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: clock_gettime fills the timespec we own.
                unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
                ts.tv_sec * 1_000_000_000 + ts.tv_nsec
            };
            let mut fds = [
                libc::pollfd {
                    fd: afd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sfd,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let (mut t_agent, mut t_sib) = (None, None);
            let deadline = now() + 5_000_000_000;
            while (t_agent.is_none() || t_sib.is_none()) && now() < deadline {
                for f in fds.iter_mut() {
                    f.revents = 0;
                }
                let active: Vec<usize> = [t_agent.is_none(), t_sib.is_none()]
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| **w)
                    .map(|(i, _)| i)
                    .collect();
                let mut set: Vec<libc::pollfd> =
                    active.iter().filter_map(|&i| fds.get(i).copied()).collect();
                // SAFETY: poll on pollfds we own, with their count.
                unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, 5000) };
                let t1 = now();
                for (slot, &i) in set.iter().zip(&active) {
                    if slot.revents & libc::POLLIN != 0 {
                        let v = Some((t1 - t0) as f64 / 1000.0);
                        if i == 0 {
                            t_agent = v;
                        } else {
                            t_sib = v;
                        }
                    }
                }
            }
            // SAFETY: closing the pidfds we opened.
            unsafe {
                libc::close(sfd);
                libc::close(afd);
            }
            if let (Some(a), Some(b)) = (t_agent, t_sib) {
                own.push(a);
                lat.push(b);
            }
            let _ = child.wait();
        }
        if lat.is_empty() {
            bail!("{kind}: the tree never died");
        }
        for v in [&mut own, &mut lat] {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        }
        let p = |v: &Vec<f64>, q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "| forbidden {kind} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            p(&own, 0.5),
            p(&own, 0.99),
            p(&lat, 0.5),
            p(&lat, 0.99),
            lat[lat.len() - 1]
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

const STORM: &str = r#"
import os, sys, time
n = int(sys.argv[1])
open("f.txt", "w").write("x")
t = time.perf_counter()
for _ in range(n):
    os.close(os.open("f.txt", os.O_RDONLY))
print(time.perf_counter() - t)
"#;

/// Issue 3: events per second through the whole pipeline (ring buffer,
/// pump, audit file) at the default ring size, and the loss count.
pub fn event_throughput(shieldd: &Path) -> Result<()> {
    let work = std::env::temp_dir().join("shieldd-bench-events");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let policy = bench_policy(&work, 9)?;
    let script = work.join("storm.py");
    std::fs::write(&script, STORM)?;
    println!("event throughput (opens recorded to the audit file, default 1 MiB ring)");
    println!("| opens | agent s | opens/s | open records | lost_events |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [50_000u64, 200_000] {
        let ev = work.join(format!("ev-{n}.jsonl"));
        let o = Command::new(shieldd)
            .args(["run", "--policy"])
            .arg(&policy)
            .arg("--events")
            .arg(&ev)
            .args(["--", crate::PY])
            .arg(&script)
            .arg(n.to_string())
            .current_dir(&work)
            .output()?;
        let secs: f64 = String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(f64::NAN);
        let text = std::fs::read_to_string(&ev).unwrap_or_default();
        let opens = text
            .lines()
            .filter(|l| l.contains("\"event\":\"open\"") && l.contains("f.txt"))
            .count();
        let lost: u64 = text
            .lines()
            .filter(|l| l.contains("\"event\":\"lost_events\""))
            .filter_map(|l| {
                l.split("\"count\":")
                    .nth(1)?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        println!(
            "| {n} | {secs:.3} | {:.0} | {opens} | {lost} |",
            n as f64 / secs
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// `shieldd run -- /bin/true` through a running daemon (kernel programs
/// loaded once) against standalone `shieldd run` (loaded per session) and
/// bare `/bin/true`, interleaved round by round.
/// A `shieldd daemon` with a temporary config, stopped (SIGTERM) on drop.
struct BenchDaemon {
    child: std::process::Child,
    dir: std::path::PathBuf,
    control: std::path::PathBuf,
}

impl BenchDaemon {
    fn start(shieldd: &Path, tag: &str) -> Result<BenchDaemon> {
        let dir = std::env::temp_dir().join(format!("shieldd-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("work"))?;
        let control = dir.join("control.sock");
        let cfg = dir.join("config.yaml");
        std::fs::write(
            &cfg,
            format!(
                "audit_dir: {d}/log\ncontrol_socket: {c}\nsession_socket_dir: {d}/sessions\nkeep_ended: 10s\ndbus: {{enabled: false}}\n",
                d = dir.display(),
                c = control.display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("daemon.log"))?;
        let child = Command::new(shieldd)
            .args(["daemon", "--config"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start shieldd daemon")?;
        let d = BenchDaemon {
            child,
            dir,
            control,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = Command::new(shieldd)
                .args(["sessions", "--control"])
                .arg(&d.control)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(d);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(anyhow::anyhow!(
            "the daemon did not come up: {}",
            std::fs::read_to_string(d.dir.join("daemon.log")).unwrap_or_default()
        ))
    }
}

impl Drop for BenchDaemon {
    fn drop(&mut self) {
        // SAFETY: signalling the daemon we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU time of this process's reaped children, microseconds.
fn children_cpu_us() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// CPU time of a process and its reaped children (the daemon and the
/// agents it waited for), microseconds, at clock-tick resolution.
fn cpu_with_children_us(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14-17 (11-14 after the name).
    let ticks: f64 = (11..=14)
        .map(|i| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks * 1e6 / hz)
}

/// CPU per launch, which a loaded machine does not inflate the way it does
/// wall time: `n` launches through the daemon, the `shieldd run` client's
/// CPU and the daemon's (with the agents it started and reaped), against
/// `n` bare `/bin/true`.
/// Returns (bare, client, daemon) microseconds per launch.
fn launch_cpu(
    shieldd: &Path,
    daemon: &BenchDaemon,
    work: &Path,
    n: usize,
) -> Result<(f64, f64, f64)> {
    let c0 = children_cpu_us();
    for _ in 0..n {
        time(&mut Command::new("/bin/true"))?;
    }
    let bare = (children_cpu_us() - c0) / n as f64;
    let d0 = cpu_with_children_us(daemon.child.id())?;
    let c0 = children_cpu_us();
    for _ in 0..n {
        time(
            Command::new(shieldd)
                .arg("run")
                .arg("--control")
                .arg(&daemon.control)
                .args(["--", "/bin/true"])
                .current_dir(work),
        )?;
    }
    let client = (children_cpu_us() - c0) / n as f64;
    // Ended sessions are cleaned up just after their caller is answered.
    std::thread::sleep(Duration::from_millis(200));
    let d = (cpu_with_children_us(daemon.child.id())? - d0) / n as f64;
    Ok((bare, client, d))
}

fn daemon_overhead(shieldd: &Path, rounds: usize) -> Result<()> {
    let daemon = BenchDaemon::start(shieldd, "daemon")?;
    let (work, control) = (daemon.dir.join("work"), daemon.control.clone());
    let mut cpu = None;
    let result = {
        (|| -> Result<(Vec<Duration>, Vec<Duration>, Vec<Duration>)> {
            let (mut bare, mut via, mut alone) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..rounds + 1 {
                let a = time(&mut Command::new("/bin/true"))?;
                let b = time(
                    Command::new(shieldd)
                        .arg("run")
                        .arg("--control")
                        .arg(&control)
                        .args(["--", "/bin/true"])
                        .current_dir(&work),
                )?;
                if i > 0 {
                    bare.push(a);
                    via.push(b);
                }
            }
            cpu = Some(launch_cpu(shieldd, &daemon, &work, rounds.max(100))?);
            // Apart: a standalone session loads and frees the eBPF programs,
            // and the kernel's teardown would land on the next command.
            for i in 0..rounds + 1 {
                let c = time(
                    Command::new(shieldd)
                        .args(["run", "--standalone", "--", "/bin/true"])
                        .current_dir(&work),
                )?;
                if i > 0 {
                    alone.push(c);
                }
            }
            Ok((bare, via, alone))
        })()
    };
    drop(daemon);
    let (mut bare, mut via, mut alone) = result?;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (mb, mv, ma) = (
        us(percentile(&mut bare, 0.5)),
        us(percentile(&mut via, 0.5)),
        us(percentile(&mut alone, 0.5)),
    );
    let (pb, pv, pa) = (
        us(percentile(&mut bare, 0.9)),
        us(percentile(&mut via, 0.9)),
        us(percentile(&mut alone, 0.9)),
    );
    println!("daemon launch overhead, {rounds} interleaved rounds of bare and through the daemon, then {rounds} standalone rounds (microseconds)");
    println!("| command | median | p90 | minus bare (median) |");
    println!("|---|---:|---:|---:|");
    println!("| /bin/true | {mb:.0} | {pb:.0} | - |");
    println!(
        "| shieldd run -- /bin/true through a running daemon | {mv:.0} | {pv:.0} | {:.0} |",
        mv - mb
    );
    println!(
        "| shieldd run --standalone -- /bin/true (monitor loaded per session) | {ma:.0} | {pa:.0} | {:.0} |",
        ma - mb
    );
    println!(
        "through daemon minus bare: {:.2} ms (target <= 5 ms)",
        (mv - mb) / 1000.0
    );
    if let Some((bare, client, d)) = cpu {
        println!(
            "CPU per launch (mean of {} runs; less sensitive to a loaded machine than wall time): /bin/true {bare:.0} us; through the daemon: client {client:.0} us + daemon and agent {d:.0} us = {:.0} us ({:.2} ms over bare)",
            rounds.max(100),
            client + d,
            (client + d - bare) / 1000.0
        );
    }
    Ok(())
}

/// Scan API under load through the daemon: N sessions, each an agent
/// (shield-client's `scan_load` example) scanning 1 KiB texts in a loop
/// through its own session socket, all started at once; total scans/s and
/// pooled latency, for 1 and for `sessions` concurrent sessions.
fn daemon_scan(shieldd: &Path, sessions: usize, secs: f64) -> Result<()> {
    super::sh(super::cargo().args([
        "build",
        "--release",
        "-p",
        "shield-client",
        "--example",
        "scan_load",
    ]))?;
    let agent = super::root().join("target/release/examples/scan_load");
    let daemon = BenchDaemon::start(shieldd, "daemon-scan")?;
    let work = daemon.dir.join("work");
    let policy = daemon.dir.join("agent.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nname: scan-load\nsandbox:\n  filesystem:\n    read: [/usr, /lib, /lib64, /etc, {bin}]\n    write: [./]\n  exec:\n    allow: [{agent}]\n",
            bin = agent.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            agent = agent.display()
        ),
    )?;
    println!("scan API through the daemon, 1 KiB inbound scans, {secs} s per figure, every session its own agent and socket (release)");
    println!("| sessions | scans/s (all sessions) | p50 µs | p99 µs | errors |");
    println!("|---:|---:|---:|---:|---:|");
    let mut single = (0.0, 0.0);
    for n in [1, sessions] {
        let go = work.join(format!("go-{n}"));
        let mut children = Vec::new();
        for i in 0..n {
            let child = Command::new(shieldd)
                .arg("run")
                .arg("--control")
                .arg(&daemon.control)
                .args([
                    "--session",
                    &format!("load-{}-{n}-{i}", std::process::id()),
                    "--policy",
                ])
                .arg(&policy)
                .arg("--")
                .arg(&agent)
                .arg(secs.to_string())
                .arg(&go)
                .current_dir(&work)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("shieldd run scan_load")?;
            children.push(child);
        }
        // Every session up (its socket answering) before the start signal.
        std::thread::sleep(Duration::from_millis(500 + 50 * n as u64));
        std::fs::write(&go, "")?;
        let (mut lat, mut scans, mut errors) = (Vec::new(), 0u64, 0u64);
        for c in children {
            let o = c.wait_with_output()?;
            let line = String::from_utf8_lossy(&o.stdout);
            let v: serde_json::Value = serde_json::from_str(line.trim()).with_context(|| {
                format!(
                    "a scan_load session said: {line} / {}",
                    String::from_utf8_lossy(&o.stderr)
                )
            })?;
            scans += v["scans"].as_u64().unwrap_or(0);
            errors += v["errors"].as_u64().unwrap_or(0);
            if let Some(a) = v["latencies_us"].as_array() {
                lat.extend(
                    a.iter()
                        .filter_map(|x| x.as_u64())
                        .map(Duration::from_micros),
                );
            }
        }
        if lat.is_empty() {
            return Err(anyhow::anyhow!("no scan completed with {n} sessions"));
        }
        let rate = scans as f64 / secs;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let p99 = us(percentile(&mut lat, 0.99));
        println!(
            "| {n} | {rate:.0} | {:.0} | {p99:.0} | {errors} |",
            us(percentile(&mut lat, 0.5)),
        );
        if n == 1 {
            single = (rate, p99);
        } else {
            println!(
                "{n} sessions / 1 session: throughput {:.2}, p99 {:.2}",
                rate / single.0,
                p99 / single.1
            );
        }
    }
    drop(daemon);
    Ok(())
}

/// A `shieldd serve` for the API benchmark, killed on drop.
struct ApiServer(std::process::Child, std::path::PathBuf);

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

fn api_server(shieldd: &Path, socket: &Path, policy: &Path) -> Result<ApiServer> {
    let child = Command::new(shieldd)
        .arg("serve")
        .arg("--socket")
        .arg(socket)
        .arg("--policy")
        .arg(policy)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let s = ApiServer(child, socket.to_path_buf());
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if Instant::now() > deadline {
            bail!("shieldd serve did not listen on {}", socket.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(s)
}

/// CPU time (user + system) the process has used, in microseconds.
fn cpu_us(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which may hold spaces: state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks * 1e6 / hz)
}

/// Requests the server has answered (its `stats` op).
fn served(socket: &Path) -> Result<f64> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"{\"id\":0,\"op\":\"stats\"}\n")?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line)?;
    let v: serde_json::Value = serde_json::from_str(&line)?;
    Ok(v["stats"]["requests"].as_f64().unwrap_or(0.0))
}

fn json_of(o: &std::process::Output, what: &str) -> Result<serde_json::Value> {
    if !o.status.success() {
        bail!(
            "{what} failed: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().last().context("no output")?;
    serde_json::from_str(line).with_context(|| format!("{what}: {line}"))
}

/// Issue 5: scan API round trips from Rust (blocking and async clients) and
/// from Python, beside the seed guide's scanner called in-process from
/// Python on the same texts; a 10-byte text and a policy with every scan
/// layer off show what the server costs beyond the scanner.
pub fn api_roundtrip(shieldd: &Path) -> Result<()> {
    let root = shieldd
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .context("repository root")?
        .to_path_buf();
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "-p",
            "shield-client",
            "--features",
            "async",
            "--example",
            "roundtrip",
        ])
        .current_dir(&root)
        .status()?;
    if !st.success() {
        bail!("building the roundtrip example failed");
    }
    let rust = root.join("target/release/examples/roundtrip");
    let pybench = root.join("shield-client/python/bench/roundtrip.py");
    let seed = [
        std::env::var("SEED_SCANNER").unwrap_or_default(),
        root.join("../shared/baselines/seed_scanner.py")
            .to_string_lossy()
            .into_owned(),
        "/work/shared/baselines/seed_scanner.py".into(),
    ]
    .into_iter()
    .find(|p| !p.is_empty() && Path::new(p).exists())
    .unwrap_or_default();
    let work = std::env::temp_dir().join(format!("shieldd-bench-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let off = work.join("scan-off.yaml");
    std::fs::write(
        &off,
        "version: 1\nname: scan-off\nscan:\n  inbound: { injection: off, pii: off, secrets: off, exfiltration: off }\n  outbound: { injection: off, pii: off, secrets: off, exfiltration: off }\n",
    )?;
    let support = root.join("policies/support-agent.yaml");
    let secs = "2";
    println!("scan API round trip (release; `shieldd serve`, Unix socket; {secs} s per throughput figure)");
    println!("| client | policy | text | p50 µs | p99 µs | server p50 µs | 1 client /s | 16 clients /s | 64 clients /s | 64 on 1 conn /s |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rust_1k = None;
    let mut cpu_rows = Vec::new();
    let mut py_rows = Vec::new();
    for (pname, policy, sizes) in [
        ("support-agent", &support, &[1024usize, 10][..]),
        ("scan off", &off, &[1024usize][..]),
    ] {
        let socket = work.join("api.sock");
        let srv = api_server(shieldd, &socket, policy)?;
        for &bytes in sizes {
            let (c0, r0) = (cpu_us(srv.0.id())?, served(&socket)?);
            let o = Command::new(&rust)
                .arg(&socket)
                .arg(secs)
                .args(["--text-bytes", &bytes.to_string(), "--json"])
                .output()?;
            let v = json_of(&o, "roundtrip")?;
            let (c1, r1) = (cpu_us(srv.0.id())?, served(&socket)?);
            cpu_rows.push(format!(
                "| {pname} | {bytes} B | {:.0} | {:.1} |",
                r1 - r0,
                (c1 - c0) / (r1 - r0).max(1.0)
            ));
            let rate = |k: &str, i: usize| v[k][i]["scans_per_s"].as_f64().unwrap_or(0.0);
            println!(
                "| Rust blocking | {pname} | {} B | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | - |",
                v["text_bytes"], v["p50_us"].as_f64().unwrap_or(0.0), v["p99_us"].as_f64().unwrap_or(0.0),
                v["server_p50_us"].as_f64().unwrap_or(0.0), rate("blocking", 0), rate("blocking", 1), rate("blocking", 2)
            );
            println!(
                "| Rust async | {pname} | {} B | - | - | - | {:.0} | {:.0} | {:.0} | {:.0} |",
                v["text_bytes"],
                rate("async", 0),
                rate("async", 1),
                rate("async", 2),
                rate("async", 3)
            );
            if pname == "support-agent" && bytes == 1024 {
                rust_1k = Some(v.clone());
            }
            if pname == "support-agent" {
                let mut c = Command::new(crate::PY);
                c.arg(&pybench)
                    .args(["--n", "2000", "--text-bytes", &bytes.to_string()])
                    .env("SHIELD_SOCKET", &socket);
                if !seed.is_empty() {
                    c.args(["--seed", &seed]);
                }
                let p = json_of(&c.output()?, "python bench")?;
                let pr = |k: &str| p["client_scans_per_s"][k].as_f64().unwrap_or(0.0);
                println!(
                    "| Python Shield | {pname} | {} B | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | - |",
                    p["text_bytes"], p["client_p50_us"].as_f64().unwrap_or(0.0), p["client_p99_us"].as_f64().unwrap_or(0.0),
                    p["server_latency_us_p50"].as_f64().unwrap_or(0.0), pr("1"), pr("16"), pr("64")
                );
                println!(
                    "| Python Shield, outbound | {pname} | {} B | {:.0} | {:.0} | - | - | - | - | - |",
                    p["text_bytes"], p["client_out_p50_us"].as_f64().unwrap_or(0.0), p["client_out_p99_us"].as_f64().unwrap_or(0.0)
                );
                if p.get("seed_inprocess_p50_us").is_some() {
                    println!(
                        "| seed scanner, in-process Python, inbound | - | {} B | {:.0} | {:.0} | - | - | - | - | - |",
                        p["text_bytes"], p["seed_inprocess_p50_us"].as_f64().unwrap_or(0.0), p["seed_inprocess_p99_us"].as_f64().unwrap_or(0.0)
                    );
                    println!(
                        "| seed scanner, in-process Python, outbound | - | {} B | {:.0} | {:.0} | - | - | - | - | - |",
                        p["text_bytes"], p["seed_out_inprocess_p50_us"].as_f64().unwrap_or(0.0), p["seed_out_inprocess_p99_us"].as_f64().unwrap_or(0.0)
                    );
                }
                py_rows.push(p);
            }
        }
    }
    // CPU per request is what the server costs whatever the machine's
    // load; wall-clock figures on a shared machine are not.
    println!("\nserver CPU per request over the Rust runs above (user + system)");
    println!("| policy | text | requests | server CPU µs per request |");
    println!("|---|---:|---:|---:|");
    for r in &cpu_rows {
        println!("{r}");
    }
    if let Some(v) = rust_1k {
        let p99 = v["p99_us"].as_f64().unwrap_or(f64::NAN);
        let t16 = v["blocking"][1]["scans_per_s"]
            .as_f64()
            .unwrap_or(0.0)
            .max(v["async"][1]["scans_per_s"].as_f64().unwrap_or(0.0));
        println!(
            "Rust p99, 1 KiB, one client: {p99:.0} µs (target < 200; ratio {:.2})",
            p99 / 200.0
        );
        println!(
            "16 clients, 1 KiB: {t16:.0} scans/s (target >= 50000; ratio {:.2})",
            t16 / 50_000.0
        );
    }
    for p in &py_rows {
        let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "Python round trip / seed in-process scan, {} B, p50: inbound {:.2}, outbound {:.2} (target < 1)",
            p["text_bytes"],
            f("client_p50_us") / f("seed_inprocess_p50_us"),
            f("client_out_p50_us") / f("seed_out_inprocess_p50_us"),
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
