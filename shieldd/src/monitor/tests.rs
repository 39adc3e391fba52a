//! Real-kernel tests: load the programs, attach them to a temporary cgroup
//! v2 directory, run real gated children in it and check what the kernel
//! did. They need root: without it they print SKIPPED, and under CI=true
//! they fail.

use super::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One kernel test at a time: they share the CPU budget and the loopback.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PY: &str = "/usr/bin/python3.11";

use crate::testing::root_or_skip;

/// A temporary cgroup under the v2 mount; its tasks are killed and the
/// directory removed on drop.
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn new(tag: &str) -> TestCgroup {
        let root = cgroup2_mount().expect("cgroup2 mount");
        let path = root.join(format!("shieldd-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).expect("create test cgroup");
        TestCgroup { path }
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string()).expect("move to cgroup");
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let procs = std::fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
            if procs.trim().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// `sh -c 'echo ready >&2; read x; SCRIPT'`: the shell waits on stdin
/// until the test has put it in the cgroup and tracked it, so SCRIPT
/// (usually an exec) runs watched from its first instruction. "ready" is
/// awaited first because spawn() returns before the kernel has finished
/// the exec of sh, and tracking it then would check sh itself.
fn gated(script: &str, cg: &TestCgroup, mon: &mut Monitor) -> Child {
    gated_in(script, cg, mon, DEFAULT_SLOT)
}

/// [`gated`] for a session slot.
fn gated_in(script: &str, cg: &TestCgroup, mon: &mut Monitor, slot: u32) -> Child {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo ready >&2; read x; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut ready = [0u8; 6];
    stderr.read_exact(&mut ready).expect("sh is ready");
    assert_eq!(&ready, b"ready\n");
    child.stderr = Some(stderr);
    cg.add(child.id());
    mon.track_pid_in(slot, child.id()).expect("track");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("open the gate");
    child
}

fn finish(mut child: Child) -> (ExitStatus, String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status, out, err)
}

fn py(code: &str) -> String {
    // Single-quoted for sh; the test programs contain no single quote.
    assert!(!code.contains('\''));
    format!("exec {PY} -c '{code}'")
}

/// Drain events through the async path until `quiet` passes without one.
async fn drain(mon: &mut Monitor, quiet: Duration) -> Vec<Event> {
    let mut v = Vec::new();
    while let Ok(Ok(ev)) = tokio::time::timeout(quiet, mon.next_event()).await {
        v.push(ev);
    }
    v
}

fn free_port_tcp() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("tcp listener")
}

fn port_of(a: std::io::Result<SocketAddr>) -> u16 {
    a.expect("local addr").port()
}

#[test]
fn monitor_and_stream_can_move_between_tasks() {
    fn send<T: Send>() {}
    send::<Monitor>();
    send::<EventStream>();
}

#[test]
fn bpf_lsm_detection_reads_the_lsm_list() {
    assert!(lsm_list_has_bpf("lockdown,capability,landlock,bpf\n"));
    assert!(!lsm_list_has_bpf("lockdown,capability,bpfx,landlock"));
    assert!(!lsm_list_has_bpf(""));
}

#[test]
fn load_fails_cleanly_on_bad_config() {
    let cfg = MonitorConfig {
        ring_bytes: 1000,
        ..MonitorConfig::default()
    };
    assert!(matches!(Monitor::load(&cfg), Err(MonitorError::Config(_))));
}

#[test]
fn cgroup2_mount_is_found() {
    let p = cgroup2_mount().expect("a cgroup2 mount");
    assert!(p.join("cgroup.procs").exists(), "{}", p.display());
}

