//! The blocking client against the real `shieldd serve`.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Silent, BENIGN, CARD, INJECTION};
use serde_json::json;
use shield_client::{Action, Client, Direction, Error, FailMode, FindingKind};

#[test]
fn injection_blocked_inbound_and_benign_allowed() {
    let srv = Server::start();
    let mut c = Client::connect(&srv.socket).expect("connect");
    let v = c.scan_input(INJECTION);
    assert!(v.blocked, "{v:?}");
    assert_eq!(v.action, Action::Block);
    assert!(v.findings.iter().any(|f| f.kind == FindingKind::Injection));
    let v = c.try_scan(BENIGN, Direction::Inbound).expect("scan");
    assert_eq!(v.action, Action::Allow, "{v:?}");
    assert!(v.findings.is_empty());
}

#[test]
fn credit_card_redacted_outbound() {
    let srv = Server::start();
    let mut c = Client::new(&srv.socket);
    let text = format!("Sure, the card on file is {CARD}, expiring soon.");
    let v = c.scan_output(&text);
    assert_eq!(v.action, Action::Redact, "{v:?}");
    assert!(!v.blocked);
    let red = v.redacted.expect("redacted text");
    assert!(!red.contains("4111") && !red.contains("1111"), "{red}");
    assert!(red.starts_with("Sure, the card on file is "), "{red}");
    // A number that fails the Luhn check is not a card.
    let v = c.scan_output("Tracking number 4111 1111 1111 1112 is on its way.");
    assert!(!v.findings.iter().any(|f| f.ty == "credit_card"), "{v:?}");
}

#[test]
fn tool_policy_verdicts() {
    let srv = Server::start();
    let mut c = Client::new(&srv.socket);
    let v = c.check_tool("database_query", &json!({"query": "DELETE FROM orders"}));
    assert!(v.blocked, "{v:?}");
    assert!(v.findings.iter().any(|f| f.kind == FindingKind::ToolPolicy));
    let v = c.check_tool(
        "database_query",
        &json!({"query": "SELECT id FROM orders LIMIT 10"}),
    );
    assert_eq!(v.action, Action::Allow, "{v:?}");
    let v = c.check_tool(
        "send_email",
        &json!({"to": "bob@yourcompany.com", "body": "hi"}),
    );
    assert_eq!(v.action, Action::NeedsApproval, "{v:?}");
    let v = c.check_tool(
        "send_email",
        &json!({"to": "eve@evil.example", "body": "hi"}),
    );
    assert!(v.blocked, "{v:?}");
    let v = c.check_tool("shell", &json!({"cmd": "ls"}));
    assert!(v.blocked, "unknown tools are denied by default: {v:?}");
}

#[test]
fn stream_catches_secret_split_across_chunks() {
    let srv = Server::start();
    let mut c = Client::new(&srv.socket);
    let mut s = c.open_stream(Direction::Outbound);
    assert!(s.handle().is_some());
    let v1 = s.push("Here is the deploy key: AKIAQ7ZJ3LXW");
    assert!(!v1.blocked, "half a key is nothing yet: {v1:?}");
    let v2 = s.push("5NPRD2KM and that is all.");
    let end = s.close();
    assert!(v2.blocked || end.blocked, "{v2:?} / {end:?}");
    assert!(
        end.findings.iter().any(|f| f.kind == FindingKind::Secret),
        "{end:?}"
    );
    // The same client goes on serving after the stream.
    let mut s = c.open_stream(Direction::Outbound);
    assert!(!s.push("The weather is nice ").blocked);
    assert!(!s.push("in Lisbon today.").blocked);
    assert_eq!(s.close().action, Action::Allow);
    // Abandoned streams are released: more than the server's per-connection
    // limit (64) can be opened in turn.
    for _ in 0..80 {
        let mut s = c.try_open_stream(Direction::Inbound).expect("open");
        let _ = s.try_push("x").expect("push");
    }
    assert!(c.ping().is_ok());
}

