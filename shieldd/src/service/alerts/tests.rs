//! Thresholds at N and not N-1, sliding windows, cooldown, look-alikes that
//! must not count, and the command run for real.

use std::sync::OnceLock;

use serde_json::json;

use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn th(count: u64, window: f64) -> Option<Threshold> {
    Some(Threshold {
        count,
        window: secs(window),
    })
}

/// Every rule off, no cooldown.
fn quiet() -> AlertsConfig {
    AlertsConfig {
        blocked_inputs_session: None,
        blocked_inputs_host: None,
        tool_denials: None,
        sensitive_output: false,
        tool_rate: None,
        command: None,
        cooldown: Duration::ZERO,
    }
}

type Seen = Arc<Mutex<Vec<Alert>>>;

fn engine(cfg: AlertsConfig) -> (Arc<AlertEngine>, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let e = AlertEngine::new(
        &cfg,
        Arc::new(move |a| {
            if let Ok(mut v) = s.lock() {
                v.push(a);
            }
        }),
    )
    .expect("engine");
    (e, seen)
}

fn taken(seen: &Seen) -> Vec<Alert> {
    seen.lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

fn scan(direction: &str, action: &str, kinds: &[(&str, &str)]) -> Value {
    json!({"event": "scan", "direction": direction, "action": action, "bytes": 5, "latency_us": 10,
           "findings": kinds.iter().map(|(k, t)| json!({"kind": k, "type": t, "start": 0, "end": 1})).collect::<Vec<_>>()})
}

fn tool(action: &str) -> Value {
    json!({"event": "tool_call", "tool": "read_file", "action": action, "findings": [], "latency_us": 3})
}

#[test]
fn alerts_blocked_inputs_fire_at_n_not_before_and_ignore_look_alikes() {
    let (e, seen) = engine(AlertsConfig {
        blocked_inputs_session: th(3, 10.0),
        ..quiet()
    });
    let t0 = Instant::now();
    let block = scan("inbound", "block", &[("injection", "direct_injection")]);
    e.observe_at("s1", "scan", &block, t0);
    e.observe_at("s1", "scan", &block, t0 + secs(1.0));
    // Look-alikes: allowed and redacted inbound scans, a blocked outbound
    // scan, a blocked tool call, another session's block.
    e.observe_at("s1", "scan", &scan("inbound", "allow", &[]), t0 + secs(1.5));
    e.observe_at(
        "s1",
        "scan",
        &scan("inbound", "redact", &[("pii", "ssn")]),
        t0 + secs(1.6),
    );
    e.observe_at(
        "s1",
        "scan",
        &scan("outbound", "block", &[("secret", "aws_key")]),
        t0 + secs(1.7),
    );
    e.observe_at("s1", "tool_call", &tool("block"), t0 + secs(1.8));
    e.observe_at("s2", "scan", &block, t0 + secs(1.9));
    assert!(taken(&seen).is_empty(), "fired at N-1");
    e.observe_at("s1", "scan", &block, t0 + secs(2.0));
    let a = taken(&seen);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (
            a[0].kind.as_str(),
            a[0].session.as_deref(),
            a[0].count,
            a[0].window_secs
        ),
        ("blocked_inputs", Some("s1"), 3, 10.0)
    );
    assert!(a[0].detail.contains("session s1"), "{}", a[0].detail);
    // The window emptied: the next alert needs three new blocks.
    e.observe_at("s1", "scan", &block, t0 + secs(3.0));
    e.observe_at("s1", "scan", &block, t0 + secs(4.0));
    assert!(taken(&seen).is_empty());
    e.observe_at("s1", "scan", &block, t0 + secs(5.0));
    assert_eq!(taken(&seen).len(), 1);
    // The `blocked: true` form of a verdict counts as well.
    let (e, seen) = engine(AlertsConfig {
        blocked_inputs_session: th(1, 10.0),
        ..quiet()
    });
    e.observe_at(
        "s1",
        "scan",
        &json!({"direction": "inbound", "blocked": true}),
        t0,
    );
    assert_eq!(taken(&seen).len(), 1);
}

#[test]
fn alerts_windows_slide() {
    let (e, seen) = engine(AlertsConfig {
        blocked_inputs_session: th(3, 10.0),
        ..quiet()
    });
    let t0 = Instant::now();
    let block = scan("inbound", "block", &[("injection", "x")]);
    e.observe_at("s1", "scan", &block, t0);
    e.observe_at("s1", "scan", &block, t0 + secs(5.0));
    // t0 is exactly one window old at 10 s: it no longer counts.
    e.observe_at("s1", "scan", &block, t0 + secs(10.0));
    assert!(taken(&seen).is_empty(), "an expired record counted");
    e.observe_at("s1", "scan", &block, t0 + secs(11.0));
    let a = taken(&seen);
    assert_eq!(a.len(), 1, "5 s, 10 s and 11 s are within 10 s");
}

