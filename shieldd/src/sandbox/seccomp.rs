//! The seccomp baseline of SPEC section 3, compiled with seccompiler.
//!
//! Denied calls return EPERM rather than killing, so an agent that probes
//! (Python's `os`, `ctypes`) gets an exception it can handle. The filters are
//! compiled in the parent; the child only installs them.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};

/// Errors compiling the filters.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// seccompiler refused a rule (a bug in this table).
    #[error("seccomp filter: {0}")]
    Compile(#[from] seccompiler::BackendError),
    /// This architecture has no baseline yet.
    #[error("no seccomp baseline for this architecture")]
    Arch,
}

/// What the network part of the policy lets through seccomp.
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketRules {
    /// Refuse UDP sockets on AF_INET/AF_INET6 (used when no kernel-side
    /// address filter can restrict them).
    pub deny_udp: bool,
}

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// Calls that are denied whatever their arguments.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_userfaultfd,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_fanotify_init,
    libc::SYS_lookup_dcookie,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_vhangup,
];

/// Names of the unconditionally denied calls (for docs and tests).
pub const DENIED_NAMES: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "bpf",
    "perf_event_open",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "mount",
    "umount2",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "pivot_root",
    "chroot",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "unshare",
    "setns",
    "open_by_handle_at",
    "name_to_handle_at",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "quotactl",
    "fanotify_init",
    "lookup_dcookie",
    "iopl",
    "ioperm",
    "uselib",
    "vhangup",
];

const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

fn cond(arg: u8, op: Op, value: u64) -> Result<Cond, SeccompError> {
    Ok(Cond::new(arg, Len::Dword, op, value)?)
}

/// The filters to install, in order. Two are needed because seccompiler
/// gives one filter one match action, and clone3 must fail with ENOSYS (so
/// libc falls back to clone, whose flags a filter can inspect) while
/// everything else fails with EPERM.
// The casts are no-ops on 64-bit targets but not on every target libc serves.
#[allow(clippy::unnecessary_cast)]
pub fn build_filters(sock: SocketRules) -> Result<Vec<BpfProgram>, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in DENIED {
        rules.insert(*nr as i64, Vec::new());
    }
    // Namespaces through clone(2): deny if any CLONE_NEW* flag is set.
    let mut clone_rules = Vec::new();
    for f in CLONE_NS_FLAGS {
        clone_rules.push(SeccompRule::new(vec![cond(0, Op::MaskedEq(*f), *f)?])?);
    }
    rules.insert(libc::SYS_clone as i64, clone_rules);
    // personality(2): only the query (0xffffffff) and PER_LINUX (0).
    rules.insert(
        libc::SYS_personality as i64,
        vec![SeccompRule::new(vec![
            cond(0, Op::Ne, 0)?,
            cond(0, Op::Ne, 0xffff_ffff)?,
        ])?],
    );
    // Terminal input injection: TIOCSTI pushes keystrokes into the user's
    // shell after the agent exits; TIOCLINUX can do the same on a console.
    rules.insert(
        libc::SYS_ioctl as i64,
        vec![
            SeccompRule::new(vec![cond(1, Op::Eq, libc::TIOCSTI as u64)?])?,
            SeccompRule::new(vec![cond(1, Op::Eq, libc::TIOCLINUX as u64)?])?,
        ],
    );
    // Raw and packet sockets: never. UDP: only when asked.
    let mut socket_rules = vec![
        SeccompRule::new(vec![cond(0, Op::Eq, libc::AF_PACKET as u64)?])?,
        SeccompRule::new(vec![cond(1, Op::MaskedEq(0xf), libc::SOCK_RAW as u64)?])?,
    ];
    if sock.deny_udp {
        for af in [libc::AF_INET, libc::AF_INET6] {
            socket_rules.push(SeccompRule::new(vec![
                cond(0, Op::Eq, af as u64)?,
                cond(1, Op::MaskedEq(0xf), libc::SOCK_DGRAM as u64)?,
            ])?);
        }
    }
    rules.insert(libc::SYS_socket as i64, socket_rules);

    let eperm = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        ARCH,
    )?;
    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3 as i64, Vec::new());
    let enosys = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    )?;
    let mut filters = vec![BpfProgram::try_from(eperm)?, BpfProgram::try_from(enosys)?];
    #[cfg(target_arch = "x86_64")]
    filters.push(x32_guard());
    Ok(filters)
}

