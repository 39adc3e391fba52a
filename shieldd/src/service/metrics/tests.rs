//! Records in, `/metrics` scraped over real HTTP, the exposition parsed.

use std::collections::BTreeMap;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::service::{Actor, ControlError, Counters, SessionInfo};

struct FixedManager;

impl Manager for FixedManager {
    fn sessions(&self) -> Vec<SessionInfo> {
        Vec::new()
    }
    fn session(&self, id: &str) -> Result<SessionInfo, ControlError> {
        Err(ControlError::NoSuchSession(id.into()))
    }
    fn kill(&self, _: &str, _: &str, _: Option<&Actor>) -> Result<(), ControlError> {
        Ok(())
    }
    fn isolate(&self, _: &str, _: &str, _: Option<&Actor>) -> Result<(), ControlError> {
        Ok(())
    }
    fn release(&self, _: &str, _: Option<&Actor>) -> Result<(), ControlError> {
        Ok(())
    }
    fn reload_policy(&self, _: &str, _: &str) -> Result<(), ControlError> {
        Ok(())
    }
    fn counters(&self) -> Counters {
        Counters {
            sessions_active: 3,
            sessions_total: 11,
            violations: 5,
            alerts: 2,
            scans: 99,
            lost_events: 7,
        }
    }
}

/// A strict parser of the text format: every line is a comment (`# HELP`,
/// `# TYPE`, `# EOF`) or `name{k="v",...} value`; anything else fails.
/// Keys are `name{k="v",...}` with labels sorted.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix("# ") {
            assert!(
                c.starts_with("HELP ") || c.starts_with("TYPE ") || c == "EOF",
                "bad comment {line:?}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let key = match series.split_once('{') {
            None => {
                assert!(
                    series
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                    "bad name {series:?}"
                );
                series.to_string()
            }
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("closing brace");
                let mut labels: Vec<&str> = inner.split(',').collect();
                for l in &labels {
                    let (k, v) = l.split_once('=').expect("label k=v");
                    assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    assert!(
                        v.starts_with('"') && v.ends_with('"') && v.len() >= 2,
                        "{l}"
                    );
                }
                labels.sort();
                format!("{name}{{{}}}", labels.join(","))
            }
        };
        assert!(
            out.insert(key, value).is_none(),
            "duplicate series {line:?}"
        );
    }
    out
}

async fn get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response within 10 s")
        .expect("read");
    let text = String::from_utf8(buf).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or("")
        .to_string();
    (status, ctype, body.to_string())
}

fn feed(m: &Metrics) {
    let scan = |dir: &str, action: &str, kinds: &[&str], us: u64| {
        json!({"event": "scan", "direction": dir, "action": action, "bytes": 10,
               "findings": kinds.iter().map(|k| json!({"kind": k, "type": "x", "start": 0, "end": 1})).collect::<Vec<_>>(),
               "latency_us": us})
    };
    m.observe("s1", "session_start", &json!({"pid": 1}));
    m.observe("s2", "session_start", &json!({"pid": 2}));
    m.observe("s1", "scan", &scan("inbound", "block", &["injection"], 40));
    m.observe(
        "s1",
        "scan",
        &scan("inbound", "block", &["injection", "injection"], 400),
    );
    m.observe("s1", "scan", &scan("inbound", "allow", &[], 4000));
    m.observe(
        "s2",
        "scan",
        &scan("outbound", "redact", &["pii", "secret"], 90_000),
    );
    // `elapsed_us` wins over `latency_us` when both are there.
    m.observe(
        "s2",
        "scan",
        &json!({"event": "scan", "direction": "outbound", "action": "allow", "findings": [], "elapsed_us": 5, "latency_us": 999_999_999}),
    );
    m.observe(
        "s1",
        "tool_call",
        &json!({"tool": "read_file", "action": "block", "findings": []}),
    );
    m.observe(
        "s1",
        "tool_call",
        &json!({"tool": "read_file", "action": "allow", "findings": []}),
    );
    m.observe(
        "s1",
        "violation",
        &json!({"rule": "network", "action": "kill", "detail": "x"}),
    );
    m.observe(
        "s2",
        "violation",
        &json!({"rule": "network", "action": "kill", "detail": "y"}),
    );
    m.observe(
        "s2",
        "violation",
        &json!({"rule": "exec", "action": "log", "detail": "z"}),
    );
    m.observe("s1", "kill", &json!({"reason": "violation"}));
    m.observe("s1", "lost_events", &json!({"count": 17}));
    m.observe("s1", "lost_events", &json!({"count": 3}));
    m.observe("s1", "alert", &json!({"kind": "blocked_inputs"}));
    m.observe("s1", "session_end", &json!({"exit_status": 137}));
    // Events the metrics do not count, and garbage, change nothing.
    m.observe("s1", "open", &json!({"path": "/etc/passwd"}));
    m.observe("s1", "scan", &json!("not an object"));
}