#[test]
fn alerts_host_wide_counts_all_sessions() {
    let (e, seen) = engine(AlertsConfig {
        blocked_inputs_host: th(3, 60.0),
        ..quiet()
    });
    let t0 = Instant::now();
    let block = scan("inbound", "block", &[("injection", "x")]);
    e.observe_at("a", "scan", &block, t0);
    e.observe_at("b", "scan", &block, t0 + secs(1.0));
    assert!(taken(&seen).is_empty());
    e.observe_at("c", "scan", &block, t0 + secs(2.0));
    let a = taken(&seen);
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].kind.as_str(), a[0].session.as_deref()),
        ("blocked_inputs", None)
    );
}

#[test]
fn alerts_cooldown_holds_per_kind_and_session() {
    let (e, seen) = engine(AlertsConfig {
        tool_denials: th(2, 60.0),
        cooldown: secs(30.0),
        ..quiet()
    });
    let t0 = Instant::now();
    let deny = tool("block");
    e.observe_at("s1", "tool_call", &deny, t0);
    e.observe_at("s1", "tool_call", &deny, t0 + secs(1.0));
    assert_eq!(taken(&seen).len(), 1);
    // Within the cooldown: suppressed and counted.
    e.observe_at("s1", "tool_call", &deny, t0 + secs(2.0));
    e.observe_at("s1", "tool_call", &deny, t0 + secs(3.0));
    assert!(taken(&seen).is_empty());
    assert_eq!(e.stats().suppressed, 1);
    // Another session has its own cooldown.
    e.observe_at("s2", "tool_call", &deny, t0 + secs(4.0));
    e.observe_at("s2", "tool_call", &deny, t0 + secs(5.0));
    assert_eq!(taken(&seen)[0].session.as_deref(), Some("s2"));
    // Past the cooldown s1 alerts again (its window still holds 2 records
    // from 2 s and 3 s plus this one: it fires at once).
    e.observe_at("s1", "tool_call", &deny, t0 + secs(31.0));
    let a = taken(&seen);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].session.as_deref(), Some("s1"));
    // needs_approval and allow are not denials.
    let (e, seen) = engine(AlertsConfig {
        tool_denials: th(1, 60.0),
        ..quiet()
    });
    e.observe_at("s1", "tool_call", &tool("needs_approval"), t0);
    e.observe_at("s1", "tool_call", &tool("allow"), t0);
    assert!(taken(&seen).is_empty());
    assert_eq!(e.stats().raised, 0);
}

#[test]
fn alerts_tool_rate() {
    let (e, seen) = engine(AlertsConfig {
        tool_rate: th(4, 1.0),
        ..quiet()
    });
    let t0 = Instant::now();
    // Three a second for three seconds: never four within one second.
    for i in 0..9 {
        e.observe_at("s1", "tool_call", &tool("allow"), t0 + secs(i as f64 / 3.0));
    }
    assert!(taken(&seen).is_empty());
    for i in 0..4 {
        e.observe_at(
            "s1",
            "tool_call",
            &tool("allow"),
            t0 + secs(10.0 + i as f64 * 0.1),
        );
    }
    let a = taken(&seen);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].kind.as_str(), a[0].count), ("tool_rate", 4));
}

#[test]
fn alerts_sensitive_output_only_for_outbound_pii_or_secret() {
    let (e, seen) = engine(AlertsConfig {
        sensitive_output: true,
        ..quiet()
    });
    let t0 = Instant::now();
    e.observe_at(
        "s1",
        "scan",
        &scan("inbound", "redact", &[("pii", "ssn")]),
        t0,
    );
    e.observe_at(
        "s1",
        "scan",
        &scan("outbound", "block", &[("exfiltration", "url_data")]),
        t0,
    );
    e.observe_at("s1", "scan", &scan("outbound", "allow", &[]), t0);
    e.observe_at(
        "s1",
        "scan",
        &scan("outbound", "block", &[("injection", "role_override")]),
        t0,
    );
    assert!(taken(&seen).is_empty());
    e.observe_at(
        "s1",
        "scan",
        &scan(
            "outbound",
            "redact",
            &[("pii", "ssn"), ("secret", "aws_key"), ("exfiltration", "x")],
        ),
        t0,
    );
    let a = taken(&seen);
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].kind.as_str(), a[0].count), ("sensitive_output", 2));
    assert!(
        a[0].detail.contains("pii:ssn, secret:aws_key"),
        "{}",
        a[0].detail
    );
    // Off means off.
    let (e, seen) = engine(quiet());
    e.observe_at(
        "s1",
        "scan",
        &scan("outbound", "redact", &[("pii", "ssn")]),
        t0,
    );
    assert!(taken(&seen).is_empty());
}

