//! One watchdog process for all of the daemon's sessions.
//!
//! Standalone `shieldd run` forks a small watchdog per session (see
//! [`crate::sandbox::launch::spawn_watchdog`]). Forking the daemon costs a
//! launch about a millisecond (its page tables are copied, and every other
//! daemon thread waits on the memory map meanwhile), so the daemon forks
//! one watchdog at start, while it still has a single thread, and tells it
//! each session's cgroup directories before the agent runs. When the
//! daemon dies, by any means, the watchdog reads end-of-file on its socket,
//! writes `cgroup.kill` of every session it still watches and removes their
//! directories. It ignores the stop signals: only the daemon's end ends it.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A message to the watchdog, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
enum Msg {
    /// Watch a session: its cgroup directories, v2 first.
    Watch(String, Vec<PathBuf>),
    /// The session ended and the daemon removed its cgroups.
    Unwatch(String),
}

/// The daemon's side of the shared watchdog.
#[derive(Debug)]
pub struct SharedWatchdog {
    sock: Mutex<UnixStream>,
    pid: libc::pid_t,
}

impl SharedWatchdog {
    /// Fork the watchdog. Call it while the process has one thread only
    /// (the child runs ordinary Rust code, which allocates).
    pub fn spawn() -> io::Result<SharedWatchdog> {
        let (ours, theirs) = UnixStream::pair()?;
        // SAFETY: the caller guarantees a single-threaded process, so the
        // child may run any code; it never returns (watchdog_main exits).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(ours);
            watchdog_main(theirs)
        }
        drop(theirs);
        Ok(SharedWatchdog {
            sock: Mutex::new(ours),
            pid,
        })
    }

    /// The watchdog's pid.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    fn send(&self, m: &Msg) -> io::Result<()> {
        let mut line = serde_json::to_vec(m).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut s = self
            .sock
            .lock()
            .map_err(|_| io::Error::other("watchdog lock poisoned"))?;
        // One write per message; MSG_NOSIGNAL so a dead watchdog is an
        // error here, not a SIGPIPE.
        let mut off = 0;
        while off < line.len() {
            let rest = line.get(off..).unwrap_or_default();
            // SAFETY: send(2) from a live buffer on our socket.
            let n = unsafe {
                libc::send(
                    s.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            off += n as usize;
        }
        s.flush()
    }

    /// Put a session's cgroups (v2 first) under watch; an error means the
    /// watchdog is gone and the caller must watch the session another way.
    pub fn watch(&self, session: &str, dirs: &[PathBuf]) -> io::Result<()> {
        self.send(&Msg::Watch(session.to_string(), dirs.to_vec()))
    }

    /// The session has ended and its cgroups are removed.
    pub fn unwatch(&self, session: &str) {
        let _ = self.send(&Msg::Unwatch(session.to_string()));
    }
}

/// The forked watchdog: follow the daemon's messages until its end, then
/// kill and remove what is still watched.
fn watchdog_main(sock: UnixStream) -> ! {
    // SAFETY: plain system calls on our own process (single-threaded).
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(sig, libc::SIG_IGN);
        }
        libc::setsid();
        let fd = sock.as_raw_fd();
        // Keep stdio (the daemon's log) and the socket; whatever else the
        // daemon had open is not ours to hold.
        if fd > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (fd - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (fd + 1) as u32, u32::MAX, 0u32);
    }
    let mut watched: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for line in BufReader::new(&sock).split(b'\n') {
        let Ok(line) = line else { break };
        match serde_json::from_slice::<Msg>(&line) {
            Ok(Msg::Watch(id, dirs)) => {
                watched.insert(id, dirs);
            }
            Ok(Msg::Unwatch(id)) => {
                watched.remove(&id);
            }
            Err(_) => {}
        }
    }
    // The daemon is gone: every tree it still supervised dies now.
    for dirs in watched.values() {
        if let Some(v2) = dirs.first() {
            let _ = std::fs::write(v2.join("cgroup.kill"), "1");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for dirs in watched.values() {
        for d in dirs {
            // EBUSY until the last task of the cgroup is gone.
            while let Err(e) = std::fs::remove_dir(d) {
                if e.raw_os_error() != Some(libc::EBUSY) || Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    if !watched.is_empty() {
        eprintln!(
            "shieldd watchdog: the daemon ended; killed the sessions {}",
            watched.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    // SAFETY: ending this process without running the daemon's exit path.
    unsafe { libc::_exit(0) }
}

impl Drop for SharedWatchdog {
    fn drop(&mut self) {
        // Closing the socket ends it (after killing what is still watched).
        if let Ok(s) = self.sock.lock() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
    }
}