#[tokio::test]
async fn metrics_scraped_over_http_and_parsed() {
    let m = Metrics::new(Some(Arc::new(FixedManager)));
    feed(&m);
    let h = serve_metrics("127.0.0.1:0".parse().expect("addr"), m.clone())
        .await
        .expect("serve");
    let (status, ctype, body) = get(h.local_addr(), "/metrics", "*/*").await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    let v = parse(&body);
    let at = |k: &str| {
        *v.get(k)
            .unwrap_or_else(|| panic!("no series {k} in\n{body}"))
    };
    assert_eq!(
        at(r#"shieldd_scans_total{action="block",direction="inbound"}"#),
        2.0
    );
    assert_eq!(
        at(r#"shieldd_scans_total{action="allow",direction="inbound"}"#),
        1.0
    );
    assert_eq!(
        at(r#"shieldd_scans_total{action="redact",direction="outbound"}"#),
        1.0
    );
    // The garbage record counts as a scan of unknown direction and action, nothing more.
    assert_eq!(
        at(r#"shieldd_scans_total{action="unknown",direction="unknown"}"#),
        1.0
    );
    assert_eq!(
        at(r#"shieldd_findings_total{direction="inbound",kind="injection"}"#),
        3.0
    );
    assert_eq!(
        at(r#"shieldd_findings_total{direction="outbound",kind="pii"}"#),
        1.0
    );
    assert_eq!(
        at(r#"shieldd_findings_total{direction="outbound",kind="secret"}"#),
        1.0
    );
    assert_eq!(at(r#"shieldd_tool_calls_total{action="block"}"#), 1.0);
    assert_eq!(at(r#"shieldd_tool_calls_total{action="allow"}"#), 1.0);
    assert_eq!(
        at(r#"shieldd_violations_total{action="kill",rule="network"}"#),
        2.0
    );
    assert_eq!(
        at(r#"shieldd_violations_total{action="log",rule="exec"}"#),
        1.0
    );
    assert_eq!(at(r#"shieldd_containments_total{action="kill"}"#), 1.0);
    assert_eq!(at("shieldd_lost_events_total"), 20.0);
    assert_eq!(at(r#"shieldd_alerts_total{kind="blocked_inputs"}"#), 1.0);
    assert_eq!(at("shieldd_sessions_started_total"), 2.0);
    assert_eq!(at("shieldd_sessions_ended_total"), 1.0);
    // Latency: inbound 40 us, 400 us, 4 ms; outbound 90 ms and 5 us.
    assert_eq!(
        at(r#"shieldd_scan_latency_seconds_count{direction="inbound"}"#),
        3.0
    );
    let sum = at(r#"shieldd_scan_latency_seconds_sum{direction="inbound"}"#);
    assert!((sum - 0.00444).abs() < 1e-9, "{sum}");
    assert_eq!(
        at(r#"shieldd_scan_latency_seconds_bucket{direction="inbound",le="4e-05"}"#),
        1.0
    );
    assert_eq!(
        at(r#"shieldd_scan_latency_seconds_bucket{direction="inbound",le="0.00064"}"#),
        2.0
    );
    assert_eq!(
        at(r#"shieldd_scan_latency_seconds_bucket{direction="inbound",le="+Inf"}"#),
        3.0
    );
    let osum = at(r#"shieldd_scan_latency_seconds_sum{direction="outbound"}"#);
    assert!((osum - 0.090005).abs() < 1e-9, "{osum}");
    // The registry's counters, read at scrape time.
    assert_eq!(at("shieldd_sessions_active"), 3.0);
    assert_eq!(at("shieldd_daemon_sessions_total"), 11.0);
    assert_eq!(at("shieldd_daemon_lost_events_total"), 7.0);
    // Nothing about the `open` record.
    assert!(!body.contains("passwd"));

    // OpenMetrics when asked for, ending with # EOF.
    let (status, ctype, body) =
        get(h.local_addr(), "/metrics", "application/openmetrics-text").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert_eq!(parse(&body)["shieldd_lost_events_total"], 20.0);

    // Elsewhere: 404.
    let (status, _, _) = get(h.local_addr(), "/", "*/*").await;
    assert_eq!(status, 404);
    let (status, _, _) = get(h.local_addr(), "/metrics/x", "*/*").await;
    assert_eq!(status, 404);
}

#[test]
fn metrics_label_values_are_bounded() {
    let m = Metrics::new(None);
    for i in 0..(MAX_LABEL_VALUES + 50) {
        m.observe(
            "s",
            "violation",
            &json!({"rule": format!("rule{i}"), "action": "log"}),
        );
    }
    let v = parse(&m.encode(false));
    let rules = v
        .keys()
        .filter(|k| k.starts_with("shieldd_violations_total"))
        .count();
    assert_eq!(rules, MAX_LABEL_VALUES + 1);
    assert_eq!(
        v[r#"shieldd_violations_total{action="log",rule="other"}"#],
        50.0
    );
    // A value already seen keeps its own series after the cap.
    m.observe("s", "violation", &json!({"rule": "rule0", "action": "log"}));
    let v = parse(&m.encode(false));
    assert_eq!(
        v[r#"shieldd_violations_total{action="log",rule="rule0"}"#],
        2.0
    );
}

#[tokio::test]
async fn metrics_bind_failure_is_an_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = taken.local_addr().expect("addr");
    let e = serve_metrics(addr, Metrics::new(None))
        .await
        .err()
        .expect("in use");
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
}