/// x32 system calls share AUDIT_ARCH_X86_64 but set bit 30 of the number,
/// so a filter keyed on x86_64 numbers would let `ptrace` through as x32.
/// seccompiler cannot match a number range, hence these four instructions.
#[cfg(target_arch = "x86_64")]
fn x32_guard() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x05 | 0x30;
    const RET_K: u16 = 0x06;
    let stmt = |code, k| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        stmt(LD_W_ABS, 0), // seccomp_data.nr
        sock_filter {
            code: JGE_K,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        },
        stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(RET_K, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's seccomp_is_const_allow (kernel/seccomp.c): run a filter
    /// for one syscall number with only `nr` and `arch` known. Some(true):
    /// the kernel caches "allow" for that number in its per-filter bitmap
    /// and never runs the filter for it again; None: it must run each time.
    fn const_allow(f: &[sock_filter], nr: u32, arch: u32) -> Option<bool> {
        const LD_W_ABS: u16 = 0x20;
        const RET_K: u16 = 0x06;
        const JA: u16 = 0x05;
        const JEQ_K: u16 = 0x15;
        const JGE_K: u16 = 0x35;
        const JGT_K: u16 = 0x25;
        const JSET_K: u16 = 0x45;
        const AND_K: u16 = 0x54;
        let mut acc = 0u32;
        let mut pc = 0usize;
        for _ in 0..=f.len() {
            let insn = f.get(pc)?;
            match insn.code {
                LD_W_ABS => match insn.k {
                    0 => acc = nr,
                    4 => acc = arch,
                    _ => return None,
                },
                RET_K => return Some(insn.k == libc::SECCOMP_RET_ALLOW),
                JA => pc += insn.k as usize,
                JEQ_K | JGE_K | JGT_K | JSET_K => {
                    let taken = match insn.code {
                        JEQ_K => acc == insn.k,
                        JGE_K => acc >= insn.k,
                        JGT_K => acc > insn.k,
                        _ => acc & insn.k != 0,
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                AND_K => acc &= insn.k,
                _ => return None,
            }
            pc += 1;
        }
        None
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn unconditionally_allowed_calls_hit_the_kernel_cache() {
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        let filters = build_filters(SocketRules { deny_udp: false }).expect("compiles");
        let hot = [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_close,
            libc::SYS_connect,
            libc::SYS_execve,
            libc::SYS_wait4,
            libc::SYS_mmap,
            libc::SYS_futex,
        ];
        for nr in hot {
            for f in &filters {
                assert_eq!(
                    const_allow(f, nr as u32, AUDIT_ARCH_X86_64),
                    Some(true),
                    "syscall {nr} is not a constant allow: the filter would run on every call"
                );
            }
        }
        // The look-alikes: argument-dependent and denied calls are not.
        let eperm = &filters[0];
        assert_eq!(
            const_allow(eperm, libc::SYS_socket as u32, AUDIT_ARCH_X86_64),
            None
        );
        assert_eq!(
            const_allow(eperm, libc::SYS_ioctl as u32, AUDIT_ARCH_X86_64),
            None
        );
        assert_eq!(
            const_allow(eperm, libc::SYS_ptrace as u32, AUDIT_ARCH_X86_64),
            Some(false)
        );
        // Another architecture never gets the cached allow.
        assert_ne!(const_allow(eperm, 0, 0x4000_0003), Some(true));
    }

    #[test]
    fn filters_compile_and_cover_the_baseline() {
        let f = build_filters(SocketRules { deny_udp: true }).expect("compiles");
        assert!(f.len() >= 2);
        assert_eq!(DENIED_NAMES.len(), DENIED.len());
        for must in [
            "ptrace",
            "bpf",
            "perf_event_open",
            "io_uring_setup",
            "mount",
            "pivot_root",
            "chroot",
            "kexec_load",
            "init_module",
            "keyctl",
            "userfaultfd",
            "unshare",
            "setns",
            "open_by_handle_at",
            "process_vm_readv",
        ] {
            assert!(
                DENIED_NAMES.contains(&must),
                "{must} missing from the baseline"
            );
        }
    }
}
