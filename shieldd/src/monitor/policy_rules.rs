//! From the policy's `sandbox` and `response` sections to the monitor's
//! kernel rules. Host names are resolved by the caller (it owns DNS and
//! TTLs); everything else is decided here so the launcher only calls
//! [`MonitorRules::from_policy`] and [`Monitor::apply`].

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::{
    dynamic_loaders, expand_globs, ConnectRule, KernelResponse, Monitor, MonitorError, PathRule,
    Protocol,
};
use crate::policy::{self, ConnectTarget, ResolveBase, Response};

/// Most files one exec glob may expand to.
const GLOB_LIMIT: usize = 4096;

/// Everything the kernel side needs from a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorRules {
    /// Outbound allowlist (host names already resolved).
    pub connect: Vec<ConnectRule>,
    /// Ports the agent may bind.
    pub bind: Vec<u16>,
    /// Programs the tree may execute.
    pub exec_allow: Vec<PathRule>,
    /// Programs it may never execute, allowlist or not (the dynamic loaders
    /// the policy does not name exactly).
    pub exec_deny: Vec<PathRule>,
    /// Paths whose opening is a violation.
    pub deny_paths: Vec<PathRule>,
    /// In-kernel kill switches.
    pub response: KernelResponse,
}

impl MonitorRules {
    /// Build the rules. `resolve_host` returns every address of a name
    /// (empty if it does not resolve: then nothing is allowed for it).
    pub fn from_policy(
        sb: &policy::Sandbox,
        response: &policy::ResponsePolicy,
        base: &ResolveBase,
        mut resolve_host: impl FnMut(&str) -> Vec<IpAddr>,
    ) -> Result<MonitorRules, MonitorError> {
        let mut connect = Vec::new();
        for r in &sb.network.connect {
            let protocol = match r.protocol {
                policy::Protocol::Any => None,
                policy::Protocol::Tcp => Some(Protocol::Tcp),
                policy::Protocol::Udp => Some(Protocol::Udp),
            };
            let nets: Vec<IpNet> = match &r.target {
                ConnectTarget::Cidr(n) => vec![*n],
                ConnectTarget::Host(h) => resolve_host(h).into_iter().map(IpNet::from).collect(),
                // ::/0 covers IPv4 too: the kernel keys IPv4 as ::ffff:a.b.c.d.
                ConnectTarget::Any => vec![IpNet::V6(ipnet::Ipv6Net::default())],
            };
            connect.extend(nets.into_iter().map(|net| ConnectRule {
                net,
                port: r.port,
                protocol,
            }));
        }

        let exec_allow = match &sb.exec.allow {
            Some(globs) => {
                let pats: Vec<&str> = globs.iter().map(String::as_str).collect();
                expand_globs(&pats, GLOB_LIMIT)?
            }
            None => sb
                .filesystem
                .read
                .iter()
                .map(|p| PathRule::Dir(p.resolve(base)))
                .collect(),
        };
        // A loader the policy names exactly stays allowed; any other is
        // denied even inside an allowed directory.
        let named: Vec<PathBuf> = exec_allow
            .iter()
            .filter_map(|r| match r {
                PathRule::Exact(p) => Some(super::rules::canonical(p).unwrap_or_else(|| p.clone())),
                _ => None,
            })
            .collect();
        let exec_deny = dynamic_loaders()
            .into_iter()
            .filter(|r| match r {
                PathRule::Exact(p) => {
                    let c = super::rules::canonical(p).unwrap_or_else(|| p.clone());
                    !named.contains(&c)
                }
                _ => true,
            })
            .collect();

        // A deny entry covers the path itself and, if it is (or becomes) a
        // directory, everything under it.
        let deny_paths = sb
            .filesystem
            .deny
            .iter()
            .map(|p| PathRule::Dir(p.resolve(base)))
            .collect();

        let exec = response.for_rule("exec");
        let fs = response.for_rule("filesystem");
        Ok(MonitorRules {
            connect,
            bind: sb.network.bind.clone(),
            exec_allow,
            exec_deny,
            deny_paths,
            response: KernelResponse {
                // The exec is past its point of no return when the hook runs:
                // killing the task is the only way to keep the program from
                // running, so every response but log kills it (isolate then
                // freezes the rest of the tree from user space).
                exec_kill: exec != Response::Log,
                // Landlock refuses the open for deny; only kill kills.
                file_kill: fs == Response::Kill,
            },
        })
    }
}

impl Monitor {
    /// Load a whole rule set into the kernel maps.
    pub fn apply(&mut self, r: &MonitorRules) -> Result<(), MonitorError> {
        self.apply_slot(super::DEFAULT_SLOT, r)
    }

