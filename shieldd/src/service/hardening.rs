//! What confinement the daemon actually runs under, read at start from the
//! kernel rather than assumed from the unit file: a unit edited (or a
//! drop-in added) so that the daemon cannot load its programs, attach them
//! or make cgroups would otherwise fail later, per session, with an error
//! that names neither the unit nor the option. [`probe`] reads it,
//! [`Hardening::summary`] is logged, [`Hardening::check`] refuses to start
//! with the option to change.

use std::path::{Path, PathBuf};

/// Capability numbers (linux/capability.h) the daemon's work needs.
const CAP_KILL: u32 = 5;
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Why the daemon cannot do its work under the confinement it has.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HardeningError {
    /// Capabilities the kernel checks for BPF, tracing or cgroup attach.
    #[error("missing capabilities {0}: add them to the unit's CapabilityBoundingSet= (and AmbientCapabilities= when User= is not root)")]
    Capabilities(String),
    /// The cgroup v2 hierarchy is mounted read-only for this process.
    #[error("the cgroup hierarchy {0} is read-only here (ProtectControlGroups=yes?): sessions need cgroups of their own; leave ProtectControlGroups= off")]
    CgroupReadOnly(PathBuf),
    /// A system call filter refuses bpf(2).
    #[error("bpf(2) is refused (errno {0}): the unit's SystemCallFilter= must allow bpf (do not filter @privileged or bpf)")]
    BpfFiltered(i32),
}

/// The confinement of this process as the kernel reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hardening {
    /// Effective capability mask (CapEff).
    pub cap_eff: u64,
    /// Bounding set (CapBnd).
    pub cap_bnd: u64,
    /// no_new_privs is set (NoNewPrivileges=).
    pub no_new_privs: bool,
    /// Seccomp mode: 0 none, 1 strict, 2 filter (SystemCallFilter= and
    /// friends).
    pub seccomp: u32,
    /// The cgroup v2 mount, if one was found.
    pub cgroup2: Option<PathBuf>,
    /// That mount is read-only for this process.
    pub cgroup_read_only: bool,
    /// /usr is read-only (ProtectSystem=).
    pub usr_read_only: bool,
    /// /proc/sys is read-only (ProtectKernelTunables=).
    pub sysctl_read_only: bool,
    /// The errno of a probing bpf(2) call that the kernel would refuse with
    /// EINVAL when allowed; None when it was EINVAL.
    pub bpf_errno: Option<i32>,
}

fn has(mask: u64, cap: u32) -> bool {
    mask & (1u64 << cap) != 0
}

/// The hex mask on a `Cap...:` line of /proc/self/status.
fn status_hex(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        u64::from_str_radix(v.trim(), 16).ok()
    })
}

fn status_num(status: &str, key: &str) -> Option<u32> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.trim().parse().ok()
    })
}

fn read_only(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

/// bpf(2) with a command no kernel has: EINVAL when the call reaches the
/// kernel's command switch, EPERM (or ENOSYS) when a seccomp filter or the
/// missing capability stops it first.
fn probe_bpf() -> Option<i32> {
    // SAFETY: an invalid command with a null attribute pointer and size 0:
    // the kernel reads no memory and changes nothing.
    let r = unsafe { libc::syscall(libc::SYS_bpf, 0x7fff_i64, std::ptr::null::<u8>(), 0_i64) };
    if r >= 0 {
        // Nothing to release: no command creates anything for this value.
        return None;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EINVAL) => None,
        e => Some(e.unwrap_or(0)),
    }
}

impl Hardening {
    /// Build from the text of /proc/self/status and the filesystem facts
    /// (split out so the decision can be tested without changing this
    /// process).
    pub fn from_status(status: &str) -> Hardening {
        Hardening {
            cap_eff: status_hex(status, "CapEff").unwrap_or(0),
            cap_bnd: status_hex(status, "CapBnd").unwrap_or(0),
            no_new_privs: status_num(status, "NoNewPrivs") == Some(1),
            seccomp: status_num(status, "Seccomp").unwrap_or(0),
            ..Hardening::default()
        }
    }

