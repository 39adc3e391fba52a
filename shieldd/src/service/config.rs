//! `/etc/shieldd/config.yaml`: the daemon's configuration. Every key is
//! optional; a missing file section takes the defaults below. Unknown keys
//! are errors (a typo must not silently turn an alert off).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Default location of the config file.
pub const DEFAULT_CONFIG: &str = "/etc/shieldd/config.yaml";

/// Errors loading the config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is invalid or does not fit the schema (serde_yaml's message names line and column).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}

/// The whole daemon configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Directory of the audit trail (`audit.jsonl` inside).
    pub audit_dir: PathBuf,
    /// The control socket (root and `admin_group` only).
    pub control_socket: PathBuf,
    /// Directory of the per-session scan sockets.
    pub session_socket_dir: PathBuf,
    /// Group whose members may use the control socket and D-Bus methods.
    pub admin_group: Option<String>,
    /// Policy for sessions started without one (default: the built-in default).
    pub default_policy: Option<PathBuf>,
    /// How long an ended session stays listed, seconds.
    #[serde(deserialize_with = "duration")]
    pub keep_ended: Duration,
    /// How often the host names of running sessions' policies are resolved
    /// again (the system resolver gives no TTL); 0 = never.
    #[serde(deserialize_with = "duration")]
    pub dns_refresh: Duration,
    /// D-Bus service.
    pub dbus: DbusConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Alert rules.
    pub alerts: AlertsConfig,
    /// Sizes of the eBPF monitor's kernel maps and event ring.
    pub monitor: MonitorMaps,
}

/// `monitor:`: sizes of the kernel maps and the event ring, shared by every
/// session (the daemon loads its programs once), with the keys of a
/// policy's `sandbox.monitor`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorMaps {
    /// Event ring bytes (`8MiB` or a number): a power of two, 4KiB to 1GiB.
    #[serde(deserialize_with = "ring_size")]
    pub ring_bytes: u32,
    /// Processes tracked at once, all sessions together.
    pub max_pids: u32,
    /// Entries of each path trie, all sessions together.
    pub max_path_rules: u32,
    /// Entries of the network allow trie, all sessions together.
    pub max_net_rules: u32,
    /// Ports in the bind allowlist, all sessions together.
    pub max_bind_ports: u32,
}

impl Default for MonitorMaps {
    fn default() -> Self {
        MonitorMaps {
            ring_bytes: 8 << 20,
            max_pids: 65536,
            max_path_rules: 65536,
            max_net_rules: 16384,
            max_bind_ports: 4096,
        }
    }
}

impl MonitorMaps {
    /// As the monitor takes them.
    pub fn sizes(&self) -> crate::policy::MonitorSizes {
        crate::policy::MonitorSizes {
            ring_bytes: Some(self.ring_bytes),
            max_pids: Some(self.max_pids),
            max_path_rules: Some(self.max_path_rules),
            max_net_rules: Some(self.max_net_rules),
            max_bind_ports: Some(self.max_bind_ports),
        }
    }
}

fn ring_size<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    let b = match Raw::deserialize(d)? {
        Raw::Bytes(b) => Some(b),
        Raw::Text(t) => crate::policy::parse_size(&t),
    };
    match b {
        Some(b) if (4096..=1 << 30).contains(&b) && b.is_power_of_two() => {
            u32::try_from(b).map_err(serde::de::Error::custom)
        }
        _ => Err(serde::de::Error::custom(
            "monitor.ring_bytes must be a power of two from 4KiB to 1GiB (e.g. 8MiB)",
        )),
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            audit_dir: PathBuf::from("/var/log/shieldd"),
            control_socket: PathBuf::from("/run/shieldd/control.sock"),
            session_socket_dir: PathBuf::from("/run/shieldd/sessions"),
            admin_group: None,
            default_policy: None,
            keep_ended: Duration::from_secs(600),
            dns_refresh: crate::run::DNS_REFRESH,
            dbus: DbusConfig::default(),
            metrics: MetricsConfig::default(),
            alerts: AlertsConfig::default(),
            monitor: MonitorMaps::default(),
        }
    }
}

/// Which bus `org.shieldd.Manager1` is served on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbusConfig {
    /// Serve on D-Bus at all.
    pub enabled: bool,
    /// `system`, `session`, or a bus address (`unix:path=/tmp/test-bus`) for tests.
    pub bus: String,
}

impl Default for DbusConfig {
    fn default() -> Self {
        DbusConfig {
            enabled: true,
            bus: "system".into(),
        }
    }
}

/// Prometheus exposition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the `/metrics` endpoint; none = no endpoint. Keep it local.
    pub listen: Option<SocketAddr>,
}

