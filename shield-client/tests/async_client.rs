//! The tokio client against the real `shieldd serve`.

mod common;

use std::time::{Duration, Instant};

use common::{Server, Silent, BENIGN, CARD, INJECTION};
use serde_json::json;
use shield_client::{Action, AsyncClient, Direction, Error, FailMode, FindingKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_tools_and_streams() {
    let srv = Server::start();
    let c = AsyncClient::connect(&srv.socket).await.expect("connect");
    assert!(c.scan_input(INJECTION).await.blocked);
    assert_eq!(c.scan_input(BENIGN).await.action, Action::Allow);
    let v = c.scan_output(&format!("card {CARD} ok")).await;
    assert_eq!(v.action, Action::Redact, "{v:?}");
    assert!(!v.redacted.unwrap_or_default().contains("4111"));
    let q = |s: &str| json!({ "query": s });
    assert!(
        c.check_tool("database_query", &q("DELETE FROM orders"))
            .await
            .blocked
    );
    let v = c
        .check_tool("database_query", &q("SELECT id FROM orders LIMIT 10"))
        .await;
    assert_eq!(v.action, Action::Allow, "{v:?}");
    let v = c
        .check_tool("send_email", &json!({"to": "bob@yourcompany.com"}))
        .await;
    assert_eq!(v.action, Action::NeedsApproval, "{v:?}");
    let mut s = c.open_stream(Direction::Outbound).await;
    assert!(!s.push("key AKIAQ7ZJ3LXW").await.blocked);
    let v2 = s.push("5NPRD2KM done").await;
    let end = s.close().await;
    assert!(v2.blocked || end.blocked, "{v2:?} / {end:?}");
    assert!(end.findings.iter().any(|f| f.kind == FindingKind::Secret));
    assert!(
        c.stats().await.expect("stats")["requests"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_requests_on_one_client_matched_by_id() {
    let srv = Server::start();
    let c = AsyncClient::new(&srv.socket);
    c.ping().await.expect("ping");
    let conns = c.stats().await.expect("stats")["connections"].as_u64();
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            // Each task's answer must be its own: bad texts block, good
            // texts allow, and a tool check answers with a tool verdict.
            match i % 3 {
                0 => {
                    let v = c
                        .try_scan(&format!("{INJECTION} #{i}"), Direction::Inbound)
                        .await;
                    matches!(v, Ok(v) if v.blocked)
                }
                1 => {
                    let v = c
                        .try_scan(&format!("{BENIGN} #{i}"), Direction::Inbound)
                        .await;
                    matches!(v, Ok(v) if v.action == Action::Allow)
                }
                _ => {
                    let v = c
                        .try_check_tool(
                            "send_email",
                            &json!({"to": format!("u{i}@yourcompany.com")}),
                        )
                        .await;
                    matches!(v, Ok(v) if v.action == Action::NeedsApproval)
                }
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert!(
            t.await.unwrap_or(false),
            "request {i} got someone else's answer or none"
        );
    }
    assert_eq!(
        c.stats().await.expect("stats")["connections"].as_u64(),
        conns,
        "all 64 went over the one connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_session_fails_per_mode_then_reconnects() {
    let mut srv = Server::start();
    let closed = AsyncClient::new(&srv.socket).with_timeout(Duration::from_secs(3));
    let open = AsyncClient::new(&srv.socket)
        .with_timeout(Duration::from_secs(3))
        .with_fail_mode(FailMode::Open);
    closed.ping().await.expect("ping");
    open.ping().await.expect("ping");
    let mut stream = closed.open_stream(Direction::Outbound).await;
    srv.kill();
    let t = Instant::now();
    assert!(closed.scan_input(BENIGN).await.blocked);
    assert_eq!(open.scan_input(INJECTION).await.action, Action::Allow);
    assert!(matches!(
        closed.try_scan(BENIGN, Direction::Inbound).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        stream.try_push("x").await,
        Err(Error::StreamLost(_))
    ));
    assert!(stream.push("x").await.blocked);
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "no hang: {:?}",
        t.elapsed()
    );
    tokio::task::block_in_place(|| srv.restart());
    assert!(closed.scan_input(INJECTION).await.blocked);
    assert_eq!(closed.scan_input(BENIGN).await.action, Action::Allow);
    assert!(open.scan_input(INJECTION).await.blocked);
    // Restart under a held connection: the next call reconnects by itself.
    tokio::task::block_in_place(|| srv.restart());
    let v = closed.try_scan(BENIGN, Direction::Inbound).await;
    assert_eq!(v.map(|v| v.action).ok(), Some(Action::Allow));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_and_missing_socket_do_not_hang() {
    let s = Silent::start();
    let c = AsyncClient::new(&s.socket).with_timeout(Duration::from_millis(300));
    let t = Instant::now();
    assert!(matches!(
        c.try_scan(BENIGN, Direction::Inbound).await,
        Err(Error::Timeout(_))
    ));
    assert!(c.scan_input(BENIGN).await.blocked);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("none.sock");
    assert!(AsyncClient::new(&missing).scan_input(BENIGN).await.blocked);
    let open = AsyncClient::new(&missing).with_fail_mode(FailMode::Open);
    assert_eq!(open.scan_input(INJECTION).await.action, Action::Allow);
    assert!(matches!(AsyncClient::connect(&missing).await, Err(e) if e.is_unavailable()));
}
