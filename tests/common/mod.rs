//! Helpers shared by the integration tests: real processes, real kernel.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The real interpreter: `python3` on PATH may be a pyenv shim (a bash
/// script under $HOME) that no sandboxed policy would let run.
pub const PY: &str = "/usr/bin/python3.11";

pub fn shieldd() -> &'static str {
    env!("CARGO_BIN_EXE_shieldd")
}

/// Whether a privileged test can run. Under CI=true a missing privilege is a
/// failure; elsewhere the test says SKIPPED with its name and returns false.
pub fn privileged(name: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // SAFETY: querying the Landlock ABI passes no memory.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    let why = if !root {
        Some("not root".to_string())
    } else if abi < 4 {
        Some(format!("Landlock ABI {abi} < 4"))
    } else if !Path::new(PY).exists() {
        Some(format!("{PY} missing"))
    } else {
        None
    };
    match why {
        None => true,
        Some(why) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{name}: privileged test cannot run under CI: {why}");
            }
            eprintln!("SKIPPED {name}: {why}");
            false
        }
    }
}

static N: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory (canonical path), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "shieldd-it-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(std::fs::canonicalize(p).expect("canonical"))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `shieldd run [--policy FILE] [extra...] -- argv` in `cwd`.
pub fn run_in(cwd: &Path, policy: Option<&Path>, extra: &[&str], argv: &[&str]) -> Output {
    let mut c = Command::new(shieldd());
    c.arg("run");
    if let Some(p) = policy {
        c.arg("--policy").arg(p);
    }
    c.args(extra).arg("--").args(argv).current_dir(cwd);
    output_within(&mut c, std::time::Duration::from_secs(120))
}

/// Like `Command::output`, but a hang fails the test (after SIGKILL) instead
/// of stalling the suite.
pub fn output_within(c: &mut Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{c:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Run a Python snippet under a policy given as YAML text (None = default).
pub fn py(dir: &TempDir, policy_yaml: Option<&str>, code: &str) -> Output {
    let policy = policy_yaml.map(|y| dir.write("policy.yaml", y));
    run_in(dir.path(), policy.as_deref(), &[], &[PY, "-c", code])
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The cgroup v2 mount, from mountinfo.
pub fn cgroup2_mount() -> PathBuf {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for line in mi.lines() {
        if let Some((pre, post)) = line.split_once(" - ") {
            if post.starts_with("cgroup2 ") {
                if let Some(m) = pre.split(' ').nth(4) {
                    return PathBuf::from(m);
                }
            }
        }
    }
    panic!("no cgroup2 mount")
}

pub fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes: it runs nothing.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Bind-mount `hosts` over /etc/hosts for the spawned process, in a mount
/// namespace of its own: the system resolver (nsswitch `files`) then
/// answers from a file the test controls.
pub fn with_hosts_file(c: &mut std::process::Command, hosts: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let src = std::ffi::CString::new(hosts.as_os_str().as_bytes()).expect("path");
    // SAFETY: the closure runs between fork and exec and makes only raw
    // system calls on memory prepared before the fork.
    unsafe {
        c.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    c"none".as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    src.as_ptr(),
                    c"/etc/hosts".as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The lines every test hosts file starts with.
pub const HOSTS_BASE: &str = "127.0.0.1 localhost\n::1 localhost\n";
/// Two loopback listeners on one port (127.0.0.2 and 127.0.0.3).
pub fn two_loopback_listeners() -> u16 {
    for _ in 0..50 {
        let Ok(a) = std::net::TcpListener::bind("127.0.0.2:0") else {
            continue;
        };
        let port = a.local_addr().expect("addr").port();
        let Ok(b) = std::net::TcpListener::bind(("127.0.0.3", port)) else {
            continue;
        };
        for l in [a, b] {
            std::thread::spawn(move || {
                for s in l.incoming() {
                    drop(s);
                }
            });
        }
        return port;
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// Connects to two addresses until the first is refused and the second
/// accepted (or 40 s pass), printing each change of what happens.
pub const FLIP_AGENT: &str = r#"
import socket, sys, time
a, b, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def state(h):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((h, port))
        return "ok"
    except OSError as e:
        return "err%d" % (e.errno or 0)
    finally:
        s.close()
last = None
end = time.time() + 40
while time.time() < end:
    cur = (state(a), state(b))
    if cur != last:
        print("A=%s B=%s" % cur, flush=True)
        last = cur
    if cur == ("err1", "ok"):
        break
    time.sleep(0.2)
"#;
