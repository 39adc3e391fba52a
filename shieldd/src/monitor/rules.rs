//! Policy rules as the kernel maps hold them: path keys for the exec
//! allowlist and the deny list, network keys for the connect allowlist.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::events::{NetData, PathData, KEY_PATH_LEN as PATH_LEN};
use super::MonitorError;

/// Transport protocol of a connect rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP (IPPROTO_TCP = 6).
    Tcp,
    /// UDP (IPPROTO_UDP = 17).
    Udp,
}

impl Protocol {
    fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// One outbound allow rule: destination network, port and protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRule {
    /// Destination network; an IPv4 network also covers the same addresses
    /// written as IPv4-mapped IPv6.
    pub net: IpNet,
    /// Destination port; `None` = any port.
    pub port: Option<u16>,
    /// Protocol; `None` = TCP and UDP.
    pub protocol: Option<Protocol>,
}

impl ConnectRule {
    /// Every protocol and port for one address.
    pub fn host(addr: IpAddr, port: Option<u16>) -> Self {
        ConnectRule {
            net: IpNet::from(addr),
            port,
            protocol: None,
        }
    }
}

/// One path rule, matched in the kernel against the resolved path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathRule {
    /// This file exactly.
    Exact(PathBuf),
    /// This directory and everything under it.
    Dir(PathBuf),
    /// Every path starting with these bytes (`/usr/bin/python3*`).
    NamePrefix(PathBuf),
}

/// (prefix length in bits, key bytes) of one LPM entry.
pub(crate) type PathEntry = (u32, PathData);

fn path_entry(bytes: &[u8], with_nul: bool) -> Result<PathEntry, MonitorError> {
    let total = bytes.len() + usize::from(with_nul);
    if bytes.is_empty() || total > PATH_LEN - 1 {
        return Err(MonitorError::Rule(format!(
            "path {:?} is empty or longer than {} bytes",
            String::from_utf8_lossy(bytes),
            PATH_LEN - 2
        )));
    }
    if bytes.contains(&0) {
        return Err(MonitorError::Rule("path contains a NUL byte".into()));
    }
    let mut data = [0u8; PATH_LEN];
    if let Some(dst) = data.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    let bits = u32::try_from(total * 8).map_err(|_| MonitorError::Rule("path too long".into()))?;
    Ok((bits, data))
}

fn rule_entries(rule: &PathRule, out: &mut BTreeSet<(u32, Vec<u8>)>) -> Result<(), MonitorError> {
    let mut push = |bytes: &[u8], nul: bool| -> Result<(), MonitorError> {
        let (bits, data) = path_entry(bytes, nul)?;
        out.insert((bits, data.to_vec()));
        Ok(())
    };
    match rule {
        PathRule::Exact(p) => push(p.as_os_str().as_bytes(), true),
        PathRule::NamePrefix(p) => push(p.as_os_str().as_bytes(), false),
        PathRule::Dir(p) => {
            let b = p.as_os_str().as_bytes();
            let trimmed = match b {
                [] | [b'/'] => b,
                [rest @ .., b'/'] => rest,
                _ => b,
            };
            if trimmed == b"/" {
                return push(b"/", false);
            }
            push(trimmed, true)?;
            let mut slash = trimmed.to_vec();
            slash.push(b'/');
            push(&slash, false)
        }
    }
}

/// `p` with every symlink resolved, as `std::fs::canonicalize` gives it,
/// in three system calls (open with O_PATH, read the link of its
/// /proc/self/fd entry, close): realpath(3) reads the link of every
/// prefix of the path, each a walk from the root, and this runs for every
/// path rule of every session the daemon starts.
pub(crate) fn canonical(p: &Path) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let slow = || std::fs::canonicalize(p).ok();
    if !p.is_absolute() {
        return slow();
    }
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(p)
    else {
        return None;
    };
    match std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())) {
        // A path the kernel could not express from our root (" (deleted)",
        // another mount namespace's view) is left to realpath.
        Ok(c) if c.is_absolute() && !c.as_os_str().as_bytes().ends_with(b" (deleted)") => Some(c),
        _ => slow(),
    }
}

