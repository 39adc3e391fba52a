//! The control socket: newline-delimited JSON, one request a line, each
//! response carrying the request's `id`. Only root and members of the
//! configured admin group may use it (SO_PEERCRED); anyone else gets
//! [`ControlError::NotPermitted`].
//!
//! Ops: `sessions`, `session {session}`, `kill {session, reason?}`,
//! `isolate {session, reason?}`, `release {session}`,
//! `reload_policy {session, path}`, `counters`, and `start` (the fields of
//! [`StartRequest`], with the caller's stdin, stdout and stderr passed as
//! SCM_RIGHTS on the same message). A `start` connection stays attached:
//! the daemon sends `{"id", "started": {session, pid}}`, then
//! `{"id", "violation": LINE}` for each violation of the session, then
//! `{"id", "ok": true, "result": {"exit_status": N}}`; meanwhile the caller
//! may send `signal {session, signo}`. A caller that goes away kills its
//! session (as a killed standalone `run` takes its agent along).
//!
//! Connections are served by plain threads: they are few (operators and
//! attached `run`s), and descriptors arrive with `recvmsg`.

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::sys::socket::{
    getsockopt, recvmsg, sendmsg, sockopt, ControlMessage, ControlMessageOwned, MsgFlags, UnixAddr,
};
use serde_json::{json, Value};

use super::registry::{Registry, StartRequest};
use super::{Actor, ControlError, Manager, Signal};

/// Longest request line.
const MAX_LINE: usize = 4 << 20;

/// Environment variable naming the control socket for the CLI.
pub const CONTROL_ENV: &str = "SHIELDD_CONTROL";

/// The control socket the CLI talks to: `--control`, else `$SHIELDD_CONTROL`,
/// else the default config's path.
pub fn control_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os(CONTROL_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => super::config::DaemonConfig::default().control_socket,
    }
}

/// Who may use the control socket.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// The admin group's gid, if one is configured and exists.
    pub admin_gid: Option<u32>,
}

impl Access {
    /// From the configured group name (a group that does not exist admits nobody but root).
    pub fn new(admin_group: Option<&str>) -> Access {
        let admin_gid = admin_group.and_then(|g| match g.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => nix::unistd::Group::from_name(g)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw()),
        });
        Access { admin_gid }
    }

    /// Whether the peer (uid, gid, pid) is root or in the admin group
    /// (primary or supplementary, read from /proc/PID/status).
    pub fn permits(&self, uid: u32, gid: u32, pid: i32) -> bool {
        if uid == 0 {
            return true;
        }
        let Some(admin) = self.admin_gid else {
            return false;
        };
        if gid == admin {
            return true;
        }
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Groups:").map(str::to_string))
            })
            .is_some_and(|g| g.split_whitespace().any(|x| x.parse() == Ok(admin)))
    }
}

/// Reads lines from a Unix stream, collecting descriptors passed with them.
pub struct LineReader {
    fd: RawFd,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    eof: bool,
}

impl LineReader {
    /// Read from `stream` (which must outlive the reader).
    pub fn new(stream: &UnixStream) -> LineReader {
        LineReader {
            fd: stream.as_raw_fd(),
            buf: Vec::new(),
            fds: Vec::new(),
            eof: false,
        }
    }

    /// Descriptors received so far and not taken.
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }

    /// The next line without its newline; None at end of stream.
    pub fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(pos + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                return Ok(Some(line));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            if self.buf.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            let mut chunk = [0u8; 8192];
            let mut cmsg = nix::cmsg_space!([RawFd; 8]);
            let (n, fds) = {
                let mut iov = [IoSliceMut::new(&mut chunk)];
                let msg = match recvmsg::<UnixAddr>(
                    self.fd,
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Ok(m) => m,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(io::Error::from(e)),
                };
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(v) = c {
                            fds.extend(v);
                        }
                    }
                }
                (msg.bytes, fds)
            };
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor for us
                // (SCM_RIGHTS); nothing else owns it.
                self.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            if n == 0 {
                self.eof = true;
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

type Writer = Arc<Mutex<UnixStream>>;

fn send(w: &Writer, v: &Value) {
    if let Ok(mut s) = w.lock() {
        let _ = s.write_all(format!("{v}\n").as_bytes());
    }
}

fn err_value(e: &ControlError) -> Value {
    json!({"code": serde_json::to_value(e).ok().and_then(|v| v.get("error").cloned()),
           "message": e.to_string()})
}

/// Serve the control socket until the listener fails. Each connection
/// gets a thread.
pub fn serve(listener: UnixListener, registry: Arc<Registry>, access: Access) {
    for conn in listener.incoming() {
        let Ok(stream) = conn else {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        };
        let registry = registry.clone();
        let access = access.clone();
        let _ = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || connection(stream, registry, access));
    }
}