    /// One line for the log: what confinement the daemon has.
    pub fn summary(&self) -> String {
        let caps = [
            ("CAP_BPF", CAP_BPF),
            ("CAP_PERFMON", CAP_PERFMON),
            ("CAP_NET_ADMIN", CAP_NET_ADMIN),
            ("CAP_SYS_ADMIN", CAP_SYS_ADMIN),
            ("CAP_KILL", CAP_KILL),
            ("CAP_SETUID", CAP_SETUID),
            ("CAP_SETGID", CAP_SETGID),
        ];
        let have: Vec<&str> = caps
            .iter()
            .filter(|(_, c)| has(self.cap_eff, *c))
            .map(|(n, _)| *n)
            .collect();
        let lacking: Vec<&str> = caps
            .iter()
            .filter(|(_, c)| !has(self.cap_eff, *c))
            .map(|(n, _)| *n)
            .collect();
        let seccomp = match self.seccomp {
            0 => "none",
            1 => "strict",
            _ => "filter",
        };
        format!(
            "hardening in force: capabilities {} (effective {:#x}, bounding {:#x}{}); no_new_privs {}; seccomp {seccomp}; bpf(2) {}; /usr {}; /proc/sys {}; cgroup v2 {}",
            if have.is_empty() { "none of ours".to_string() } else { have.join(" ") },
            self.cap_eff,
            self.cap_bnd,
            if lacking.is_empty() { String::new() } else { format!("; lacking {}", lacking.join(" ")) },
            if self.no_new_privs { "on" } else { "off" },
            match self.bpf_errno {
                None => "allowed".to_string(),
                Some(e) => format!("refused (errno {e})"),
            },
            if self.usr_read_only { "read-only" } else { "writable" },
            if self.sysctl_read_only { "read-only" } else { "writable" },
            match (&self.cgroup2, self.cgroup_read_only) {
                (None, _) => "not found".to_string(),
                (Some(p), true) => format!("{} read-only", p.display()),
                (Some(p), false) => format!("{} writable", p.display()),
            },
        )
    }

    /// Whether the daemon can do its work: load and attach its programs
    /// (CAP_BPF or CAP_SYS_ADMIN, CAP_PERFMON or CAP_SYS_ADMIN for the
    /// tracing programs, CAP_NET_ADMIN for the cgroup socket programs,
    /// bpf(2) not filtered) and make session cgroups (CAP_SYS_ADMIN, a
    /// writable cgroup v2 mount). The first problem found, by the unit
    /// option that causes it.
    pub fn check(&self) -> Result<(), HardeningError> {
        let e = self.cap_eff;
        let mut missing = Vec::new();
        if !has(e, CAP_SYS_ADMIN) {
            missing.push("CAP_SYS_ADMIN");
            if !has(e, CAP_BPF) {
                missing.push("CAP_BPF");
            }
            if !has(e, CAP_PERFMON) {
                missing.push("CAP_PERFMON");
            }
        }
        if !has(e, CAP_NET_ADMIN) {
            missing.push("CAP_NET_ADMIN");
        }
        if !missing.is_empty() {
            return Err(HardeningError::Capabilities(missing.join(" ")));
        }
        if let Some(errno) = self.bpf_errno {
            return Err(HardeningError::BpfFiltered(errno));
        }
        if let (Some(p), true) = (&self.cgroup2, self.cgroup_read_only) {
            return Err(HardeningError::CgroupReadOnly(p.clone()));
        }
        Ok(())
    }
}