/// The rule and, when symlinks make it differ, its canonical form: the
/// kernel sees resolved paths (`/bin/sh` runs as `/usr/bin/dash`).
fn with_canonical(rule: &PathRule) -> Vec<PathRule> {
    let mut v = vec![rule.clone()];
    let canon = |p: &Path| canonical(p).filter(|c| c != p);
    match rule {
        PathRule::Exact(p) => v.extend(canon(p).map(PathRule::Exact)),
        PathRule::Dir(p) => v.extend(canon(p).map(PathRule::Dir)),
        PathRule::NamePrefix(p) => {
            // Only the directory part can be a symlink we can resolve.
            if let (Some(dir), Some(name)) = (p.parent(), p.file_name()) {
                if let Some(c) = canon(dir) {
                    v.push(PathRule::NamePrefix(c.join(name)));
                }
            }
        }
    }
    v
}

/// LPM entries for a list of path rules, canonical forms included.
pub(crate) fn path_entries(rules: &[PathRule]) -> Result<Vec<PathEntry>, MonitorError> {
    let mut set = BTreeSet::new();
    for rule in rules {
        for r in with_canonical(rule) {
            rule_entries(&r, &mut set)?;
        }
    }
    Ok(set
        .into_iter()
        .map(|(bits, bytes)| {
            let mut data = [0u8; PATH_LEN];
            if let Some(dst) = data.get_mut(..bytes.len()) {
                dst.copy_from_slice(&bytes);
            }
            (bits, data)
        })
        .collect())
}

/// LPM entries (prefix bits, key) for the connect allowlist.
pub(crate) fn net_entries(rules: &[ConnectRule]) -> Vec<(u32, NetData)> {
    let mut out = Vec::new();
    for r in rules {
        let (addr, bits) = match r.net {
            IpNet::V4(n) => (
                n.network().to_ipv6_mapped().octets(),
                96 + u32::from(n.prefix_len()),
            ),
            IpNet::V6(n) => (n.network().octets(), u32::from(n.prefix_len())),
        };
        let protos: &[Protocol] = match r.protocol {
            Some(Protocol::Tcp) => &[Protocol::Tcp],
            Some(Protocol::Udp) => &[Protocol::Udp],
            None => &[Protocol::Tcp, Protocol::Udp],
        };
        for p in protos {
            out.push((
                32 + bits,
                NetData {
                    proto: p.number(),
                    _pad: 0,
                    port_be: r.port.unwrap_or(0).to_be(),
                    addr,
                },
            ));
        }
    }
    out
}