#[test]
fn alerts_session_end_forgets_the_session() {
    let (e, seen) = engine(AlertsConfig {
        tool_denials: th(2, 60.0),
        ..quiet()
    });
    let t0 = Instant::now();
    e.observe_at("s1", "tool_call", &tool("block"), t0);
    e.observe_at("s1", "session_end", &json!({"exit_status": 0}), t0);
    e.observe_at("s1", "tool_call", &tool("block"), t0 + secs(1.0));
    assert!(taken(&seen).is_empty());
}

#[test]
fn alerts_bad_config_is_refused() {
    let sink: AlertSink = Arc::new(|_| {});
    let e = AlertEngine::new(
        &AlertsConfig {
            tool_rate: th(0, 1.0),
            ..quiet()
        },
        sink.clone(),
    );
    assert!(matches!(
        e,
        Err(AlertError::BadThreshold {
            rule: "tool_rate",
            ..
        })
    ));
    let e = AlertEngine::new(
        &AlertsConfig {
            command: Some(vec![]),
            ..quiet()
        },
        sink.clone(),
    );
    assert!(matches!(e, Err(AlertError::EmptyCommand)));
    // No runtime here.
    let e = AlertEngine::new(
        &AlertsConfig {
            command: Some(vec!["/bin/true".into()]),
            ..quiet()
        },
        sink,
    );
    assert!(matches!(e, Err(AlertError::NoRuntime)));
}

#[test]
fn alerts_sink_may_feed_records_back() {
    // The daemon's sink records an `alert` event, which reaches observers:
    // no deadlock, no alert about the alert.
    let engine_cell: Arc<OnceLock<Arc<AlertEngine>>> = Arc::default();
    let cell = engine_cell.clone();
    let count = Arc::new(AtomicU64::new(0));
    let n = count.clone();
    let e = AlertEngine::new(
        &AlertsConfig {
            tool_denials: th(1, 60.0),
            ..quiet()
        },
        Arc::new(move |a: Alert| {
            n.fetch_add(1, Ordering::Relaxed);
            if let Some(e) = cell.get() {
                e.observe("s1", "alert", &serde_json::to_value(&a).unwrap_or_default());
                e.observe("s1", "tool_call", &tool("allow"));
            }
        }),
    )
    .expect("engine");
    let _ = engine_cell.set(e.clone());
    e.observe("s1", "tool_call", &tool("block"));
    assert_eq!(count.load(Ordering::Relaxed), 1);
}

async fn wait_for(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + secs(15.0);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_command_receives_the_alert_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("alert.json");
    let (e, seen) = engine(AlertsConfig {
        sensitive_output: true,
        command: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("cat > {}.tmp && mv {0}.tmp {0}", out.display()),
        ]),
        ..quiet()
    });
    e.observe(
        "s7",
        "scan",
        &scan("outbound", "block", &[("secret", "aws_key")]),
    );
    let raised = taken(&seen);
    assert_eq!(raised.len(), 1);
    assert!(
        wait_for(|| out.exists()).await,
        "the command never wrote its file"
    );
    let text = std::fs::read_to_string(&out).expect("read");
    assert!(text.ends_with('\n'));
    let got: Alert = serde_json::from_str(&text).expect("alert JSON");
    assert_eq!(got, raised[0]);
    assert!(wait_for(|| e.stats().commands_ok == 1).await);
    assert_eq!(e.stats().commands_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_command_failures_timeouts_and_limit_are_counted() {
    let cfg = |argv: &[&str]| AlertsConfig {
        tool_denials: th(1, 60.0),
        command: Some(argv.iter().map(|s| s.to_string()).collect()),
        ..quiet()
    };
    let sink: AlertSink = Arc::new(|_| {});
    // Exits non-zero; cannot start.
    for argv in [&["/bin/false"][..], &["/nonexistent/pager"][..]] {
        let e = AlertEngine::new(&cfg(argv), sink.clone()).expect("engine");
        e.observe("s1", "tool_call", &tool("block"));
        assert!(
            wait_for(|| e.stats().commands_failed == 1).await,
            "{argv:?}"
        );
        assert_eq!(e.stats().commands_ok, 0);
    }
    // One slot, a command that outlives its timeout: the second alert's
    // command is skipped, the first is killed and counted as failed.
    let e =
        AlertEngine::with_limits(&cfg(&["/bin/sleep", "30"]), sink, 1, secs(0.3)).expect("engine");
    let t = Instant::now();
    e.observe("s1", "tool_call", &tool("block"));
    e.observe("s2", "tool_call", &tool("block"));
    // observe() did not wait for the command.
    assert!(t.elapsed() < secs(5.0));
    assert_eq!(e.stats().commands_skipped, 1);
    assert!(wait_for(|| e.stats().commands_failed == 1).await);
    assert_eq!(e.stats().raised, 2);
}
