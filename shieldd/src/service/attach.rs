//! `shieldd run` through a running daemon: send `start` with our stdin,
//! stdout and stderr, stay attached, forward SIGINT/SIGTERM/SIGHUP/SIGQUIT
//! as `signal` requests, print the session's violation lines, and exit with
//! the agent's status.

use std::os::fd::{AsFd, BorrowedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal as Sig};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::{json, Value};

use super::control::Client;
use super::registry::StartRequest;

fn fail(msg: &str) -> i32 {
    eprintln!("shieldd: {msg}");
    125
}

/// Start the session through the daemon and follow it to its end; the
/// exit status for `shieldd run`.
pub fn run_attached(mut client: Client, start: StartRequest) -> i32 {
    let mut mask = SigSet::empty();
    for s in [Sig::SIGINT, Sig::SIGTERM, Sig::SIGHUP, Sig::SIGQUIT] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        return fail(&format!("cannot block signals: {e}"));
    }
    let sfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(s) => s,
        Err(e) => return fail(&format!("signalfd: {e}")),
    };
    let mut req = match serde_json::to_value(&start) {
        Ok(v) => v,
        Err(e) => return fail(&e.to_string()),
    };
    req["op"] = json!("start");
    let id = match client.send(req, &[0, 1, 2]) {
        Ok(id) => json!(id),
        Err(e) => return fail(&e.to_string()),
    };
    let mut session: Option<String> = None;
    let mut pending: Vec<i32> = Vec::new();
    loop {
        if !client.has_buffered_line() {
            // SAFETY: the client's socket stays open for this borrow.
            let sock = unsafe { BorrowedFd::borrow_raw(client.raw_fd()) };
            let mut fds = [
                PollFd::new(sock, PollFlags::POLLIN),
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            ];
            let _ = poll(&mut fds, PollTimeout::NONE);
            let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
            while let Ok(Some(info)) = sfd.read_signal() {
                pending.push(info.ssi_signo as i32);
            }
            if let Some(s) = &session {
                for signo in pending.drain(..) {
                    let _ = client.send(json!({"op": "signal", "session": s, "signo": signo}), &[]);
                }
            }
            if !sock_ready {
                continue;
            }
        }
        let msg = match client.recv() {
            Ok(Some(v)) => v,
            Ok(None) => {
                eprintln!(
                    "shieldd: the daemon closed the connection; the agent was killed with it"
                );
                return 137;
            }
            Err(e) => return fail(&e.to_string()),
        };
        if msg.get("id") != Some(&id) {
            continue; // the answer to a forwarded signal
        }
        if let Some(st) = msg.get("started") {
            session = st
                .get("session")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(s) = &session {
                for signo in pending.drain(..) {
                    let _ = client.send(json!({"op": "signal", "session": s, "signo": signo}), &[]);
                }
            }
            continue;
        }
        if let Some(line) = msg.get("violation").and_then(Value::as_str) {
            eprintln!("{line}");
            continue;
        }
        if msg.get("ok") == Some(&json!(true)) {
            if let Some(why) = msg.pointer("/result/killed_by").and_then(Value::as_str) {
                let s = session.as_deref().unwrap_or("?");
                eprintln!("shieldd: session {s} killed by an operator ({why})");
            }
            let st = msg
                .pointer("/result/exit_status")
                .and_then(Value::as_i64)
                .unwrap_or(125);
            return i32::try_from(st).unwrap_or(125);
        }
        let text = msg
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("the daemon refused to start the session");
        eprintln!("shieldd: {text}");
        return msg
            .get("exit_status")
            .and_then(Value::as_i64)
            .and_then(|s| i32::try_from(s).ok())
            .unwrap_or(125);
    }
}