/// Read this process's confinement.
pub fn probe() -> Hardening {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut h = Hardening::from_status(&status);
    h.cgroup2 = crate::monitor::cgroup2_mount().ok();
    h.cgroup_read_only = h.cgroup2.as_deref().is_some_and(read_only);
    h.usr_read_only = read_only(Path::new("/usr"));
    h.sysctl_read_only = read_only(Path::new("/proc/sys"));
    h.bpf_errno = probe_bpf();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "Name:\tshieldd\nNoNewPrivs:\t0\nSeccomp:\t0\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n";

    fn with_eff(mask: u64) -> Hardening {
        Hardening {
            cap_eff: mask,
            ..Hardening::from_status(ROOT)
        }
    }

    #[test]
    fn status_is_read_and_full_root_passes() {
        let h = Hardening::from_status(ROOT);
        assert_eq!(h.cap_eff, 0x1ff_ffff_ffff);
        assert!(!h.no_new_privs);
        assert_eq!(h.seccomp, 0);
        assert_eq!(h.check(), Ok(()));
        let unit = Hardening::from_status(
            "NoNewPrivs:\t1\nSeccomp:\t2\nCapEff:\t000000c0003021e0\nCapBnd:\t000000c0003021e0\n",
        );
        assert!(unit.no_new_privs);
        assert_eq!(unit.seccomp, 2);
        assert!(unit.summary().contains("no_new_privs on; seccomp filter"));
    }

    #[test]
    fn the_packaged_units_set_passes_and_each_missing_cap_is_named() {
        // CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN CAP_KILL CAP_SETUID
        // CAP_SETGID: enough.
        let unit = (1u64 << CAP_BPF)
            | (1 << CAP_PERFMON)
            | (1 << CAP_NET_ADMIN)
            | (1 << CAP_SYS_ADMIN)
            | (1 << CAP_KILL)
            | (1 << CAP_SETUID)
            | (1 << CAP_SETGID);
        assert_eq!(with_eff(unit).check(), Ok(()));
        // CAP_SYS_ADMIN covers BPF and PERFMON in the kernel's checks.
        assert_eq!(
            with_eff(unit & !(1 << CAP_BPF) & !(1 << CAP_PERFMON)).check(),
            Ok(())
        );
        match with_eff(unit & !(1 << CAP_NET_ADMIN)).check() {
            Err(HardeningError::Capabilities(m)) => assert_eq!(m, "CAP_NET_ADMIN"),
            other => panic!("{other:?}"),
        }
        match with_eff(unit & !(1 << CAP_SYS_ADMIN) & !(1 << CAP_BPF)).check() {
            Err(HardeningError::Capabilities(m)) => assert_eq!(m, "CAP_SYS_ADMIN CAP_BPF"),
            other => panic!("{other:?}"),
        }
        let msg = with_eff(0).check().expect_err("no caps").to_string();
        assert!(msg.contains("CapabilityBoundingSet="), "{msg}");
    }

    #[test]
    fn a_read_only_cgroup_mount_or_filtered_bpf_is_refused() {
        let mut h = Hardening::from_status(ROOT);
        h.cgroup2 = Some(PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(h.check(), Ok(()));
        h.cgroup_read_only = true;
        let msg = h.check().expect_err("ro").to_string();
        assert!(msg.contains("ProtectControlGroups"), "{msg}");
        h.cgroup_read_only = false;
        h.bpf_errno = Some(libc::EPERM);
        let msg = h.check().expect_err("bpf").to_string();
        assert!(msg.contains("SystemCallFilter="), "{msg}");
    }

    #[test]
    fn garbage_status_reads_as_no_capabilities() {
        for s in [
            "",
            "CapEff:\tzz\n",
            "CapEff\n",
            "CapEff: 1 2\n",
            "\u{0}\u{ffff}",
        ] {
            let h = Hardening::from_status(s);
            assert_eq!(h.cap_eff, 0, "{s:?}");
            assert!(h.check().is_err());
        }
    }

    #[test]
    fn this_process_is_probed() {
        let h = probe();
        // Under the tests (root, no unit) the real probe agrees with the
        // kernel: bpf(2) allowed exactly when we have the capability.
        let allowed = has(h.cap_eff, CAP_BPF) || has(h.cap_eff, CAP_SYS_ADMIN);
        if allowed && h.seccomp == 0 {
            assert_eq!(h.bpf_errno, None, "{}", h.summary());
        }
        assert!(h.summary().starts_with("hardening in force: "));
    }
}
