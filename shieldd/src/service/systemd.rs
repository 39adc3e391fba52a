//! Running under systemd (`packaging/shieldd.service`, `Type=notify`):
//! readiness, watchdog and stopping notifications (`sd-notify`), and logs
//! in journald's structured form when stderr is connected to the journal.
//!
//! Every function is a no-op outside systemd (no `NOTIFY_SOCKET`, no
//! `WATCHDOG_USEC`, no `JOURNAL_STREAM`), so the daemon calls them
//! unconditionally.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;

/// Variables systemd gives the daemon that must not reach agents: an agent
/// with `NOTIFY_SOCKET` could try to speak for the daemon (the unit's
/// `NotifyAccess=main` refuses it, but it has no business knowing).
pub const SYSTEMD_ENV: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

fn send(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "systemd notification failed");
    }
}

/// `READY=1`: call once the control socket listens.
pub fn notify_ready() {
    send(&[NotifyState::Ready]);
}

/// `STOPPING=1`: call when an orderly shutdown begins.
pub fn notify_stopping() {
    send(&[NotifyState::Stopping]);
}

/// `STATUS=...`: one line shown by `systemctl status` (e.g. "3 sessions").
pub fn notify_status(status: &str) {
    // A newline would start another assignment in the datagram.
    let line = status.replace(['\n', '\r'], " ");
    send(&[NotifyState::Status(&line)]);
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises; `None` when the unit has no watchdog (or it is meant for another process).
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| d / 2)
}

/// Send `WATCHDOG=1` at [`watchdog_period`] from a task on the current
/// tokio runtime: a stalled runtime stops the pings and systemd restarts
/// the daemon. `None` when there is no watchdog.
pub fn spawn_watchdog() -> Option<JoinHandle<()>> {
    let period = watchdog_period()?;
    let rt = tokio::runtime::Handle::try_current().ok()?;
    Some(rt.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    }))
}

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`) names the file open on `fd`:
/// systemd sets it for the service's stdout/stderr, and a child that
/// inherited the variable but has its stderr elsewhere must not log to the
/// journal.
pub fn stream_is(journal_stream: &str, fd: BorrowedFd<'_>) -> bool {
    let Some((dev, ino)) = journal_stream.trim().split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(owned) = fd.try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(owned).metadata() {
        Ok(m) => m.dev() == dev && m.ino() == ino,
        Err(_) => false,
    }
}

/// stderr goes to the journal.
pub fn under_journald() -> bool {
    std::env::var("JOURNAL_STREAM").is_ok_and(|v| stream_is(&v, std::io::stderr().as_fd()))
}

/// The journald layer when stderr is the journal (structured fields:
/// `PRIORITY`, `TARGET`, the event's fields as `SHIELDD_*`), else `None`
/// and the caller keeps its text logger.
pub fn journald_layer() -> Option<tracing_journald::Layer> {
    if !under_journald() {
        return None;
    }
    match tracing_journald::layer() {
        Ok(l) => Some(
            l.with_syslog_identifier("shieldd".into())
                .with_field_prefix(Some("SHIELDD".into())),
        ),
        Err(e) => {
            eprintln!("shieldd: journald socket unavailable ({e}); logging to stderr");
            None
        }
    }
}

#[cfg(test)]
mod tests;
