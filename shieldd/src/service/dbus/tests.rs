//! Against a private `dbus-daemon` started here, driven by a zbus proxy and
//! by `busctl` (as root, as an unprivileged uid and as a member of the admin
//! group).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncBufReadExt;

use super::*;
use crate::service::{Actor, Alert, Counters, SessionInfo, SessionState};

/// A registry that only remembers what was asked of it.
#[derive(Default)]
struct FakeManager {
    sessions: Mutex<BTreeMap<String, SessionInfo>>,
    calls: Mutex<Vec<String>>,
}

impl FakeManager {
    fn with(ids: &[&str]) -> Arc<FakeManager> {
        let m = FakeManager::default();
        if let Ok(mut s) = m.sessions.lock() {
            for (i, id) in ids.iter().enumerate() {
                s.insert(id.to_string(), info(id, 100 + i as u32));
            }
        }
        Arc::new(m)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn get(&self, id: &str) -> Result<SessionInfo, ControlError> {
        self.sessions
            .lock()
            .map_err(|_| ControlError::Failed("poisoned".into()))?
            .get(id)
            .cloned()
            .ok_or_else(|| ControlError::NoSuchSession(id.into()))
    }

    fn set_state(&self, id: &str, st: SessionState) -> Result<(), ControlError> {
        let mut s = self
            .sessions
            .lock()
            .map_err(|_| ControlError::Failed("poisoned".into()))?;
        let e = s
            .get_mut(id)
            .ok_or_else(|| ControlError::NoSuchSession(id.into()))?;
        e.state = st;
        Ok(())
    }

    fn log_actor(&self, a: Option<&Actor>) {
        self.log(match a {
            Some(a) => format!("actor {} uid {} pid {:?}", a.via, a.uid, a.pid),
            None => "actor none".into(),
        });
    }
    fn log(&self, c: String) {
        if let Ok(mut v) = self.calls.lock() {
            v.push(c);
        }
    }
}

fn info(id: &str, pid: u32) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        pid,
        uid: 65534,
        command: vec!["/usr/bin/python3".into(), "agent.py".into()],
        policy_source: "builtin:default".into(),
        started: "2026-11-25T04:00:00Z".into(),
        state: SessionState::Running,
        exit_status: None,
        cgroup: format!("/sys/fs/cgroup/shieldd/{id}"),
        socket: format!("/run/shieldd/sessions/{id}.sock"),
        violations: 2,
        scans: 40,
        blocked: 3,
        tool_calls: 7,
        tool_denials: 1,
        lost_events: 0,
    }
}

impl Manager for FakeManager {
    fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }
    fn session(&self, id: &str) -> Result<SessionInfo, ControlError> {
        self.get(id)
    }
    fn kill(&self, id: &str, reason: &str, actor: Option<&Actor>) -> Result<(), ControlError> {
        self.log(format!("kill {id} {reason}"));
        self.log_actor(actor);
        self.set_state(id, SessionState::Ended)
    }
    fn isolate(&self, id: &str, reason: &str, actor: Option<&Actor>) -> Result<(), ControlError> {
        self.log(format!("isolate {id} {reason}"));
        self.log_actor(actor);
        self.set_state(id, SessionState::Isolated)
    }
    fn release(&self, id: &str, actor: Option<&Actor>) -> Result<(), ControlError> {
        if self.get(id)?.state != SessionState::Isolated {
            return Err(ControlError::InvalidState(format!("{id} is not isolated")));
        }
        self.log(format!("release {id}"));
        self.log_actor(actor);
        self.set_state(id, SessionState::Running)
    }
    fn reload_policy(&self, id: &str, path: &str) -> Result<(), ControlError> {
        self.get(id)?;
        self.log(format!("reload {id} {path}"));
        Ok(())
    }
    fn counters(&self) -> Counters {
        Counters {
            sessions_active: self.sessions().len() as u64,
            sessions_total: 9,
            violations: 4,
            alerts: 1,
            scans: 80,
            lost_events: 0,
        }
    }
}

/// A private bus; killed on drop.
struct Bus {
    child: tokio::process::Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The tools these tests need, or why they cannot run (a failure under CI).
fn can_run() -> bool {
    let missing: Vec<&str> = ["dbus-daemon", "busctl", "setpriv"]
        .into_iter()
        .filter(|c| !Path::new("/usr/bin").join(c).exists())
        .collect();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if missing.is_empty() && root {
        return true;
    }
    crate::testing::cannot_run(
        "dbus test",
        &format!("needs root and {missing:?} (packages dbus, systemd, util-linux)"),
    )
}

const REPO_POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../packaging/dbus/org.shieldd.Manager1.conf"
);