#[tokio::test]
async fn network_rules_enforced_in_kernel() {
    if !root_or_skip("network_rules_enforced_in_kernel") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("net");
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    mon.attach_cgroup(&cg.path).expect("attach");

    let allowed = free_port_tcp();
    let denied = free_port_tcp();
    let udp_allowed = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let udp_denied = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).ok();
    for l in [&allowed, &denied] {
        l.set_nonblocking(true).expect("nonblocking");
    }
    for u in [&udp_allowed, &udp_denied] {
        u.set_nonblocking(true).expect("nonblocking");
    }
    let a = port_of(allowed.local_addr());
    let b = port_of(denied.local_addr());
    let ua = port_of(udp_allowed.local_addr());
    let ud = port_of(udp_denied.local_addr());
    let v6p = v6.as_ref().map(|l| port_of(l.local_addr())).unwrap_or(9);
    // Bind ports: one allowed, one not (both free right now).
    let bind_ok = port_of(free_port_tcp().local_addr());
    let bind_no = port_of(free_port_tcp().local_addr());

    mon.set_connect_rules(&[
        ConnectRule {
            net: "127.0.0.1/32".parse().expect("net"),
            port: Some(a),
            protocol: Some(Protocol::Tcp),
        },
        ConnectRule {
            net: "127.0.0.1/32".parse().expect("net"),
            port: Some(ua),
            protocol: Some(Protocol::Udp),
        },
    ])
    .expect("rules");
    mon.set_bind_ports(&[bind_ok]).expect("bind ports");

    let code = format!(
        r#"
import socket
def tcp(name, fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(addr)
        s.sendall(b"hello-" + name.encode())
        print(name + ":ok")
    except OSError as e:
        print(name + ":" + str(e.errno))
    s.close()
def udp(name, fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.sendto(b"hello-" + name.encode(), addr)
        print(name + ":ok")
    except OSError as e:
        print(name + ":" + str(e.errno))
    s.close()
def sock(name, *a):
    try:
        socket.socket(*a).close()
        print(name + ":ok")
    except OSError as e:
        print(name + ":" + str(e.errno))
def bind(name, port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(name + ":ok")
    except OSError as e:
        print(name + ":" + str(e.errno))
    s.close()
tcp("tcp_allowed", socket.AF_INET, ("127.0.0.1", {a}))
tcp("tcp_denied", socket.AF_INET, ("127.0.0.1", {b}))
udp("udp_allowed", socket.AF_INET, ("127.0.0.1", {ua}))
udp("udp_denied", socket.AF_INET, ("127.0.0.1", {ud}))
tcp("udp_port_over_tcp", socket.AF_INET, ("127.0.0.1", {ua}))
tcp("v6_denied", socket.AF_INET6, ("::1", {v6p}))
tcp("mapped_denied", socket.AF_INET6, ("::ffff:127.0.0.1", {b}))
udp("mapped_udp_denied", socket.AF_INET6, ("::ffff:127.0.0.1", {ud}))
tcp("mapped_allowed", socket.AF_INET6, ("::ffff:127.0.0.1", {a}))
sock("raw", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock("plain_udp", socket.AF_INET, socket.SOCK_DGRAM, 0)
bind("bind_allowed", {bind_ok})
bind("bind_denied", {bind_no})
sock("packet", socket.AF_PACKET, socket.SOCK_RAW, 0)
"#
    );
    let child = gated(&py(&code), &cg, &mut mon);
    let pid = child.id();
    let (status, out, err) = finish(child);
    // The packet socket, last, gets the process killed as socket() returns.
    assert_eq!(status.signal(), Some(9), "child: {status:?} {err}");
    let results: std::collections::HashMap<&str, &str> =
        out.lines().filter_map(|l| l.split_once(':')).collect();
    let eperm = "1";
    assert_eq!(results.get("tcp_allowed"), Some(&"ok"), "{out}");
    assert_eq!(results.get("tcp_denied"), Some(&eperm), "{out}");
    assert_eq!(results.get("udp_allowed"), Some(&"ok"), "{out}");
    assert_eq!(results.get("udp_denied"), Some(&eperm), "{out}");
    // A UDP rule does not open the same port to TCP.
    assert_eq!(results.get("udp_port_over_tcp"), Some(&eperm), "{out}");
    assert_eq!(results.get("v6_denied"), Some(&eperm), "{out}");
    assert_eq!(results.get("mapped_denied"), Some(&eperm), "{out}");
    assert_eq!(results.get("mapped_udp_denied"), Some(&eperm), "{out}");
    // The mapped form of an allowed v4 destination is the same destination.
    assert_eq!(results.get("mapped_allowed"), Some(&"ok"), "{out}");
    assert_eq!(results.get("raw"), Some(&eperm), "{out}");
    assert_eq!(results.get("packet"), None, "{out}");
    assert_eq!(results.get("plain_udp"), Some(&"ok"), "{out}");
    assert_eq!(results.get("bind_allowed"), Some(&"ok"), "{out}");
    assert_eq!(results.get("bind_denied"), Some(&eperm), "{out}");

    // The refused listeners received nothing; the allowed ones did.
    assert!(matches!(denied.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock));
    if let Some(l) = &v6 {
        l.set_nonblocking(true).expect("nonblocking");
        assert!(matches!(l.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock));
    }
    let mut buf = [0u8; 64];
    assert!(matches!(udp_denied.recv(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock));
    let n = udp_allowed.recv(&mut buf).expect("allowed datagram");
    assert_eq!(&buf[..n], b"hello-udp_allowed");
    assert!(allowed.accept().is_ok());

    let events = drain(&mut mon, Duration::from_millis(300)).await;
    let net = |port: u16| {
        events.iter().find(|e| {
            e.meta.pid == pid
                && matches!(e.kind, EventKind::Net { op: NetOp::Connect, port: p, .. } if p == port)
        })
    };
    let d = net(b).expect("connect event for the denied port");
    assert!(d.meta.denied && d.meta.violation);
    let ok = net(a).expect("connect event for the allowed port");
    assert!(!ok.meta.denied && !ok.meta.violation);
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::Socket {
            family: 2,
            sock_type: 3,
            ..
        }
    ) && e.meta.denied));
    assert!(events
        .iter()
        .any(|e| matches!(e.kind, EventKind::Socket { family: 17, .. }) && e.meta.killed));
    assert_eq!(mon.lost_events().expect("lost"), 0);
}

#[tokio::test]
async fn isolate_refuses_allowed_destinations() {
    if !root_or_skip("isolate_refuses_allowed_destinations") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("iso");
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    mon.attach_cgroup(&cg.path).expect("attach");
    let l = free_port_tcp();
    let a = port_of(l.local_addr());
    mon.set_connect_rules(&[ConnectRule::host("127.0.0.1".parse().expect("ip"), Some(a))])
        .expect("rules");
    let code = format!(
        "import socket\ntry:\n    socket.create_connection((\"127.0.0.1\", {a}), 3).close()\n    print(\"ok\")\nexcept OSError as e:\n    print(e.errno)"
    );
    let (st, out, _) = finish(gated(&py(&code), &cg, &mut mon));
    assert!(st.success());
    assert_eq!(out.trim(), "ok", "allowed before isolation");

    mon.set_isolated(true).expect("isolate");
    let (st, out, _) = finish(gated(&py(&code), &cg, &mut mon));
    assert!(st.success());
    assert_eq!(out.trim(), "1", "EPERM once isolated");
    let events = drain(&mut mon, Duration::from_millis(300)).await;
    assert!(events.iter().any(|e| e.meta.isolated && e.meta.denied));

    mon.set_isolated(false).expect("release");
    let (_, out, _) = finish(gated(&py(&code), &cg, &mut mon));
    assert_eq!(out.trim(), "ok", "allowed again after release");
}

fn exec_monitor(cg: &TestCgroup, allow: &[PathRule]) -> Monitor {
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    mon.attach_cgroup(&cg.path).expect("attach");
    mon.set_exec_allow(allow).expect("exec allow");
    mon
}

fn killed_silently(st: ExitStatus, out: &str) {
    assert_eq!(st.signal(), Some(9), "expected SIGKILL, got {st:?}");
    assert_eq!(out, "", "the forbidden program must not print anything");
}

#[tokio::test]
async fn disallowed_exec_is_killed_before_it_runs() {
    if !root_or_skip("disallowed_exec_is_killed_before_it_runs") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("exec");
    let mut mon = exec_monitor(&cg, &[PathRule::Exact(PY.into())]);

    let child = gated("exec /bin/echo SHOULD_NOT_PRINT", &cg, &mut mon);
    let pid = child.id();
    let (st, out, _) = finish(child);
    killed_silently(st, &out);

    // The look-alike that must not fire: an allowed program runs normally.
    let (st, out, _) = finish(gated(&py("print(\"alive\")"), &cg, &mut mon));
    assert!(st.success(), "{st:?}");
    assert_eq!(out, "alive\n");

    let events = drain(&mut mon, Duration::from_millis(300)).await;
    let ev = events
        .iter()
        .find(|e| e.meta.pid == pid && matches!(e.kind, EventKind::Exec { .. }))
        .expect("exec event");
    assert!(ev.meta.violation && ev.meta.killed);
    match &ev.kind {
        EventKind::Exec {
            path,
            filename,
            argv,
        } => {
            assert_eq!(path, "/usr/bin/echo");
            assert_eq!(filename, "/bin/echo");
            assert_eq!(argv, &["/bin/echo", "SHOULD_NOT_PRINT"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::Exec { path, .. } if path == PY)
        && !e.meta.violation));
}

#[test]
fn exec_through_the_dynamic_loader_is_killed() {
    if !root_or_skip("exec_through_the_dynamic_loader_is_killed") {
        return;
    }
    let _g = SERIAL.blocking_lock();
    let cg = TestCgroup::new("ldso");
    // /bin/echo itself is allowed: only the loader path is the violation.
    let mut mon = exec_monitor(
        &cg,
        &[
            PathRule::Exact(PY.into()),
            PathRule::Exact("/bin/echo".into()),
        ],
    );
    let (st, out, _) = finish(gated(
        "exec /lib64/ld-linux-x86-64.so.2 /bin/echo VIA_LOADER",
        &cg,
        &mut mon,
    ));
    killed_silently(st, &out);
    let (st, out, _) = finish(gated("exec /bin/echo direct", &cg, &mut mon));
    assert!(st.success());
    assert_eq!(out, "direct\n");
}

#[test]
fn loader_is_denied_inside_an_allowed_directory() {
    if !root_or_skip("loader_is_denied_inside_an_allowed_directory") {
        return;
    }
    let _g = SERIAL.blocking_lock();
    let cg = TestCgroup::new("ldso-dir");
    // The whole of /usr is executable, as with the default policy...
    let mut mon = exec_monitor(&cg, &[PathRule::Dir("/usr".into())]);
    let loaders = dynamic_loaders();
    assert!(
        loaders
            .iter()
            .any(|l| matches!(l, PathRule::Exact(p) if p.ends_with("ld-linux-x86-64.so.2"))),
        "{loaders:?}"
    );
    // ...but the loader is not.
    mon.set_exec_deny(&loaders).expect("exec deny");
    let (st, out, _) = finish(gated(
        "exec /lib64/ld-linux-x86-64.so.2 /bin/echo VIA_LOADER",
        &cg,
        &mut mon,
    ));
    killed_silently(st, &out);
    let (st, out, _) = finish(gated("exec /bin/echo direct", &cg, &mut mon));
    assert!(st.success());
    assert_eq!(out, "direct\n");
}

#[tokio::test]
async fn memfd_exec_is_killed() {
    if !root_or_skip("memfd_exec_is_killed") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("memfd");
    let mut mon = exec_monitor(&cg, &[PathRule::Exact(PY.into())]);
    let code = "import os\nfd = os.memfd_create(\"payload\", 0)\nos.write(fd, open(\"/bin/echo\", \"rb\").read())\nos.execv(\"/proc/self/fd/%d\" % fd, [\"echo\", \"FROM_MEMFD\"])";
    let child = gated(&py(code), &cg, &mut mon);
    let pid = child.id();
    let (st, out, _) = finish(child);
    killed_silently(st, &out);
    let events = drain(&mut mon, Duration::from_millis(300)).await;
    let paths: Vec<&str> = events
        .iter()
        .filter(|e| e.meta.pid == pid && e.meta.killed)
        .filter_map(|e| match &e.kind {
            EventKind::Exec { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(paths, ["/memfd:payload"]);
}

#[tokio::test]
async fn fork_tree_is_tracked_after_double_fork() {
    if !root_or_skip("fork_tree_is_tracked_after_double_fork") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("fork");
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    // Tracked by pid only: the cgroup is not attached here, so the fork
    // hook is what keeps the grandchild in the tree.
    let marker = format!("/tmp/shieldd-fork-marker-{}", std::process::id());
    std::fs::write(&marker, "x").expect("marker");
    let code = format!(
        "import os, time\npid = os.fork()\nif pid == 0:\n    if os.fork() == 0:\n        time.sleep(0.3)\n        open(\"{marker}\").close()\n        os._exit(3)\n    os._exit(0)\nos.waitpid(pid, 0)\ntime.sleep(0.8)"
    );
    let child = gated(&py(&code), &cg, &mut mon);
    let top = child.id();
    // The test process itself opens the marker: untracked, must not show.
    std::fs::read(&marker).expect("read marker");
    let (st, _, err) = finish(child);
    assert!(st.success(), "{err}");
    let events = drain(&mut mon, Duration::from_millis(300)).await;
    let _ = std::fs::remove_file(&marker);

    let forks: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Fork { child_pid } => Some((e.meta.pid, child_pid)),
            _ => None,
        })
        .collect();
    let mid = forks
        .iter()
        .find(|(p, _)| *p == top)
        .map(|f| f.1)
        .expect("fork of the agent");
    let grand = forks
        .iter()
        .find(|(p, _)| *p == mid)
        .map(|f| f.1)
        .expect("fork of the child");
    let opens: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Open { path, .. } if *path == marker))
        .collect();
    assert_eq!(opens.len(), 1, "only the grandchild's open: {opens:?}");
    assert_eq!(opens[0].meta.pid, grand);
    let exit_of = |pid: u32| {
        events.iter().find_map(|e| match e.kind {
            EventKind::Exit { exit_code } if e.meta.pid == pid => Some(exit_code),
            _ => None,
        })
    };
    assert_eq!(exit_of(mid), Some(0));
    assert_eq!(exit_of(grand), Some(3 << 8));
    assert_eq!(exit_of(top), Some(0));
    assert!(!mon.is_tracked(grand), "exit removes the pid");
}

#[tokio::test]
async fn denied_paths_are_reported_and_killed() {
    if !root_or_skip("denied_paths_are_reported_and_killed") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("deny");
    let base = PathBuf::from(format!("/tmp/shieldd-deny-{}", std::process::id()));
    let dir = base.join("secrets");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("key"), "k").expect("file");
    std::fs::write(base.join("secretsx"), "not denied").expect("sibling");
    let link = base.join("innocent-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(dir.join("key"), &link).expect("symlink");

    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    mon.attach_cgroup(&cg.path).expect("attach");
    mon.set_deny_paths(&[PathRule::Dir(dir.clone())])
        .expect("deny");
    let b = base.display();
    let code = format!(
        "import os\nopen(\"{b}/secretsx\").close()\nopen(\"{b}/secrets/key\").close()\nos.chdir(\"{b}\")\nopen(\"secrets/key\").close()\nopen(\"innocent-link\").close()\nd = os.open(\"secrets\", os.O_RDONLY)\nos.close(os.open(\"key\", os.O_RDONLY, dir_fd=d))\nprint(\"done\")"
    );
    let (st, out, err) = finish(gated(&py(&code), &cg, &mut mon));
    assert!(st.success(), "{err}");
    assert_eq!(out, "done\n");
    let events = drain(&mut mon, Duration::from_millis(300)).await;
    let opens = opens_under(&events, &b.to_string());
    let key = dir.join("key").display().to_string();
    let sibling = format!("{b}/secretsx");
    let linkp = link.display().to_string();
    assert!(opens.contains(&(sibling, false)), "{opens:?}");
    // Absolute, relative (joined to the cwd), through a symlink (resolved
    // after the open) and relative to a directory fd: four violations
    // naming the real file.
    assert_eq!(
        opens.iter().filter(|o| o.0 == key && o.1).count(),
        4,
        "{opens:?}"
    );
    assert!(opens.contains(&(linkp, false)), "{opens:?}");

    // With the kill response the process dies before it can use the file.
    mon.set_response(KernelResponse {
        exec_kill: true,
        file_kill: true,
    })
    .expect("response");
    let code = format!("open(\"{key}\").close()\nprint(\"after\")");
    let (st, out, _) = finish(gated(&py(&code), &cg, &mut mon));
    killed_silently(st, &out);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn lost_events_are_counted() {
    if !root_or_skip("lost_events_are_counted") {
        return;
    }
    let _g = SERIAL.blocking_lock();
    let cg = TestCgroup::new("lost");
    // One page of ring: about a dozen open records fit.
    let cfg = MonitorConfig {
        ring_bytes: 4096,
        ..MonitorConfig::default()
    };
    let mut mon = Monitor::load(&cfg).expect("load");
    mon.attach_cgroup(&cg.path).expect("attach");
    assert_eq!(mon.lost_events().expect("lost"), 0);
    let code = "for i in range(300):\n    open(\"/etc/hostname\").close()";
    let (st, _, _) = finish(gated(&py(code), &cg, &mut mon));
    assert!(st.success());
    let mut received = 0u64;
    while mon.try_next_event().is_some() {
        received += 1;
    }
    let lost = mon.lost_events().expect("lost");
    assert!(received > 0 && received < 300, "received {received}");
    assert!(lost >= 300 - received, "lost {lost}, received {received}");
}

#[tokio::test]
async fn event_storm_is_delivered_without_loss() {
    if !root_or_skip("event_storm_is_delivered_without_loss") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("storm");
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    mon.attach_cgroup(&cg.path).expect("attach");
    let marker = format!("/tmp/shieldd-storm-{}", std::process::id());
    std::fs::write(&marker, "x").expect("marker");

    // Read in another task while the storm runs, as the daemon will.
    let mut stream = mon.take_event_stream().expect("stream");
    assert!(mon.take_event_stream().is_none());
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let m2 = marker.clone();
    let reader = tokio::spawn(async move {
        let (mut execs, mut opens) = (0u32, 0u32);
        loop {
            tokio::select! {
                ev = stream.next_event() => match ev {
                    Ok(Event { kind: EventKind::Exec { path, .. }, .. }) if path == "/usr/bin/cat" => execs += 1,
                    Ok(Event { kind: EventKind::Open { path, .. }, .. }) if path == m2 => opens += 1,
                    Ok(_) => {}
                    Err(e) => panic!("{e}"),
                },
                _ = &mut rx => {
                    // Drain what is already there, then stop.
                    while let Some(ev) = stream.try_next_event() {
                        match ev.kind {
                            EventKind::Exec { path, .. } if path == "/usr/bin/cat" => execs += 1,
                            EventKind::Open { path, .. } if path == m2 => opens += 1,
                            _ => {}
                        }
                    }
                    return (execs, opens);
                }
            }
        }
    });
    let n = 300;
    let child = gated(
        &format!("i=0; while [ $i -lt {n} ]; do /bin/cat {marker} >/dev/null; i=$((i+1)); done"),
        &cg,
        &mut mon,
    );
    let (st, _, err) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .expect("join");
    assert!(st.success(), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tx.send(());
    let (execs, opens) = reader.await.expect("reader");
    let _ = std::fs::remove_file(&marker);
    let lost = mon.lost_events().expect("lost");
    assert_eq!(lost, 0);
    assert_eq!((execs, opens), (n, n));
}

#[test]
fn policy_rules_apply_to_a_live_monitor() {
    if !root_or_skip("policy_rules_apply_to_a_live_monitor") {
        return;
    }
    let _g = SERIAL.blocking_lock();
    let cg = TestCgroup::new("apply");
    let mut sandbox = crate::policy::Sandbox::default();
    sandbox.filesystem.read = vec![crate::policy::PolicyPath("/usr".into())];
    let base = crate::policy::ResolveBase {
        home: "/root".into(),
        cwd: "/".into(),
    };
    let rules = MonitorRules::from_policy(
        &sandbox,
        &crate::policy::ResponsePolicy::default(),
        &base,
        |_| vec![],
    )
    .expect("rules");
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    mon.attach_cgroup(&cg.path).expect("attach");
    mon.apply(&rules).expect("apply");

    let (st, out, _) = finish(gated("exec /bin/echo under-usr", &cg, &mut mon));
    assert!(st.success());
    assert_eq!(out, "under-usr\n");
    // The same binary copied outside the read paths may not run.
    let dir = PathBuf::from(format!("/tmp/shieldd-apply-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy("/bin/echo", dir.join("echo")).expect("copy");
    let (st, out, _) = finish(gated(
        &format!("exec {}/echo copied", dir.display()),
        &cg,
        &mut mon,
    ));
    let _ = std::fs::remove_dir_all(&dir);
    killed_silently(st, &out);
}

#[tokio::test]
async fn quiet_deny_checks_at_exit_and_hooks_follow_need() {
    if !root_or_skip("quiet_deny_checks_at_exit_and_hooks_follow_need") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("quietdeny");
    let base = PathBuf::from(format!("/tmp/shieldd-qdeny-{}", std::process::id()));
    let dir = base.join("secrets");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("key"), "k").expect("file");
    std::fs::write(base.join("secretsx"), "not denied").expect("sibling");
    let link = base.join("innocent-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(dir.join("key"), &link).expect("symlink");

    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    // Nothing tracked yet: no slot is live, the hooks stay detached.
    assert!(!mon.syscall_hooks_attached());
    mon.attach_cgroup(&cg.path).expect("attach");
    // Recording (not quiet): the syscall hooks are needed for open events.
    assert!(mon.syscall_hooks_attached());
    mon.set_quiet(true).expect("quiet");
    // Quiet with no deny paths: nothing to do per syscall, hooks detached.
    assert!(!mon.syscall_hooks_attached());
    mon.set_deny_paths(&[PathRule::Dir(dir.clone())])
        .expect("deny");
    assert!(mon.syscall_hooks_attached());
    let b = base.display();
    let code = format!(
        "import os\nopen(\"{b}/secretsx\").close()\nopen(\"{b}/secrets/key\").close()\nos.chdir(\"{b}\")\nopen(\"secrets/key\").close()\nopen(\"innocent-link\").close()\ntry:\n    open(\"secrets/missing\")\nexcept OSError:\n    pass\ntry:\n    open(\"nothing-here\")\nexcept OSError:\n    pass\nprint(\"done\")"
    );
    let (st, out, err) = finish(gated(&py(&code), &cg, &mut mon));
    assert!(st.success(), "{err}");
    assert_eq!(out, "done\n");
    let events = drain(&mut mon, Duration::from_millis(300)).await;
    let opens = opens_under(&events, &b.to_string());
    let key = dir.join("key").display().to_string();
    // Successful opens (absolute, relative, through a symlink): the file
    // actually opened; the failed one: the path as given, joined to the cwd.
    // Quiet: nothing but violations is sent.
    assert_eq!(
        opens.iter().filter(|o| o.0 == key && o.1).count(),
        3,
        "{opens:?}"
    );
    assert!(
        opens.contains(&(format!("{b}/secrets/missing"), true)),
        "{opens:?}"
    );
    assert_eq!(opens.len(), 4, "{opens:?}");

    // The kill response still applies when the check runs at exit.
    mon.set_response(KernelResponse {
        exec_kill: true,
        file_kill: true,
    })
    .expect("response");
    let code = format!("open(\"{key}\").close()\nprint(\"after\")");
    let (st, out, _) = finish(gated(&py(&code), &cg, &mut mon));
    killed_silently(st, &out);

    mon.set_deny_paths(&[]).expect("no deny");
    assert!(!mon.syscall_hooks_attached());
    mon.set_quiet(false).expect("recording");
    assert!(mon.syscall_hooks_attached());
    let _ = std::fs::remove_dir_all(&base);
}

fn exec_rules(allow: &[&str]) -> MonitorRules {
    MonitorRules {
        connect: Vec::new(),
        bind: Vec::new(),
        exec_allow: allow.iter().map(|p| PathRule::Exact(p.into())).collect(),
        exec_deny: Vec::new(),
        deny_paths: Vec::new(),
        response: KernelResponse::default(),
    }
}

#[tokio::test]
async fn sessions_share_one_load_with_their_own_rules() {
    if !root_or_skip("sessions_share_one_load_with_their_own_rules") {
        return;
    }
    let _g = SERIAL.lock().await;
    let (cga, cgb) = (TestCgroup::new("slot-a"), TestCgroup::new("slot-b"));
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    let a = mon.free_slot().expect("slot");
    let ha = mon
        .add_session(a, Some(&cga.path), &exec_rules(&[PY]), false)
        .expect("session a");
    let b = mon.free_slot().expect("slot");
    assert_ne!(a, b);
    let hb = mon
        .add_session(
            b,
            Some(&cgb.path),
            &exec_rules(&[PY, "/usr/bin/echo"]),
            false,
        )
        .expect("session b");
    assert!(mon.add_session(a, None, &exec_rules(&[]), false).is_err());

    // echo is allowed in b only.
    let ca = gated_in("exec /bin/echo FROM_A", &cga, &mut mon, a);
    let pa = ca.id();
    let (st, out, _) = finish(ca);
    killed_silently(st, &out);
    let cb = gated_in("exec /bin/echo FROM_B", &cgb, &mut mon, b);
    let pb = cb.id();
    let (st, out, _) = finish(cb);
    assert!(st.success(), "{st:?}");
    assert_eq!(out, "FROM_B\n");

    let events = drain(&mut mon, Duration::from_millis(300)).await;
    let exec_of = |pid| {
        events
            .iter()
            .find(|e| e.meta.pid == pid && matches!(e.kind, EventKind::Exec { .. }))
            .expect("exec event")
    };
    let (ea, eb) = (exec_of(pa), exec_of(pb));
    assert_eq!((ea.meta.slot, ea.meta.violation), (a, true));
    assert_eq!((eb.meta.slot, eb.meta.violation), (b, false));

    // Removing b clears its rules: its slot is inert, echo is killed there now.
    assert_eq!(ha.slot(), a);
    mon.remove_session(hb).expect("remove b");
    assert_eq!(mon.free_slot(), Some(b));
    let (st, out, _) = finish(gated_in("exec /bin/echo AFTER", &cgb, &mut mon, b));
    killed_silently(st, &out);
    // a is untouched by b's removal: python still runs there.
    let (st, out, _) = finish(gated_in(&py("print(1)"), &cga, &mut mon, a));
    assert!(st.success(), "{st:?}");
    assert_eq!(out, "1\n");
}

#[tokio::test]
async fn syscall_hooks_follow_every_live_session() {
    if !root_or_skip("syscall_hooks_follow_every_live_session") {
        return;
    }
    let _g = SERIAL.lock().await;
    let (cga, cgb) = (TestCgroup::new("hooks-a"), TestCgroup::new("hooks-b"));
    let base = PathBuf::from(format!("/tmp/shieldd-hooks-{}", std::process::id()));
    let dir = base.join("secrets");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("key"), "k").expect("file");
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    assert!(!mon.syscall_hooks_attached());

    // a: quiet, no deny paths; b: quiet with a deny path. Only b needs them.
    let a = mon.free_slot().expect("slot");
    let ha = mon
        .add_session(a, Some(&cga.path), &exec_rules(&[PY]), true)
        .expect("session a");
    assert!(!mon.syscall_hooks_attached());
    let b = mon.free_slot().expect("slot");
    let mut rb = exec_rules(&[PY]);
    rb.deny_paths = vec![PathRule::Dir(dir.clone())];
    let hb = mon
        .add_session(b, Some(&cgb.path), &rb, true)
        .expect("session b");
    assert!(mon.syscall_hooks_attached());

    // The check reads the config of the opener's own slot: b's open of the
    // denied file is a violation of b; the same open in a is nothing.
    let key = dir.join("key").display().to_string();
    let code = format!("open(\"{key}\").close()\nprint(\"ok\")");
    let ca = gated_in(&py(&code), &cga, &mut mon, a);
    let pa = ca.id();
    let (st, out, err) = finish(ca);
    assert!(st.success(), "{err}");
    assert_eq!(out, "ok\n");
    let cb = gated_in(&py(&code), &cgb, &mut mon, b);
    let pb = cb.id();
    let (st, out, err) = finish(cb);
    assert!(st.success(), "{err}");
    assert_eq!(out, "ok\n");
    let events = drain(&mut mon, Duration::from_millis(300)).await;
    let opens_of = |pid: u32| {
        events
            .iter()
            .filter(|e| {
                e.meta.pid == pid && matches!(&e.kind, EventKind::Open { path, .. } if *path == key)
            })
            .map(|e| (e.meta.slot, e.meta.violation))
            .collect::<Vec<_>>()
    };
    assert_eq!(opens_of(pa), Vec::<(u32, bool)>::new());
    assert_eq!(opens_of(pb), vec![(b, true)]);

    // b leaves: a alone needs nothing. a starts recording: needed again.
    mon.remove_session(hb).expect("remove b");
    assert!(!mon.syscall_hooks_attached());
    mon.set_quiet_in(a, false).expect("recording");
    assert!(mon.syscall_hooks_attached());
    mon.remove_session(ha).expect("remove a");
    assert!(!mon.syscall_hooks_attached());
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test]
async fn daemon_keeps_syscall_hooks_between_sessions() {
    if !root_or_skip("daemon_keeps_syscall_hooks_between_sessions") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("sticky");
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    mon.keep_syscall_hooks(true);
    // Nothing needs them yet: not attached just because they are sticky.
    assert!(!mon.syscall_hooks_attached());
    let slot = mon.free_slot().expect("slot");
    let mut rules = exec_rules(&[PY]);
    rules.deny_paths = vec![PathRule::Dir(PathBuf::from("/nonexistent-shieldd-sticky"))];
    let h = mon
        .add_session(slot, Some(&cg.path), &rules, true)
        .expect("session");
    assert!(mon.syscall_hooks_attached());
    mon.remove_session(h).expect("remove");
    assert!(
        mon.syscall_hooks_attached(),
        "sticky hooks stay attached when the last session that needed them leaves"
    );
}

#[tokio::test]
async fn many_sessions_each_get_their_loader_rules() {
    if !root_or_skip("many_sessions_each_get_their_loader_rules") {
        return;
    }
    let _g = SERIAL.lock().await;
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");
    let mut rules = exec_rules(&[PY]);
    rules.exec_deny = (0..4)
        .map(|i| PathRule::Exact(format!("/usr/lib/ld-shieldd-test-{i}.so").into()))
        .collect();
    // More sessions than the programs' built-in default of 64 loader
    // entries allows: every map is sized for every slot.
    let mut handles = Vec::new();
    for _ in 0..100 {
        let slot = mon.free_slot().expect("slot");
        handles.push(
            mon.add_session(slot, None, &rules, true)
                .unwrap_or_else(|e| panic!("session {slot}: {e}")),
        );
    }
    for h in handles {
        mon.remove_session(h).expect("remove");
    }
}

/// Events of one slot read from the ring until it is empty.
fn count_slot_events(mon: &mut Monitor, slot: u32) -> u64 {
    let mut n = 0u64;
    while let Some(ev) = mon.try_next_event() {
        if ev.meta.slot == slot {
            n += 1;
        }
    }
    n
}

#[test]
fn lost_events_are_charged_to_the_storming_session() {
    if !root_or_skip("lost_events_are_charged_to_the_storming_session") {
        return;
    }
    let _g = SERIAL.blocking_lock();
    let (cga, cgb) = (TestCgroup::new("lost-a"), TestCgroup::new("lost-b"));
    // A storm of 300 opens by the shell itself (a redirection, no fork):
    // the same records every run.
    let storm = "i=0; while [ $i -lt 300 ]; do : < /etc/hostname; i=$((i+1)); done";
    let rules = exec_rules(&[]);
    let mut rules = rules;
    rules.response.exec_kill = false;

    // What the storm emits, counted with a ring large enough to lose nothing.
    let emitted = {
        let mut mon = Monitor::load_lazy(&MonitorConfig::default()).expect("load");
        let a = mon.free_slot().expect("slot");
        mon.add_session(a, Some(&cga.path), &rules, false)
            .expect("session");
        let (st, _, _) = finish(gated_in(storm, &cga, &mut mon, a));
        assert!(st.success());
        std::thread::sleep(Duration::from_millis(100));
        let n = count_slot_events(&mut mon, a);
        assert_eq!(mon.lost_events_in(a).expect("lost"), 0);
        n
    };
    assert!(emitted >= 300, "emitted {emitted}");

    // One page of ring: a dozen records fit, the storm overflows it.
    let mut mon = Monitor::load_lazy(&MonitorConfig {
        ring_bytes: 4096,
        ..MonitorConfig::default()
    })
    .expect("load");
    let a = mon.free_slot().expect("slot");
    mon.add_session(a, Some(&cga.path), &rules, false)
        .expect("session a");
    let b = mon.free_slot().expect("slot");
    mon.add_session(b, Some(&cgb.path), &rules, false)
        .expect("session b");
    let (st, _, _) = finish(gated_in(storm, &cga, &mut mon, a));
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(100));
    let received = count_slot_events(&mut mon, a);
    let lost_a = mon.lost_events_in(a).expect("lost a");
    assert!(
        received > 0 && lost_a > 0,
        "received {received}, lost {lost_a}"
    );
    assert_eq!(
        received + lost_a,
        emitted,
        "received {received}, lost {lost_a}"
    );

    // The other session, run after the ring was drained, lost nothing and
    // is charged nothing for a's storm.
    // (No exec: the test's LD_LIBRARY_PATH would make the loader's
    // searches alone overflow the page.)
    let (st, _, _) = finish(gated_in(": < /etc/hostname", &cgb, &mut mon, b));
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(count_slot_events(&mut mon, b), 2, "an open and the exit");
    assert_eq!(mon.lost_events_in(b).expect("lost b"), 0);
    assert_eq!(mon.lost_events_unattributed().expect("unattributed"), 0);
    assert_eq!(mon.lost_events().expect("total"), lost_a);

    // A slot given to a new session starts from zero.
    mon.remove_session(SessionSlot::from_raw(a))
        .expect("remove a");
    mon.add_session(a, Some(&cga.path), &rules, false)
        .expect("session a again");
    assert_eq!(mon.lost_events_in(a).expect("lost a"), 0);
    assert!(mon.lost_events_in(MAX_SLOTS).is_err());
}

#[tokio::test]
async fn lazy_load_verifies_programs_when_first_needed() {
    if !root_or_skip("lazy_load_verifies_programs_when_first_needed") {
        return;
    }
    let _g = SERIAL.lock().await;
    let cg = TestCgroup::new("lazy");
    let mut mon = Monitor::load_lazy(&MonitorConfig::default()).expect("load");
    assert!(!mon.program_loaded("connect4") && !mon.program_loaded("on_sys_enter"));
    assert!(mon.program_loaded("on_exec"));
    // Quiet, no deny paths: the syscall hooks are never needed.
    let slot = mon.free_slot().expect("slot");
    mon.add_session(slot, Some(&cg.path), &exec_rules(&[PY]), true)
        .expect("session");
    assert!(mon.program_loaded("connect4") && mon.program_loaded("sock_create"));
    assert!(!mon.program_loaded("on_sys_enter"));
    // The network programs loaded this way enforce: no rule, no connect.
    let listener = free_port_tcp();
    let port = port_of(listener.local_addr());
    let code = format!(
        "import socket\ntry:\n    socket.create_connection((\"127.0.0.1\", {port}), timeout=2)\n    print(\"connected\")\nexcept OSError as e:\n    print(\"refused\", e.errno)"
    );
    let (st, out, _) = finish(gated_in(&py(&code), &cg, &mut mon, slot));
    assert!(st.success());
    assert_eq!(out.trim(), "refused 1");
    // Recording opens needs the hooks: loaded and attached on demand.
    mon.set_quiet_in(slot, false).expect("not quiet");
    assert!(mon.program_loaded("on_sys_enter") && mon.syscall_hooks_attached());
    let (st, _, _) = finish(gated_in(
        &py("open(\"/etc/hostname\").close()"),
        &cg,
        &mut mon,
        slot,
    ));
    assert!(st.success());
    let events = drain(&mut mon, Duration::from_millis(300)).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Open { path, .. } if path == "/etc/hostname")),
        "{events:?}"
    );
}