fn connection(stream: UnixStream, registry: Arc<Registry>, access: Access) {
    let Ok(w) = stream.try_clone() else { return };
    let w: Writer = Arc::new(Mutex::new(w));
    let creds = getsockopt(&stream, sockopt::PeerCredentials).ok();
    let permitted = creds.is_some_and(|c| access.permits(c.uid(), c.gid(), c.pid()));
    // Who asks, for the audit records of what they ask for.
    let actor = creds.map(|c| Actor {
        via: "control".into(),
        uid: c.uid(),
        pid: u32::try_from(c.pid()).ok(),
    });
    let actor = actor.as_ref();
    let mut reader = LineReader::new(&stream);
    // The session this connection started and is attached to.
    let mut attached: Option<(String, Arc<Mutex<bool>>)> = None;
    while let Ok(Some(line)) = reader.next_line() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let req: Value = match serde_json::from_slice(&line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                send(
                    &w,
                    &json!({"id": null, "ok": false, "error": {"code": "bad_request", "message": "not a JSON object"}}),
                );
                continue;
            }
        };
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        if !permitted {
            reader.take_fds();
            send(
                &w,
                &json!({"id": id, "ok": false, "error": err_value(&ControlError::NotPermitted)}),
            );
            continue;
        }
        let op = req.get("op").and_then(Value::as_str).unwrap_or("");
        let sid = req
            .get("session")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let reason = req
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("operator request")
            .to_string();
        let reply = |r: Result<Value, ControlError>| match r {
            Ok(v) => json!({"id": id, "ok": true, "result": v}),
            Err(e) => json!({"id": id, "ok": false, "error": err_value(&e)}),
        };
        let m: &dyn Manager = registry.as_ref();
        match op {
            "sessions" => send(&w, &reply(Ok(json!(m.sessions())))),
            "session" => send(&w, &reply(m.session(&sid).map(|s| json!(s)))),
            "kill" => send(
                &w,
                &reply(m.kill(&sid, &reason, actor).map(|_| json!(null))),
            ),
            "isolate" => send(
                &w,
                &reply(m.isolate(&sid, &reason, actor).map(|_| json!(null))),
            ),
            "release" => send(&w, &reply(m.release(&sid, actor).map(|_| json!(null)))),
            "reload_policy" => {
                let path = req.get("path").and_then(Value::as_str).unwrap_or("");
                send(&w, &reply(m.reload_policy(&sid, path).map(|_| json!(null))))
            }
            "counters" => send(&w, &reply(Ok(json!(m.counters())))),
            "signal" => {
                let signo = req.get("signo").and_then(Value::as_i64).unwrap_or(0) as i32;
                send(
                    &w,
                    &reply(registry.forward_signal(&sid, signo).map(|_| json!(null))),
                )
            }
            "start" => {
                let fds = reader.take_fds();
                if attached.is_some() {
                    send(
                        &w,
                        &reply(Err(ControlError::InvalidState(
                            "this connection has started a session already".into(),
                        ))),
                    );
                    continue;
                }
                let start: StartRequest = match serde_json::from_value(req.clone()) {
                    Ok(s) => s,
                    Err(e) => {
                        send(
                            &w,
                            &json!({"id": id, "ok": false, "exit_status": 125,
                                    "error": {"code": "bad_request", "message": e.to_string()}}),
                        );
                        continue;
                    }
                };
                let stdio: Option<[OwnedFd; 3]> = fds.try_into().ok();
                // Subscribe before the launch so no violation is missed.
                let mut rx = registry.hooks().signals().subscribe();
                match registry.start(start, stdio) {
                    Ok((session, pid)) => {
                        send(
                            &w,
                            &json!({"id": id, "started": {"session": session, "pid": pid}}),
                        );
                        let ended = Arc::new(Mutex::new(false));
                        attached = Some((session.clone(), ended.clone()));
                        let w2 = w.clone();
                        let id2 = id.clone();
                        let reg2 = registry.clone();
                        std::thread::spawn(move || loop {
                            match rx.blocking_recv() {
                                Ok(Signal::Violation {
                                    session: s,
                                    rule,
                                    action,
                                    detail,
                                }) if s == session => send(
                                    &w2,
                                    &json!({"id": id2, "violation":
                                        format!("shieldd: violation: {rule}: {detail} ({action})")}),
                                ),
                                Ok(Signal::SessionEnded {
                                    session: s,
                                    exit_status,
                                }) if s == session => {
                                    if let Ok(mut e) = ended.lock() {
                                        *e = true;
                                    }
                                    // An operator's kill is said, not left
                                    // to be guessed from a 137.
                                    let killed = reg2.killed_by(&s);
                                    send(
                                        &w2,
                                        &json!({"id": id2, "ok": true,
                                                "result": {"session": s, "exit_status": exit_status,
                                                           "killed_by": killed}}),
                                    );
                                    break;
                                }
                                Ok(_) => {}
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                                Err(_) => break,
                            }
                        });
                    }
                    Err(e) => send(
                        &w,
                        &json!({"id": id, "ok": false, "exit_status": e.exit_status,
                                "error": {"code": "start_failed", "message": e.message}}),
                    ),
                }
            }
            other => send(
                &w,
                &json!({"id": id, "ok": false, "error": {"code": "bad_request",
                        "message": format!("unknown op `{other}`")}}),
            ),
        }
    }
    if let Some((session, ended)) = attached {
        let done = ended.lock().map(|e| *e).unwrap_or(true);
        if !done {
            let _ = registry.kill(&session, "the attached shieldd run went away", actor);
        }
    }
}

