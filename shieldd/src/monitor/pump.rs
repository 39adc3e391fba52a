//! Kernel events -> audit records and violations (SPEC section 6).

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::EventStream;
use super::{Event, EventKind, NetOp};
use crate::policy::ResponsePolicy;
use crate::respond::Containment;

fn family(f: u32) -> &'static str {
    match f as i32 {
        libc::AF_INET => "inet",
        libc::AF_INET6 => "inet6",
        libc::AF_PACKET => "packet",
        libc::AF_UNIX => "unix",
        _ => "other",
    }
}

fn protocol(p: u32, sock_type: u32) -> &'static str {
    match (p, sock_type) {
        (6, _) | (0, 1) => "tcp",
        (17, _) | (0, 2) => "udp",
        (_, 3) => "raw",
        _ => "other",
    }
}

/// How a file was opened, in words, so a reader of the trail need not
/// decode `flags`: "read", "write" or "read-write", plus "create" and
/// "truncate" when those flags are set.
fn open_access(flags: u64) -> String {
    let f = flags as i64 as libc::c_int;
    let mut s = match f & libc::O_ACCMODE {
        libc::O_WRONLY => "write",
        libc::O_RDWR => "read-write",
        _ => "read",
    }
    .to_string();
    if f & libc::O_CREAT != 0 {
        s.push_str(",create");
    }
    if f & libc::O_TRUNC != 0 {
        s.push_str(",truncate");
    }
    s
}

/// `exit_code` is the kernel's wait status (`exit(3)` is 768); `status` and
/// `signal` say what it means, as `session_end` does.
fn exit_fields(code: i32) -> Value {
    let signal = code & 0x7f;
    if signal == 0 {
        json!({"exit_code": code, "status": (code >> 8) & 0xff, "signal": null})
    } else {
        json!({"exit_code": code, "status": null, "signal": signal})
    }
}

/// The audit record of one event: (event name, fields, rule family, what
/// was done, for the violation line).
pub fn record_of(e: &Event) -> (&'static str, Value, &'static str, String) {
    let m = &e.meta;
    let mut base = json!({"pid": m.pid, "comm": m.comm});
    if m.ppid != 0 {
        base["ppid"] = json!(m.ppid);
    }
    if m.violation {
        base["violation"] = json!(true);
    }
    if m.killed {
        base["killed"] = json!(true);
    }
    if m.denied {
        base["denied"] = json!(true);
    }
    if m.truncated {
        base["truncated"] = json!(true);
    }
    let merge = |mut b: Value, extra: Value| {
        if let (Value::Object(b), Value::Object(x)) = (&mut b, extra) {
            b.extend(x);
        }
        b
    };
    match &e.kind {
        EventKind::Exec {
            path,
            filename,
            argv,
        } => (
            "exec",
            merge(
                base,
                json!({"exe": path, "filename": filename, "argv": argv}),
            ),
            "exec",
            format!("exec of {path} is not allowed by exec.allow"),
        ),
        EventKind::Open { path, flags } => (
            "open",
            merge(
                base,
                json!({"path": path, "flags": flags, "access": open_access(*flags)}),
            ),
            "filesystem",
            format!("open of denied path {path}"),
        ),
        EventKind::Net {
            op,
            family: f,
            protocol: p,
            sock_type,
            addr,
            port,
        } => {
            let (name, op_s) = match op {
                NetOp::Connect => ("connect", "connect"),
                NetOp::Sendmsg => ("connect", "sendmsg"),
                NetOp::Bind => ("bind", "bind"),
            };
            let proto = protocol(*p, *sock_type);
            let why = if m.isolated {
                " (session isolated)"
            } else {
                " not allowed by the policy"
            };
            (
                name,
                merge(
                    base,
                    json!({"op": op_s, "family": family(*f), "protocol": proto,
                           "addr": addr.to_string(), "port": port}),
                ),
                "network",
                format!("{op_s} to {addr}:{port}/{proto}{why}"),
            )
        }
        EventKind::Socket {
            family: f,
            sock_type,
            protocol: p,
        } => (
            "socket",
            merge(
                base,
                json!({"family": family(*f), "type": sock_type, "protocol": p}),
            ),
            "network",
            format!("{} socket refused", family(*f)),
        ),
        EventKind::Fork { child_pid } => (
            "fork",
            merge(base, json!({"child": child_pid})),
            "process",
            String::new(),
        ),
        EventKind::Exit { exit_code } => (
            "exit",
            merge(base, exit_fields(*exit_code)),
            "process",
            String::new(),
        ),
        EventKind::Unknown { kind } => (
            "unknown",
            merge(base, json!({"kind": kind})),
            "process",
            String::new(),
        ),
    }
}