#[test]
fn fail_closed_blocks_and_fail_open_allows_on_missing_socket() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("none.sock");
    let mut closed = Client::new(&missing);
    assert_eq!(closed.fail_mode(), FailMode::Closed);
    assert!(closed.scan_input(BENIGN).blocked);
    assert!(
        closed
            .check_tool("database_query", &json!({"query": "SELECT 1"}))
            .blocked
    );
    assert!(
        closed
            .open_stream(Direction::Outbound)
            .push("hello")
            .blocked
    );
    assert!(matches!(
        closed.try_scan(BENIGN, Direction::Inbound),
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(Client::connect(&missing), Err(e) if e.is_unavailable()));
    let mut open = Client::new(&missing).with_fail_mode(FailMode::Open);
    let v = open.scan_input(INJECTION);
    assert_eq!(v.action, Action::Allow);
    assert!(matches!(open.ping(), Err(Error::Unavailable { .. })));
}

#[test]
fn from_env_reads_shield_socket() {
    // The only test touching the variable, so no other test races it.
    std::env::remove_var("SHIELD_SOCKET");
    assert!(matches!(Client::from_env(), Err(Error::NoSocket)));
    let srv = Server::start();
    std::env::set_var("SHIELD_SOCKET", &srv.socket);
    let mut c = Client::from_env().expect("from env");
    assert_eq!(c.path(), srv.socket.as_path());
    assert!(c.ping().is_ok());
}

#[test]
fn one_connection_reused_across_calls() {
    let srv = Server::start();
    let mut c = Client::new(&srv.socket);
    let before = c.stats().expect("stats")["connections"]
        .as_u64()
        .expect("count");
    for _ in 0..20 {
        assert!(c.scan_input(INJECTION).blocked);
    }
    let after = c.stats().expect("stats")["connections"]
        .as_u64()
        .expect("count");
    assert_eq!(before, after, "calls must reuse the connection");
}

#[test]
fn server_killed_mid_session_fails_per_mode_then_reconnects() {
    let mut srv = Server::start();
    let mut closed = Client::new(&srv.socket).with_timeout(Duration::from_secs(3));
    let mut open = Client::new(&srv.socket)
        .with_timeout(Duration::from_secs(3))
        .with_fail_mode(FailMode::Open);
    assert!(closed.ping().is_ok() && open.ping().is_ok());
    srv.kill();
    let t = Instant::now();
    assert!(closed.scan_input(BENIGN).blocked);
    assert_eq!(open.scan_input(INJECTION).action, Action::Allow);
    assert!(matches!(
        closed.try_scan(BENIGN, Direction::Inbound),
        Err(Error::Unavailable { .. })
    ));
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "no hang: {:?}",
        t.elapsed()
    );
    // A restarted server is found again by the same clients.
    srv.restart();
    assert!(closed.scan_input(INJECTION).blocked);
    assert_eq!(closed.scan_input(BENIGN).action, Action::Allow);
    assert!(open.scan_input(INJECTION).blocked);
    // A connection broken under a live client (server restarted while the
    // client held it) is replaced transparently.
    srv.restart();
    assert_eq!(
        closed
            .try_scan(BENIGN, Direction::Inbound)
            .map(|v| v.action)
            .ok(),
        Some(Action::Allow)
    );
}

#[test]
fn silent_server_times_out_instead_of_hanging() {
    let s = Silent::start();
    let mut c = Client::new(&s.socket).with_timeout(Duration::from_millis(300));
    let t = Instant::now();
    assert!(matches!(
        c.try_scan(BENIGN, Direction::Inbound),
        Err(Error::Timeout(_))
    ));
    assert!(c.scan_input(BENIGN).blocked);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn oversized_request_refused_before_sending() {
    let srv = Server::start();
    let mut c = Client::new(&srv.socket);
    let big = "a".repeat(2 << 20);
    assert!(matches!(
        c.try_scan(&big, Direction::Inbound),
        Err(Error::RequestTooLarge { .. })
    ));
    assert!(c.scan_input(&big).blocked);
    assert!(c.ping().is_ok(), "the connection stays usable");
}
