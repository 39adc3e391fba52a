//! Bench-only harness: run a command under a chosen subset of shieldd's
//! layers (cgroup, seccomp, landlock, monitor), to find where the syscall
//! overhead of `shieldd run` comes from. The product itself has no switch to
//! leave a layer out silently; this example builds the same pieces through
//! the library and drops the ones not asked for.
//!
//! `layers --policy FILE --layers cgroup,seccomp,landlock,monitor -- CMD ARGS`
//! (`--layers none` = bare fork/exec through the launcher). Needs root.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use shieldd::monitor::{Monitor, MonitorConfig, MonitorRules, DEFAULT_SLOT};
use shieldd::policy::Policy;
use shieldd::sandbox::{self, cgroup, launch, Request};

fn main() {
    match real_main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("layers: {e}");
            std::process::exit(125);
        }
    }
}

fn real_main() -> Result<i32, String> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let sep = args
        .iter()
        .position(|a| a == "--")
        .ok_or("usage: layers --policy FILE --layers LIST -- CMD")?;
    let (opts, cmd) = args.split_at(sep);
    let cmd: Vec<OsString> = cmd.iter().skip(1).cloned().collect();
    let get = |name: &str| {
        opts.iter()
            .position(|a| a == name)
            .and_then(|i| opts.get(i + 1))
            .map(|v| v.to_string_lossy().into_owned())
    };
    let policy_path = PathBuf::from(get("--policy").ok_or("--policy FILE")?);
    let layers = get("--layers").ok_or("--layers LIST")?;
    let want = |l: &str| layers.split(',').any(|x| x == l);
    let (use_cg, use_sc, use_ll, use_mon) = (
        want("cgroup") || want("monitor"),
        want("seccomp"),
        want("landlock"),
        want("monitor"),
    );

    let policy = Policy::load(&policy_path).map_err(|e| e.to_string())?;
    let session = sandbox::new_session_id();
    let req = Request {
        command: cmd,
        session: session.clone(),
        monitor: true,
        ..Request::default()
    };
    let mut prepared = sandbox::prepare(&policy, &req).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&prepared.private_tmp);
    if !use_ll {
        prepared.child.landlock = None;
    }
    if !use_sc {
        prepared.child.seccomp.clear();
    }
    let mut cg = if use_cg {
        let layout = cgroup::Layout::discover().map_err(|e| e.to_string())?;
        Some(
            cgroup::SessionCgroup::create(&layout, &session, &policy.sandbox.limits, true)
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let mut mon = if use_mon {
        let cgd = cg.as_ref().ok_or("monitor needs the cgroup")?;
        let mut m = Monitor::load_lazy(&MonitorConfig::default()).map_err(|e| e.to_string())?;
        let rules =
            MonitorRules::from_policy(&policy.sandbox, &policy.response, &prepared.base, |_| {
                Vec::new()
            })
            .map_err(|e| e.to_string())?;
        // As `shieldd run` does: one session, quiet (no audit trail).
        let slot = m
            .add_session(DEFAULT_SLOT, Some(&cgd.v2_dir), &rules, true)
            .map_err(|e| e.to_string())?;
        Some((m, slot))
    } else {
        None
    };
    let dirfd = match &cg {
        Some(c) => Some(c.open_dir().map_err(|e| e.to_string())?),
        None => None,
    };
    let gated = launch::spawn_gated(&prepared.child, dirfd.as_ref().map(|f| f.as_raw_fd()))
        .map_err(|e| e.to_string())?;
    let pid = gated.pid;
    if let Some(c) = &cg {
        c.add(pid, gated.in_cgroup).map_err(|e| e.to_string())?;
    }
    if let Some((m, slot)) = mon.as_mut() {
        m.track_pid_in(slot.slot(), pid as u32)
            .map_err(|e| e.to_string())?;
    }
    gated.release().map_err(|e| e.to_string())?;
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if let Some(c) = cg.as_mut() {
        let _ = c.remove();
    }
    drop(mon);
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}