    /// Load a whole rule set into one slot's part of the kernel maps
    /// (replacing what it had: this is also how a policy is reloaded).
    pub fn apply_slot(&mut self, slot: u32, r: &MonitorRules) -> Result<(), MonitorError> {
        self.set_connect_rules_in(slot, &r.connect)?;
        self.set_bind_ports_in(slot, &r.bind)?;
        self.set_deny_paths_in(slot, &r.deny_paths)?;
        self.set_exec_deny_in(slot, &r.exec_deny)?;
        self.set_response_in(slot, r.response)?;
        self.set_exec_allow_in(slot, &r.exec_allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicyPath, ResponsePolicy, Sandbox};

    struct P {
        sandbox: Sandbox,
        response: ResponsePolicy,
    }

    fn rules(p: &P, resolve: impl FnMut(&str) -> Vec<IpAddr>) -> MonitorRules {
        MonitorRules::from_policy(&p.sandbox, &p.response, &base(), resolve).expect("rules")
    }

    fn base() -> ResolveBase {
        ResolveBase {
            home: "/home/agent".into(),
            cwd: "/srv/work".into(),
        }
    }

    fn policy() -> P {
        let mut p = P {
            sandbox: Sandbox::default(),
            response: ResponsePolicy::default(),
        };
        p.sandbox.filesystem.read = vec![PolicyPath("/usr".into()), PolicyPath("./".into())];
        p.sandbox.filesystem.deny = vec![PolicyPath("~/.ssh".into())];
        p.sandbox.network.connect = vec![
            policy::ConnectRule {
                target: ConnectTarget::Host("api.example".into()),
                port: Some(443),
                protocol: policy::Protocol::Tcp,
            },
            policy::ConnectRule {
                target: ConnectTarget::Cidr("127.0.0.1/32".parse().expect("cidr")),
                port: Some(8080),
                protocol: policy::Protocol::Any,
            },
        ];
        p.sandbox.network.bind = vec![9000];
        p
    }

    #[test]
    fn hosts_resolve_to_every_address_and_nothing_else() {
        let r = rules(&policy(), |h| {
            assert_eq!(h, "api.example");
            vec![
                "192.0.2.1".parse().expect("ip"),
                "2001:db8::1".parse().expect("ip"),
            ]
        });
        assert_eq!(r.connect.len(), 3);
        assert_eq!(
            r.connect[0].net,
            "192.0.2.1/32".parse::<IpNet>().expect("net")
        );
        assert_eq!(
            r.connect[1].net,
            "2001:db8::1/128".parse::<IpNet>().expect("net")
        );
        assert!(r.connect[..2]
            .iter()
            .all(|c| c.port == Some(443) && c.protocol == Some(Protocol::Tcp)));
        assert_eq!(r.connect[2].protocol, None);
        assert_eq!(r.bind, vec![9000]);
        // An unresolvable host allows nothing.
        let r = rules(&policy(), |_| vec![]);
        assert_eq!(r.connect.len(), 1);
    }

    #[test]
    fn default_exec_is_the_read_paths_without_the_loader() {
        let r = rules(&policy(), |_| vec![]);
        assert_eq!(
            r.exec_allow,
            vec![
                PathRule::Dir("/usr".into()),
                PathRule::Dir("/srv/work".into())
            ]
        );
        assert!(r
            .exec_deny
            .iter()
            .any(|l| matches!(l, PathRule::Exact(p) if p.to_string_lossy().contains("ld-linux"))));
        assert_eq!(r.deny_paths, vec![PathRule::Dir("/home/agent/.ssh".into())]);
    }

    #[test]
    fn a_loader_named_exactly_stays_allowed() {
        let mut p = policy();
        p.sandbox.exec.allow = Some(vec!["/lib64/ld-linux-x86-64.so.2".into()]);
        let r = rules(&p, |_| vec![]);
        assert!(!r.exec_deny.iter().any(|l| matches!(l,
            PathRule::Exact(x) if x.to_string_lossy().contains("ld-linux-x86-64"))));
    }

    #[test]
    fn responses_map_to_kernel_switches() {
        let mut p = policy();
        let r = rules(&p, |_| vec![]);
        // Default response is kill.
        assert_eq!(
            r.response,
            KernelResponse {
                exec_kill: true,
                file_kill: true
            }
        );
        p.response
            .overrides
            .insert("filesystem".into(), Response::Deny);
        p.response.overrides.insert("exec".into(), Response::Log);
        let r = rules(&p, |_| vec![]);
        assert_eq!(
            r.response,
            KernelResponse {
                exec_kill: false,
                file_kill: false
            }
        );
    }
}