/// Record one event and act on a violation.
pub fn handle(e: &Event, c: &Containment, response: &ResponsePolicy) {
    // Nothing to write and nothing to do: skip building the record, which
    // would compete with the agent for the CPU.
    if c.audit.is_none() && !e.meta.violation {
        return;
    }
    let (name, fields, rule, detail) = record_of(e);
    c.record(name, fields, false);
    if e.meta.violation {
        c.violation(rule, response.for_rule(rule), Some(e.meta.pid), &detail);
    }
}

/// Read events until told to stop, then drain what the ring still holds.
pub async fn run(
    mut stream: EventStream,
    c: Containment,
    response: ResponsePolicy,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            ev = stream.next_event() => match ev {
                Ok(e) => {
                    handle(&e, &c, &response);
                    // Drain what else is ready before writing the batch out.
                    for _ in 0..4096 {
                        match stream.try_next_event() {
                            Some(e) => handle(&e, &c, &response),
                            None => break,
                        }
                    }
                    c.flush();
                }
                Err(err) => {
                    eprintln!("shieldd: monitor: {err}");
                    break;
                }
            },
            _ = &mut stop => {
                while let Some(e) = stream.try_next_event() {
                    handle(&e, &c, &response);
                }
                c.flush();
                break;
            }
        }
    }
}

/// Where each session slot's events go: its containment and the response
/// policy in force (replaced on a policy reload).
pub type Routes = std::sync::Arc<
    std::sync::RwLock<std::collections::HashMap<u32, (Containment, ResponsePolicy)>>,
>;

fn route(routes: &Routes, e: &Event, touched: &mut Vec<u32>) {
    let Ok(r) = routes.read() else { return };
    match r.get(&e.meta.slot) {
        Some((c, response)) => {
            handle(e, c, response);
            if !touched.contains(&e.meta.slot) {
                touched.push(e.meta.slot);
            }
        }
        // A slot with no session: a straggler of one that just ended.
        None => tracing::debug!(slot = e.meta.slot, pid = e.meta.pid, "event of no session"),
    }
}

fn flush_touched(routes: &Routes, touched: &mut Vec<u32>) {
    if let Ok(r) = routes.read() {
        for s in touched.iter() {
            if let Some((c, _)) = r.get(s) {
                c.flush();
            }
        }
    }
    touched.clear();
}

/// Asks the shared pump to handle everything the ring holds now, and
/// says when it has: a session that has seen its agent exit waits on it so
/// that the agent's last events (its violation, its exit) are handled
/// before the session is reported ended.
#[derive(Clone)]
pub struct Drain(tokio::sync::mpsc::UnboundedSender<std::sync::mpsc::Sender<()>>);

impl Drain {
    /// A drain handle and the receiver [`run_routed`] serves.
    pub fn new() -> (Drain, DrainRequests) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Drain(tx), DrainRequests(rx))
    }

    /// Block (a plain thread, not a runtime worker) until the pump has
    /// handled what the ring held when this was called, or `timeout`.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.0.send(tx).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }
}

/// The pump's side of [`Drain`].
pub struct DrainRequests(tokio::sync::mpsc::UnboundedReceiver<std::sync::mpsc::Sender<()>>);