/// `strict`: a system-bus-like default (method calls denied unless a policy
/// allows them) plus the shipped policy file with its group renamed to
/// `group`; otherwise everything is allowed, so only shieldd's own check
/// stands between a caller and the methods.
async fn start_bus(strict: Option<&str>) -> Bus {
    let dir = tempfile::tempdir().expect("temp dir");
    // Unprivileged callers must reach the socket.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let sock = dir.path().join("bus");
    let (default, include) = match strict {
        Some(group) => {
            let text = std::fs::read_to_string(REPO_POLICY).expect("shipped policy");
            let copy = dir.path().join("shieldd.conf");
            std::fs::write(&copy, text.replace("shieldd-admin", group)).expect("write");
            (
                r#"<allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>"#,
                format!("<include>{}</include>", copy.display()),
            )
        }
        None => (
            r#"<allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>"#,
            String::new(),
        ),
    };
    let conf = dir.path().join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    {default}
  </policy>
  {include}
</busconfig>
"#,
            sock.display()
        ),
    )
    .expect("write bus.conf");
    let mut child = tokio::process::Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--print-address", "--nofork"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("dbus-daemon");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::BufReader::new(out).read_line(&mut line),
    )
    .await
    .expect("dbus-daemon printed no address in 10 s")
    .expect("read address");
    let address = line.trim().to_string();
    assert!(address.starts_with("unix:"), "address {address:?}");
    Bus {
        child,
        address,
        _dir: dir,
    }
}

async fn serve(
    bus: &Bus,
    admin_gid: Option<u32>,
    m: Arc<FakeManager>,
) -> (DbusHandle, broadcast::Sender<Signal>) {
    let (tx, rx) = broadcast::channel(16);
    let cfg = DbusConfig {
        enabled: true,
        bus: bus.address.clone(),
    };
    let h = serve_dbus(&cfg, admin_gid, m, rx).await.expect("serve");
    (h, tx)
}

