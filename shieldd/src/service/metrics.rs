//! Prometheus metrics (`prometheus-client`): an [`Observer`] that counts
//! what the audit records say, the registry's [`Counters`] read at scrape
//! time, and a small HTTP endpoint serving `/metrics` (404 elsewhere).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `shieldd_scans_total` | counter | `direction`, `action` (allow, redact, block, needs_approval) |
//! | `shieldd_findings_total` | counter | `direction`, `kind` (injection, pii, secret, exfiltration, tool_policy) |
//! | `shieldd_scan_latency_seconds` | histogram | `direction` |
//! | `shieldd_tool_calls_total` | counter | `action` |
//! | `shieldd_violations_total` | counter | `rule`, `action` |
//! | `shieldd_containments_total` | counter | `action` (kill, isolate, release) |
//! | `shieldd_lost_events_total` | counter | |
//! | `shieldd_alerts_total` | counter | `kind` |
//! | `shieldd_sessions_started_total`, `shieldd_sessions_ended_total` | counter | |
//! | `shieldd_sessions_active` | gauge | (registry, at scrape time) |
//! | `shieldd_daemon_{sessions,violations,alerts,scans,lost_events}_total` | counter | (registry, at scrape time) |
//!
//! Label values come from records an agent can influence (rule names of
//! scan findings), so each label keeps at most [`MAX_LABEL_VALUES`]
//! distinct values and folds the rest into `other`: a scrape stays small
//! whatever the agents do.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Manager, Observer};

/// Distinct values kept per label before the rest count as `other`.
pub const MAX_LABEL_VALUES: usize = 64;
/// Longest label value kept (longer ones are cut).
const MAX_LABEL_LEN: usize = 80;
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 32;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound.
    #[error("metrics: cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirAction {
    direction: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirKind {
    direction: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Dir {
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionL {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleAction {
    rule: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindL {
    kind: String,
}

/// The metrics, and an [`Observer`] feeding them.
pub struct Metrics {
    registry: Registry,
    scans: Family<DirAction, Counter>,
    findings: Family<DirKind, Counter>,
    latency: Family<Dir, Histogram>,
    tool_calls: Family<ActionL, Counter>,
    violations: Family<RuleAction, Counter>,
    containments: Family<ActionL, Counter>,
    lost_events: Counter,
    alerts: Family<KindL, Counter>,
    sessions_started: Counter,
    sessions_ended: Counter,
    seen: Mutex<HashMap<&'static str, HashSet<String>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The registry's counters, read at each scrape.
struct ManagerCollector(Arc<dyn Manager>);

impl std::fmt::Debug for ManagerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManagerCollector")
    }
}

impl Collector for ManagerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.0.counters();
        let g = ConstGauge::new(i64::try_from(c.sessions_active).unwrap_or(i64::MAX));
        g.encode(encoder.encode_descriptor(
            "shieldd_sessions_active",
            "Sessions running or isolated now",
            None,
            g.metric_type(),
        )?)?;
        for (name, help, v) in [
            (
                "shieldd_daemon_sessions",
                "Sessions started since the daemon started (registry)",
                c.sessions_total,
            ),
            (
                "shieldd_daemon_violations",
                "Violations since the daemon started (registry)",
                c.violations,
            ),
            (
                "shieldd_daemon_alerts",
                "Alerts since the daemon started (registry)",
                c.alerts,
            ),
            (
                "shieldd_daemon_scans",
                "Scans since the daemon started (registry)",
                c.scans,
            ),
            (
                "shieldd_daemon_lost_events",
                "Kernel events lost since the daemon started (registry)",
                c.lost_events,
            ),
        ] {
            let k = ConstCounter::new(v);
            k.encode(encoder.encode_descriptor(name, help, None, k.metric_type())?)?;
        }
        Ok(())
    }
}

fn str_field<'a>(fields: &'a Value, key: &str) -> &'a str {
    fields.get(key).and_then(Value::as_str).unwrap_or("")
}