/// N matching records within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// How many records fire the alert (the N-th fires, not N-1).
    pub count: u64,
    /// The sliding window.
    #[serde(deserialize_with = "duration")]
    pub window: Duration,
}

/// The alert rules of the guide. A rule left out is off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Blocked inbound scans of one session.
    pub blocked_inputs_session: Option<Threshold>,
    /// Blocked inbound scans of all sessions together.
    pub blocked_inputs_host: Option<Threshold>,
    /// Denied tool calls of one session.
    pub tool_denials: Option<Threshold>,
    /// Any PII or secret finding in an outbound scan.
    pub sensitive_output: bool,
    /// Tool calls of one session (an unusual rate).
    pub tool_rate: Option<Threshold>,
    /// Command run per alert, the alert as JSON on stdin (argv, no shell).
    pub command: Option<Vec<String>>,
    /// The same alert (kind and session) is not raised again within this time.
    #[serde(deserialize_with = "duration")]
    pub cooldown: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let t = |count, secs| {
            Some(Threshold {
                count,
                window: Duration::from_secs(secs),
            })
        };
        AlertsConfig {
            blocked_inputs_session: t(5, 60),
            blocked_inputs_host: t(20, 60),
            tool_denials: t(3, 60),
            sensitive_output: true,
            tool_rate: t(60, 10),
            command: None,
            cooldown: Duration::from_secs(60),
        }
    }
}

/// `30s`, `5m`, `1h 30m` (humantime), or a bare number of seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
        Raw::Secs(s) => Err(serde::de::Error::custom(format!(
            "duration must be a non-negative number of seconds, not {s}"
        ))),
        Raw::Text(t) => humantime::parse_duration(&t).map_err(|e| {
            serde::de::Error::custom(format!("bad duration {t:?}: {e} (e.g. 30s, 5m, 1h)"))
        }),
    }
}

impl DaemonConfig {
    /// Parse YAML text; `path` names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<DaemonConfig, ConfigError> {
        if text.trim().is_empty() {
            return Ok(DaemonConfig::default());
        }
        serde_yaml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Load a file. A missing file at the default location means defaults;
    /// a missing file the user named is an error.
    pub fn load(path: Option<&Path>) -> Result<DaemonConfig, ConfigError> {
        let (p, named) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        match std::fs::read_to_string(&p) {
            Ok(t) => DaemonConfig::parse(&t, &p),
            Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(DaemonConfig::default())
            }
            Err(source) => Err(ConfigError::Read { path: p, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_defaults() {
        let c = DaemonConfig::parse("", Path::new("c.yaml")).unwrap();
        assert_eq!(c, DaemonConfig::default());
    }

    #[test]
    fn durations_and_thresholds() {
        let c = DaemonConfig::parse(
            "alerts:\n  tool_denials: {count: 2, window: 90s}\n  tool_rate: null\n  cooldown: 0\nkeep_ended: 5m\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        assert_eq!(
            c.alerts.tool_denials,
            Some(Threshold {
                count: 2,
                window: Duration::from_secs(90)
            })
        );
        assert_eq!(c.alerts.tool_rate, None);
        assert_eq!(c.alerts.cooldown, Duration::ZERO);
        assert_eq!(c.keep_ended, Duration::from_secs(300));
    }

    #[test]
    fn unknown_key_is_an_error_with_a_location() {
        let e = DaemonConfig::parse(
            "alerts:\n  tool_denial: {count: 2, window: 1s}\n",
            Path::new("c.yaml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tool_denial") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn monitor_sizes_default_and_parse() {
        let d = DaemonConfig::default().monitor;
        assert_eq!(d.ring_bytes, 8 << 20);
        let c = DaemonConfig::parse(
            "monitor: { ring_bytes: 16MiB, max_pids: 1000 }\n",
            Path::new("c.yaml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.monitor.ring_bytes, 16 << 20);
        assert_eq!(c.monitor.max_pids, 1000);
        assert_eq!(c.monitor.max_net_rules, d.max_net_rules);
        let c = DaemonConfig::parse("monitor: { ring_bytes: 65536 }\n", Path::new("c.yaml"));
        assert_eq!(c.map(|c| c.monitor.ring_bytes).ok(), Some(65536));
        for bad in [
            "ring_bytes: 3000",
            "ring_bytes: 2GiB",
            "ring_bytes: lots",
            "ring: 1MiB",
        ] {
            let e = DaemonConfig::parse(&format!("monitor: {{ {bad} }}\n"), Path::new("c.yaml"));
            assert!(e.is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_duration_is_explained() {
        let e = DaemonConfig::parse("keep_ended: soon\n", Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad duration"), "{e}");
    }

    #[test]
    fn named_missing_file_is_an_error() {
        assert!(DaemonConfig::load(Some(Path::new("/nonexistent/shieldd.yaml"))).is_err());
    }
}