/// [`run`] for a monitor shared by many sessions: each event goes to the
/// session of its slot; [`Drain`] requests are answered once the ring is
/// empty.
pub async fn run_routed(
    mut stream: EventStream,
    routes: Routes,
    mut drains: DrainRequests,
    mut stop: oneshot::Receiver<()>,
) {
    let mut touched = Vec::new();
    loop {
        tokio::select! {
            Some(reply) = drains.0.recv() => {
                while let Some(e) = stream.try_next_event() {
                    route(&routes, &e, &mut touched);
                }
                flush_touched(&routes, &mut touched);
                let _ = reply.send(());
            }
            ev = stream.next_event() => match ev {
                Ok(e) => {
                    route(&routes, &e, &mut touched);
                    for _ in 0..4096 {
                        match stream.try_next_event() {
                            Some(e) => route(&routes, &e, &mut touched),
                            None => break,
                        }
                    }
                    flush_touched(&routes, &mut touched);
                }
                Err(err) => {
                    tracing::error!("monitor: {err}");
                    break;
                }
            },
            _ = &mut stop => {
                while let Some(e) = stream.try_next_event() {
                    route(&routes, &e, &mut touched);
                }
                flush_touched(&routes, &mut touched);
                break;
            }
        }
    }
}

/// Run a pump on a thread and runtime of its own. Containment must not
/// wait for a runtime that is busy with the scan API: a scan can hold a
/// worker (the scanner is built on first use, a large text takes a while),
/// and a violation handled late is a kill that arrives after the agent has
/// done what it wanted. The handle can be awaited from any runtime.
pub fn spawn_dedicated<F>(fut: F) -> std::io::Result<tokio::task::JoinHandle<()>>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("shieldd-pump".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let (done_tx, done_rx) = oneshot::channel::<()>();
            let handle = rt.spawn(async move {
                fut.await;
                let _ = done_tx.send(());
            });
            if tx.send(Ok(handle)).is_err() {
                return;
            }
            // A current-thread runtime runs its tasks only inside block_on.
            let _ = rt.block_on(done_rx);
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the pump thread ended before it started"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::EventMeta;

    fn event(kind: EventKind) -> Event {
        Event {
            meta: EventMeta {
                pid: 7,
                tid: 7,
                ppid: 1,
                uid: 0,
                slot: 0,
                cgroup_id: 0,
                ts_ns: 0,
                comm: "python".into(),
                violation: false,
                killed: false,
                denied: false,
                truncated: false,
                isolated: false,
            },
            kind,
        }
    }

    #[test]
    fn exit_records_say_status_and_signal_not_only_the_wait_status() {
        let (_, f, _, _) = record_of(&event(EventKind::Exit { exit_code: 768 }));
        assert_eq!(f["exit_code"], json!(768));
        assert_eq!(f["status"], json!(3));
        assert_eq!(f["signal"], Value::Null);
        let (_, f, _, _) = record_of(&event(EventKind::Exit { exit_code: 9 }));
        assert_eq!(f["status"], Value::Null);
        assert_eq!(f["signal"], json!(9));
        // A core dump sets 0x80; the signal is still the low seven bits.
        let (_, f, _, _) = record_of(&event(EventKind::Exit {
            exit_code: 0x80 | 11,
        }));
        assert_eq!(f["signal"], json!(11));
        let (_, f, _, _) = record_of(&event(EventKind::Exit { exit_code: 0 }));
        assert_eq!(f["status"], json!(0));
    }

    #[test]
    fn open_records_say_how_the_file_was_opened() {
        let access = |flags: i32| {
            let (_, f, _, _) = record_of(&event(EventKind::Open {
                path: "/x".into(),
                flags: flags as u64,
            }));
            f["access"].as_str().unwrap_or_default().to_string()
        };
        assert_eq!(access(libc::O_RDONLY | libc::O_CLOEXEC), "read");
        assert_eq!(
            access(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
            "write,create,truncate"
        );
        assert_eq!(access(libc::O_RDWR), "read-write");
        assert_eq!(access(libc::O_RDONLY | libc::O_DIRECTORY), "read");
    }
}