/// Turn policy `exec.allow` patterns into rules: plain paths stay exact
/// (a directory becomes a [`PathRule::Dir`]), `dir/**` is the directory,
/// `name*` is a name prefix, and any other glob is expanded against the
/// file system now (at most `limit` matches).
pub fn expand_globs(patterns: &[&str], limit: usize) -> Result<Vec<PathRule>, MonitorError> {
    let mut out = Vec::new();
    for pat in patterns {
        let meta = |c: char| matches!(c, '*' | '?' | '[' | '{');
        let Some(first) = pat.find(meta) else {
            let p = PathBuf::from(pat);
            out.push(if p.is_dir() {
                PathRule::Dir(p)
            } else {
                PathRule::Exact(p)
            });
            continue;
        };
        let (lit, rest) = pat.split_at(first);
        if rest == "**" || rest == "*" && lit.ends_with('/') {
            // `dir/*` would also admit subdirectories' files; accepted as
            // the price of matching in the kernel by prefix.
            out.push(PathRule::Dir(PathBuf::from(lit.trim_end_matches('/'))));
            continue;
        }
        if rest == "*" {
            out.push(PathRule::NamePrefix(PathBuf::from(lit)));
            continue;
        }
        let glob = globset::Glob::new(pat)
            .map_err(|e| MonitorError::Rule(format!("bad glob {pat:?}: {e}")))?
            .compile_matcher();
        let base = match lit.rfind('/') {
            Some(i) => lit.get(..=i).unwrap_or("/"),
            None => "./",
        };
        let depth = if rest.contains("**") {
            usize::MAX
        } else {
            rest.matches('/').count() + 1
        };
        let mut found = 0usize;
        let mut stack = vec![(PathBuf::from(base), 0usize)];
        while let Some((dir, d)) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in rd.flatten() {
                let p = entry.path();
                if glob.is_match(&p) && !p.is_dir() {
                    out.push(PathRule::Exact(p.clone()));
                    found += 1;
                    if found >= limit {
                        return Err(MonitorError::Rule(format!(
                            "glob {pat:?} matches more than {limit} files"
                        )));
                    }
                }
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if is_dir && d + 1 < depth {
                    stack.push((p, d + 1));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_str(e: &PathEntry) -> (u32, String) {
        let n = (e.0 / 8) as usize;
        (e.0, String::from_utf8_lossy(&e.1[..n]).into_owned())
    }

    #[test]
    fn canonical_agrees_with_realpath() {
        let base = std::env::temp_dir().join(format!("shieldd-canon-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("real/sub")).expect("dirs");
        std::fs::write(base.join("real/sub/f"), "x").expect("file");
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).expect("dir link");
        std::os::unix::fs::symlink("sub/f", base.join("real/rel")).expect("relative link");
        std::os::unix::fs::symlink(base.join("gone"), base.join("dangling")).expect("dangling");
        let cases = [
            PathBuf::from("/"),
            PathBuf::from("/bin/sh"),
            PathBuf::from("/usr/bin/python3.11"),
            base.join("real/sub/f"),
            base.join("link/sub/f"),
            base.join("link/rel"),
            base.join("link/sub/../sub/./f"),
            base.join("link/"),
            base.join("dangling"),
            base.join("nonexistent"),
            base.join("real/sub/f/below-a-file"),
            PathBuf::from("relative/path"),
        ];
        for p in &cases {
            assert_eq!(
                canonical(p),
                std::fs::canonicalize(p).ok(),
                "{}",
                p.display()
            );
        }
        assert_eq!(
            canonical(&base.join("link/rel")),
            Some(base.join("real/sub/f"))
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn dir_rule_is_exact_dir_plus_slash_prefix_not_sibling() {
        let e = path_entries(&[PathRule::Dir("/nonexistent-shieldd/ssh/".into())]).unwrap();
        let keys: Vec<_> = e.iter().map(key_str).collect();
        assert!(keys.contains(&(8 * 25, "/nonexistent-shieldd/ssh\0".into())));
        assert!(keys.contains(&(8 * 25, "/nonexistent-shieldd/ssh/".into())));
        // No entry would match the look-alike sibling "/nonexistent-shieldd/sshx".
        assert!(keys
            .iter()
            .all(|(_, k)| !"/nonexistent-shieldd/sshx\0".starts_with(k.as_str())));
    }

    #[test]
    fn exact_rule_includes_canonical_form() {
        // /proc/self is a symlink to /proc/<pid>.
        let e = path_entries(&[PathRule::Exact("/proc/self".into())]).unwrap();
        let keys: Vec<_> = e.iter().map(|k| key_str(k).1).collect();
        assert!(keys.contains(&"/proc/self\0".to_string()));
        assert!(keys.contains(&format!("/proc/{}\0", std::process::id())));
    }

    #[test]
    fn overlong_or_nul_paths_are_errors() {
        let long = "/".to_string() + &"a".repeat(300);
        assert!(path_entries(&[PathRule::Exact(long.into())]).is_err());
        assert!(path_entries(&[PathRule::Exact("".into())]).is_err());
    }

    #[test]
    fn v4_rules_are_stored_mapped_and_both_protocols() {
        let r = ConnectRule {
            net: "127.0.0.0/8".parse().unwrap(),
            port: Some(8080),
            protocol: None,
        };
        let e = net_entries(&[r]);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].0, 32 + 96 + 8);
        assert_eq!(e[0].1.proto, 6);
        assert_eq!(e[1].1.proto, 17);
        assert_eq!(e[0].1.port_be, 8080u16.to_be());
        assert_eq!(&e[0].1.addr[10..], &[0xff, 0xff, 127, 0, 0, 0]);
    }

    #[test]
    fn globs_expand() {
        let r = expand_globs(&["/usr/bin/python3*", "/usr/lib/**", "/bin/sh"], 100).unwrap();
        assert_eq!(r[0], PathRule::NamePrefix("/usr/bin/python3".into()));
        assert_eq!(r[1], PathRule::Dir("/usr/lib".into()));
        assert_eq!(r[2], PathRule::Exact("/bin/sh".into()));
        let r = expand_globs(&["/usr/bin/[p]ython3.1?"], 100).unwrap();
        assert!(r.contains(&PathRule::Exact("/usr/bin/python3.11".into())));
        assert!(r
            .iter()
            .all(|x| matches!(x, PathRule::Exact(p) if p.to_string_lossy().starts_with("/usr/bin/python3.1"))));
    }
}