/// `busctl` against the bus, optionally as another user (setpriv);
/// (success, stdout, stderr).
async fn busctl(
    bus: &Bus,
    as_user: Option<(u32, Option<u32>)>,
    args: &[&str],
) -> (bool, String, String) {
    let mut argv: Vec<String> = Vec::new();
    if let Some((uid, group)) = as_user {
        argv.push("setpriv".into());
        argv.push(format!("--reuid={uid}"));
        argv.push("--regid=65534".into());
        match group {
            Some(g) => argv.push(format!("--groups={g}")),
            None => argv.push("--clear-groups".into()),
        }
    }
    argv.push("busctl".into());
    argv.push(format!("--address={}", bus.address));
    argv.extend(args.iter().map(|s| s.to_string()));
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("busctl within 20 s")
    .expect("run busctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const OBJ: [&str; 3] = [BUS_NAME, OBJECT_PATH, INTERFACE];

fn call<'a>(method: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["call", OBJ[0], OBJ[1], OBJ[2], method];
    v.extend_from_slice(rest);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbus_zbus_proxy_methods_properties_and_signals() {
    if !can_run() {
        return;
    }
    let bus = start_bus(None).await;
    let m = FakeManager::with(&["s1", "s2"]);
    let (_h, tx) = serve(&bus, None, m.clone()).await;

    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .expect("client connection");
    let p = Manager1ClientProxy::new(&conn).await.expect("proxy");

    let list = p.list_sessions().await.expect("ListSessions");
    assert_eq!(
        list.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s1", "s2"]
    );
    let s1 = p.get_session("s1").await.expect("GetSession");
    assert_eq!(s1, DbusSession::from(info("s1", 100)));
    assert_eq!(s1.exit_status, -1);

    let e = p.get_session("nope").await.expect_err("unknown session");
    assert!(
        e.to_string().contains("org.shieldd.Error.NoSuchSession"),
        "{e}"
    );

    p.isolate("s1", "suspicious").await.expect("Isolate");
    assert_eq!(p.get_session("s1").await.expect("get").state, "isolated");
    p.release("s1").await.expect("Release");
    let e = p
        .release("s1")
        .await
        .expect_err("release of a running session");
    assert!(
        e.to_string().contains("org.shieldd.Error.InvalidState"),
        "{e}"
    );
    p.reload_policy("s2", "/etc/shieldd/p.yaml")
        .await
        .expect("ReloadPolicy");
    p.kill("s2", "").await.expect("Kill");
    // The caller is this process (as root): the bus says who it is.
    let me = format!("actor dbus uid 0 pid Some({})", std::process::id());
    assert_eq!(
        m.calls(),
        [
            "isolate s1 suspicious (D-Bus, uid 0)",
            me.as_str(),
            "release s1",
            me.as_str(),
            "reload s2 /etc/shieldd/p.yaml",
            "kill s2 D-Bus, uid 0",
            me.as_str(),
        ]
    );

    assert_eq!(p.sessions_active().await.expect("prop"), 2);
    assert_eq!(p.violations().await.expect("prop"), 4);

    let mut violations = p.receive_violation().await.expect("subscribe");
    let mut started = p.receive_session_started().await.expect("subscribe");
    // A signal of another kind first: the stream must skip it.
    tx.send(Signal::SessionStarted {
        session: "s3".into(),
        pid: 77,
    })
    .expect("send");
    tx.send(Signal::Violation {
        session: "s1".into(),
        rule: "network".into(),
        action: "kill".into(),
        detail: "connect 10.0.0.1:22".into(),
    })
    .expect("send");
    let v = tokio::time::timeout(Duration::from_secs(10), violations.next())
        .await
        .expect("Violation within 10 s")
        .expect("stream open");
    let a = v.args().expect("args");
    assert_eq!(
        (a.session(), a.rule(), a.action(), a.detail()),
        (&"s1", &"network", &"kill", &"connect 10.0.0.1:22")
    );
    let s = tokio::time::timeout(Duration::from_secs(10), started.next())
        .await
        .expect("SessionStarted within 10 s")
        .expect("stream open");
    let a = s.args().expect("args");
    assert_eq!((*a.session(), *a.pid()), ("s3", 77));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbus_busctl_root_and_non_admin_refused_by_shieldd() {
    if !can_run() {
        return;
    }
    // Everything allowed by the bus: shieldd's own check must refuse.
    let bus = start_bus(None).await;
    let m = FakeManager::with(&["s1"]);
    let (_h, tx) = serve(&bus, Some(4242), m.clone()).await;

    let (ok, out, err) = busctl(&bus, None, &call("GetSession", &["s", "s1"])).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with(
            "ssuuasssisstttttt \"s1\" \"running\" 100 65534 2 \"/usr/bin/python3\" \"agent.py\""
        ),
        "{out}"
    );
    let (ok, out, err) = busctl(
        &bus,
        None,
        &["--json=short"]
            .iter()
            .copied()
            .chain(call("ListSessions", &[]))
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("busctl JSON");
    assert_eq!(v["data"][0][0][0], "s1", "{out}");

    // nobody, no groups: refused by shieldd, and nothing happened.
    let (ok, _, err) = busctl(&bus, Some((65534, None)), &call("Kill", &["ss", "s1", "x"])).await;
    // The bus allows everything here, so the refusal is shieldd's own.
    assert!(!ok);
    assert!(err.contains("Access denied"), "{err}");
    assert!(m.calls().is_empty());
    // The same user in the admin group is let through.
    let (ok, _, err) = busctl(
        &bus,
        Some((65534, Some(4242))),
        &call("Isolate", &["ss", "s1", "look"]),
    )
    .await;
    assert!(ok, "{err}");
    let calls = m.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], "isolate s1 look (D-Bus, uid 65534)");
    // The actor is busctl's process, as the bus reports it.
    assert!(
        calls[1].starts_with("actor dbus uid 65534 pid Some("),
        "{calls:?}"
    );
    // A member of another group is not.
    let (ok, _, _) = busctl(
        &bus,
        Some((65534, Some(4243))),
        &call("Release", &["s", "s1"]),
    )
    .await;
    assert!(!ok);
    assert_eq!(m.calls().len(), 2);

    // Properties are for everyone.
    let (ok, out, err) = busctl(
        &bus,
        Some((65534, None)),
        &["get-property", OBJ[0], OBJ[1], OBJ[2], "SessionsTotal"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "t 9");

    // The Alert signal's arguments as `busctl monitor` prints them. The
    // monitor subscribes at its own pace: send until it has seen one.
    let mut mon = tokio::process::Command::new("busctl")
        .arg(format!("--address={}", bus.address))
        .args([
            "monitor",
            "--json=short",
            "--match",
            "type='signal',member='Alert'",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("busctl monitor");
    let alert = Alert {
        kind: "blocked_inputs".into(),
        session: None,
        count: 20,
        window_secs: 60.0,
        detail: "20 blocked inbound scans in 60 s".into(),
        ts: "2026-11-25T04:00:00Z".into(),
    };
    let mut lines = tokio::io::BufReader::new(mon.stdout.take().expect("stdout")).lines();
    let mut seen = None;
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let _ = tx.send(Signal::Alert(alert.clone()));
            match tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await {
                Err(_) => continue,
                Ok(Ok(Some(l))) if l.contains("\"member\":\"Alert\"") => {
                    seen = Some(l);
                    return;
                }
                Ok(Ok(Some(_))) => continue,
                Ok(_) => return,
            }
        }
    })
    .await;
    let _ = mon.start_kill();
    let seen = seen.expect("busctl monitor saw the Alert signal");
    let v: serde_json::Value = serde_json::from_str(&seen).expect("JSON");
    assert_eq!(
        v["payload"]["data"],
        serde_json::json!([
            "blocked_inputs",
            "",
            20,
            60.0,
            "20 blocked inbound scans in 60 s",
            "2026-11-25T04:00:00Z"
        ]),
        "{seen}"
    );
}

fn group_name_of(gid: u32) -> Option<String> {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbus_shipped_bus_policy_refuses_others_and_admits_admin_group() {
    if !can_run() {
        return;
    }
    // The shipped policy, its group renamed to one that exists here.
    let (gid, group) = [100u32, 60, 50, 20]
        .into_iter()
        .find_map(|g| group_name_of(g).map(|n| (g, n)))
        .expect("a system group");
    let bus = start_bus(Some(&group)).await;
    let m = FakeManager::with(&["s1"]);
    // First shieldd's admin group is 4242, which the bus policy does not
    // name: shieldd would admit a 4242 member, so its refusal is the bus's.
    let (h, tx) = serve(&bus, Some(4242), m.clone()).await;

    // root may call.
    let (ok, _, err) = busctl(&bus, None, &call("ListSessions", &[])).await;
    assert!(ok, "{err}");
    let (ok, _, err) = busctl(
        &bus,
        Some((65534, Some(4242))),
        &call("Kill", &["ss", "s1", "x"]),
    )
    .await;
    assert!(!ok);
    assert!(err.contains("Access denied"), "{err}");
    assert!(m.calls().is_empty());
    // ... but may read the counters and introspect.
    let (ok, out, err) = busctl(
        &bus,
        Some((65534, None)),
        &["get-property", OBJ[0], OBJ[1], OBJ[2], "Violations"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "t 4");
    let (ok, out, err) = busctl(&bus, Some((65534, None)), &["introspect", OBJ[0], OBJ[1]]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(".ReloadPolicy") && out.contains(".SessionEnded"),
        "{out}"
    );
    // Now with the group the bus policy names: a member passes both locks.
    drop((h, tx));
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .expect("client");
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.expect("bus proxy");
    let name = zbus::names::BusName::from_static_str(BUS_NAME).expect("name");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while dbus
        .name_has_owner(name.clone())
        .await
        .expect("NameHasOwner")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_h, _tx) = serve(&bus, Some(gid), m.clone()).await;
    let (ok, _, err) = busctl(
        &bus,
        Some((65534, Some(gid))),
        &call("Kill", &["ss", "s1", "done"]),
    )
    .await;
    assert!(ok, "{err}");
    let calls = m.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], "kill s1 done (D-Bus, uid 65534)");
    // The actor is busctl's process, as the bus reports it.
    assert!(
        calls[1].starts_with("actor dbus uid 65534 pid Some("),
        "{calls:?}"
    );
    // Only root may own the name: a second owner as nobody is refused.
    let (ok, _, _) = busctl(
        &bus,
        Some((65534, None)),
        &[
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "RequestName",
            "su",
            "org.shieldd.Manager1",
            "0",
        ],
    )
    .await;
    assert!(!ok, "nobody could request the name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbus_lagging_forwarder_counts_missed_signals() {
    if !can_run() {
        return;
    }
    let bus = start_bus(None).await;
    let (tx, rx) = broadcast::channel(2);
    // Five signals into a channel of two before the forwarder reads: three are lost.
    for pid in 0..5 {
        tx.send(Signal::SessionStarted {
            session: format!("s{pid}"),
            pid,
        })
        .expect("send");
    }
    let cfg = DbusConfig {
        enabled: true,
        bus: bus.address.clone(),
    };
    let h = serve_dbus(&cfg, None, FakeManager::with(&[]), rx)
        .await
        .expect("serve");
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .expect("client");
    let p = Manager1ClientProxy::new(&conn).await.expect("proxy");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.signals_lost() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.signals_lost(), 3);
    assert_eq!(p.signals_lost().await.expect("SignalsLost"), 3);
    drop(tx);
}

#[test]
fn dbus_session_maps_every_field() {
    let mut i = info("s9", 5);
    i.state = SessionState::Ended;
    i.exit_status = Some(137);
    let d = DbusSession::from(i);
    assert_eq!((d.state.as_str(), d.exit_status, d.pid), ("ended", 137, 5));
    assert_eq!(
        <DbusSession as zbus::Type>::SIGNATURE.to_string(),
        "(ssuuasssisstttttt)"
    );
}

#[test]
fn dbus_admin_gid_resolves_names_and_numbers() {
    assert_eq!(admin_gid(None).expect("none"), None);
    assert_eq!(admin_gid(Some("root")).expect("root"), Some(0));
    assert_eq!(admin_gid(Some("4242")).expect("number"), Some(4242));
    assert!(matches!(
        admin_gid(Some("no-such-group-shieldd")),
        Err(DbusError::UnknownGroup(_))
    ));
}