impl Metrics {
    /// Metrics with no registry gauges (tests, `shieldd run` standalone).
    pub fn new(manager: Option<Arc<dyn Manager>>) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let scans = Family::<DirAction, Counter>::default();
        let findings = Family::<DirKind, Counter>::default();
        let latency = Family::<Dir, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(1e-5, 2.0, 18))) as fn() -> Histogram,
        );
        let tool_calls = Family::<ActionL, Counter>::default();
        let violations = Family::<RuleAction, Counter>::default();
        let containments = Family::<ActionL, Counter>::default();
        let lost_events = Counter::default();
        let alerts = Family::<KindL, Counter>::default();
        let sessions_started = Counter::default();
        let sessions_ended = Counter::default();
        registry.register(
            "shieldd_scans",
            "Scans by direction and verdict action",
            scans.clone(),
        );
        registry.register(
            "shieldd_findings",
            "Scanner findings by direction and kind",
            findings.clone(),
        );
        registry.register(
            "shieldd_scan_latency_seconds",
            "Time the scanner took per scan",
            latency.clone(),
        );
        registry.register(
            "shieldd_tool_calls",
            "Tool calls checked, by verdict action",
            tool_calls.clone(),
        );
        registry.register(
            "shieldd_violations",
            "Violations by rule and response",
            violations.clone(),
        );
        registry.register(
            "shieldd_containments",
            "Kill, isolate and release operations",
            containments.clone(),
        );
        registry.register(
            "shieldd_lost_events",
            "Kernel events lost (ring buffer full)",
            lost_events.clone(),
        );
        registry.register("shieldd_alerts", "Alerts raised, by kind", alerts.clone());
        registry.register(
            "shieldd_sessions_started",
            "Sessions started",
            sessions_started.clone(),
        );
        registry.register(
            "shieldd_sessions_ended",
            "Sessions ended",
            sessions_ended.clone(),
        );
        if let Some(m) = manager {
            registry.register_collector(Box::new(ManagerCollector(m)));
        }
        Arc::new(Metrics {
            registry,
            scans,
            findings,
            latency,
            tool_calls,
            violations,
            containments,
            lost_events,
            alerts,
            sessions_started,
            sessions_ended,
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// The value itself while the label has room, else `other`.
    fn label(&self, label: &'static str, value: &str) -> String {
        let mut end = value.len().min(MAX_LABEL_LEN);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        let v = value.get(..end).unwrap_or("");
        let v = if v.is_empty() { "unknown" } else { v };
        let Ok(mut seen) = self.seen.lock() else {
            return "other".into();
        };
        let set = seen.entry(label).or_default();
        if set.contains(v) {
            return v.to_string();
        }
        if set.len() < MAX_LABEL_VALUES {
            set.insert(v.to_string());
            return v.to_string();
        }
        "other".into()
    }

    /// The exposition: OpenMetrics text when `openmetrics`, else the
    /// Prometheus text format 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::new();
        let r = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "metrics: encoding failed");
        }
        out
    }
}

impl Observer for Metrics {
    fn observe(&self, _session: &str, event: &str, fields: &Value) {
        match event {
            "scan" => {
                let direction = self.label("direction", str_field(fields, "direction"));
                let action = self.label("action", str_field(fields, "action"));
                self.scans
                    .get_or_create(&DirAction {
                        direction: direction.clone(),
                        action,
                    })
                    .inc();
                if let Some(fs) = fields.get("findings").and_then(Value::as_array) {
                    for f in fs {
                        let kind = self.label("kind", str_field(f, "kind"));
                        self.findings
                            .get_or_create(&DirKind {
                                direction: direction.clone(),
                                kind,
                            })
                            .inc();
                    }
                }
                // `elapsed_us` per the seam; the scan API's records say `latency_us`.
                let us = fields
                    .get("elapsed_us")
                    .or_else(|| fields.get("latency_us"))
                    .and_then(Value::as_u64);
                if let Some(us) = us {
                    self.latency
                        .get_or_create(&Dir { direction })
                        .observe(us as f64 / 1e6);
                }
            }
            "tool_call" => {
                let action = self.label("action", str_field(fields, "action"));
                self.tool_calls.get_or_create(&ActionL { action }).inc();
            }
            "violation" => {
                let rule = self.label("rule", str_field(fields, "rule"));
                let action = self.label("action", str_field(fields, "action"));
                self.violations
                    .get_or_create(&RuleAction { rule, action })
                    .inc();
            }
            "kill" | "isolate" | "release" => {
                self.containments
                    .get_or_create(&ActionL {
                        action: event.to_string(),
                    })
                    .inc();
            }
            "lost_events" => {
                let n = fields.get("count").and_then(Value::as_u64).unwrap_or(0);
                self.lost_events.inc_by(n);
            }
            "alert" => {
                let kind = self.label("alert_kind", str_field(fields, "kind"));
                self.alerts.get_or_create(&KindL { kind }).inc();
            }
            "session_start" => {
                self.sessions_started.inc();
            }
            "session_end" => {
                self.sessions_ended.inc();
            }
            _ => {}
        }
    }
}

/// The running endpoint; dropping it stops accepting.
pub struct MetricsHandle {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsHandle {
    /// The bound address (the port chosen when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = http_body_util::Full<Bytes>;

fn respond(
    metrics: &Metrics,
    req: &hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Body> {
    let build = |status: u16, ctype: &str, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Body::new(Bytes::from(body)))
            .unwrap_or_else(|_| hyper::Response::new(Body::new(Bytes::new())))
    };
    if req.uri().path() != "/metrics" {
        return build(
            404,
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".into(),
        );
    }
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return build(405, "text/plain; charset=utf-8", "GET only\n".into());
    }
    let openmetrics = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        build(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(true),
        )
    } else {
        build(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.encode(false),
        )
    }
}

/// Serve `/metrics` on `addr` (from `MetricsConfig::listen`). Must be
/// called from within a tokio runtime.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> Result<MetricsHandle, MetricsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let m = metrics.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let svc = hyper::service::service_fn(move |req| {
                    let r = respond(&m, &req);
                    async move { Ok::<_, Infallible>(r) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                // A scraper that keeps the connection open is cut after a minute.
                let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
            });
        }
    });
    tracing::info!(%bound, "metrics endpoint ready");
    Ok(MetricsHandle { addr: bound, task })
}

#[cfg(test)]
mod tests;