/// Why the CLI could not use the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon listens there (ENOENT / ECONNREFUSED).
    #[error("no shieldd daemon is running (control socket {0}); start it with `shieldd daemon` (or systemctl start shieldd), or point SHIELDD_CONTROL / --control at its socket")]
    NoDaemon(String),
    /// Any other I/O failure.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The daemon refused the request.
    #[error("{0}")]
    Refused(String),
}

/// A connection to the daemon's control socket.
pub struct Client {
    stream: UnixStream,
    reader: LineReader,
    path: String,
    next_id: u64,
}

impl Client {
    /// Connect; [`ClientError::NoDaemon`] when nothing listens there.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let p = path.display().to_string();
        let stream = match UnixStream::connect(path) {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ECONNREFUSED) | Some(libc::ENOTDIR)
                ) =>
            {
                return Err(ClientError::NoDaemon(p))
            }
            Err(source) => return Err(ClientError::Io { path: p, source }),
        };
        let reader = LineReader::new(&stream);
        Ok(Client {
            stream,
            reader,
            path: p,
            next_id: 1,
        })
    }

    fn io(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Send one request object (an `id` is added), with `fds` attached.
    pub fn send(&mut self, mut req: Value, fds: &[RawFd]) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        let line = format!("{req}\n");
        let iov = [IoSlice::new(line.as_bytes())];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        let n = sendmsg::<UnixAddr>(
            self.stream.as_raw_fd(),
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| self.io(io::Error::from(e)))?;
        if n < line.len() {
            let rest = line.as_bytes().get(n..).unwrap_or_default();
            (&self.stream).write_all(rest).map_err(|e| self.io(e))?;
        }
        Ok(id)
    }

    /// The next message from the daemon; None when it closed the connection.
    pub fn recv(&mut self) -> Result<Option<Value>, ClientError> {
        loop {
            let line = match self.reader.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.io(e)),
            };
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                return Ok(Some(v));
            }
        }
    }

    /// One request, one response: the `result`, or the daemon's error.
    pub fn call(&mut self, req: Value) -> Result<Value, ClientError> {
        let id = self.send(req, &[])?;
        loop {
            let Some(v) = self.recv()? else {
                return Err(self.io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the daemon closed the connection",
                )));
            };
            if v.get("id") != Some(&json!(id)) {
                continue;
            }
            if v.get("ok") == Some(&json!(true)) {
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
            let msg = v
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("request failed");
            return Err(ClientError::Refused(msg.to_string()));
        }
    }

    /// Whether a whole message is already buffered (poll would not see it).
    pub fn has_buffered_line(&self) -> bool {
        self.reader.buf.contains(&b'\n') || (self.reader.eof && !self.reader.buf.is_empty())
    }

    /// The raw descriptor (to poll it together with signals).
    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

/// Bind the control socket: stale file removed, parent created, mode 0666
/// (who may act is decided per connection by SO_PEERCRED, so that others
/// get a clear refusal rather than EACCES).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_permitted_and_others_only_through_the_group() {
        let a = Access { admin_gid: None };
        assert!(a.permits(0, 0, 1));
        assert!(!a.permits(1000, 1000, 1));
        let a = Access {
            admin_gid: Some(4242),
        };
        assert!(a.permits(1000, 4242, 1));
        // Our own pid's Groups: line does not list 4242.
        assert!(!a.permits(1000, 1000, std::process::id() as i32));
    }

    #[test]
    fn lines_and_descriptors_are_read_back() {
        let (a, b) = UnixStream::pair().expect("pair");
        let mut c = Client {
            reader: LineReader::new(&a),
            stream: a,
            path: "pair".into(),
            next_id: 1,
        };
        let mut r = LineReader::new(&b);
        let devnull = std::fs::File::open("/dev/null").expect("null");
        c.send(json!({"op": "x"}), &[devnull.as_raw_fd()])
            .expect("send");
        let line = r.next_line().expect("read").expect("a line");
        let v: Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["op"], "x");
        assert_eq!(v["id"], 1);
        assert_eq!(r.take_fds().len(), 1);
        drop(c);
        assert!(r.next_line().expect("eof").is_none());
    }
}