/// The loader built with the kernel BTF hidden leaves the process's own
/// view alone: the file still reads whole and no mount shows up here.
#[test]
fn bare_loader_hides_btf_only_from_its_thread() {
    if !root_or_skip("bare_loader_hides_btf_only_from_its_thread") {
        return;
    }
    let before = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        super::hide_kernel_btf_probe(),
        "the namespace could not be set up"
    );
    let _loader = super::bare_loader();
    let after = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert_eq!(before, after);
    assert!(!after.contains("/sys/kernel/btf/vmlinux"));
    let len = std::fs::metadata("/sys/kernel/btf/vmlinux")
        .expect("btf")
        .len();
    let read = std::fs::read("/sys/kernel/btf/vmlinux").expect("btf").len() as u64;
    assert!(
        len > 1024 && read == len,
        "kernel BTF now reads {read} of {len} bytes"
    );
}

/// The (path, violation) of every open event under `prefix`, in order.
fn opens_under(events: &[Event], prefix: &str) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Open { path, .. } if path.starts_with(prefix) => {
                Some((path.clone(), e.meta.violation))
            }
            _ => None,
        })
        .collect()
}

/// A freed slot keeps its entries out of force; the next session in it
/// gets exactly its own rules, whether it allows less or the same again.
#[tokio::test]
async fn a_reused_slot_enforces_only_its_new_sessions_rules() {
    if !root_or_skip("a_reused_slot_enforces_only_its_new_sessions_rules") {
        return;
    }
    let _g = SERIAL.lock().await;
    let listener = free_port_tcp();
    let port = port_of(listener.local_addr());
    let code = format!(
        "import socket\ntry:\n    socket.create_connection((\"127.0.0.1\", {port}), 3).close()\n    print(\"ok\")\nexcept OSError as e:\n    print(e.errno)"
    );
    let mut wide = exec_rules(&[PY, "/usr/bin/echo"]);
    wide.connect = vec![ConnectRule::host(
        "127.0.0.1".parse().expect("ip"),
        Some(port),
    )];
    wide.bind = vec![port];
    wide.deny_paths = vec![PathRule::Dir(PathBuf::from("/nonexistent-shieldd-reuse"))];
    let narrow = exec_rules(&[PY]);
    let mut mon = Monitor::load(&MonitorConfig::default()).expect("load");

    let run = |mon: &mut Monitor, tag: &str, rules: &MonitorRules| {
        let cg = TestCgroup::new(tag);
        let slot = mon.free_slot().expect("slot");
        let h = mon
            .add_session(slot, Some(&cg.path), rules, true)
            .expect("session");
        let (st, echo, _) = finish(gated_in("exec /bin/echo E", &cg, mon, slot));
        let echo_ok = st.success() && echo == "E\n";
        if !echo_ok {
            killed_silently(st, &echo);
        }
        let (st, net, err) = finish(gated_in(&py(&code), &cg, mon, slot));
        assert!(st.success(), "{err}");
        (h, cg, echo_ok, net.trim().to_string())
    };

    let (h, _cg1, echo, net) = run(&mut mon, "reuse-1", &wide);
    assert!(echo, "echo allowed in the first session");
    assert_eq!(net, "ok");
    let slot = h.slot();
    mon.remove_session(h).expect("remove 1");
    // Freed: nothing runs, nothing connects, though its entries remain.
    let cg = TestCgroup::new("reuse-freed");
    let (st, out, _) = finish(gated_in("exec /bin/echo FREED", &cg, &mut mon, slot));
    killed_silently(st, &out);

    // Same slot, fewer rights: echo killed, connect refused.
    let (h, _cg2, echo, net) = run(&mut mon, "reuse-2", &narrow);
    assert_eq!(h.slot(), slot, "the freed slot is given out again");
    assert!(!echo, "echo is not in the second session's allowlist");
    assert_eq!(net, "1", "connect refused with EPERM");
    mon.remove_session(h).expect("remove 2");

    // Same slot, the first rules again: all back in force.
    let (h, cg3, echo, net) = run(&mut mon, "reuse-3", &wide);
    assert_eq!(h.slot(), slot);
    assert!(echo);
    assert_eq!(net, "ok");
    // Tracked tasks leave the map: an exited one by the exit hook, a live
    // one tracked from here by remove_session (no walk of the whole map).
    let done = gated_in("exit 0", &cg3, &mut mon, slot);
    let done_pid = done.id();
    assert!(finish(done).0.success());
    std::thread::sleep(Duration::from_millis(50));
    assert!(!mon.is_tracked(done_pid), "the exit hook untracks");
    let mut live = Command::new("/bin/sleep").arg("30").spawn().expect("sleep");
    mon.track_pid_in(slot, live.id()).expect("track");
    assert!(mon.is_tracked(live.id()));
    mon.remove_session(h).expect("remove 3");
    assert!(!mon.is_tracked(live.id()), "remove_session untracks");
    let _ = live.kill();
    let _ = live.wait();
    drop(listener);
}
