//! Ring-buffer records: the `#[repr(C)]` mirror of `shieldd-ebpf/events.h`
//! and their decoding into typed [`Event`]s.

use std::net::{IpAddr, Ipv6Addr};

pub(crate) const PATH_LEN: usize = 256;
pub(crate) const ARGS_LEN: usize = 128;
pub(crate) const COMM_LEN: usize = 16;
/// Path bytes in a rule key (`SHIELD_KEY_PATH_LEN`).
pub(crate) const KEY_PATH_LEN: usize = 252;
/// Session slots of one loaded monitor (`SHIELD_MAX_SLOTS`).
pub const MAX_SLOTS: u32 = 1024;

/// Index of the lost-record counters for tasks in no slot (`SHIELD_LOST_UNKNOWN`).
pub(crate) const LOST_UNKNOWN: u32 = MAX_SLOTS;

const EV_EXEC: u32 = 1;
const EV_OPEN: u32 = 2;
const EV_CONNECT: u32 = 3;
const EV_SENDMSG: u32 = 4;
const EV_BIND: u32 = 5;
const EV_FORK: u32 = 6;
const EV_EXIT: u32 = 7;
const EV_SOCKET: u32 = 8;

const F_VIOLATION: u32 = 1;
const F_KILLED: u32 = 2;
const F_DENIED: u32 = 4;
const F_TRUNCATED: u32 = 8;
const F_ISOLATED: u32 = 16;

/// Mirror of `struct shield_hdr`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawHdr {
    pub kind: u32,
    pub flags: u32,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub slot: u32,
    pub _hpad: u32,
    pub cgroup_id: u64,
    pub ts_ns: u64,
    pub comm: [u8; COMM_LEN],
}

/// Mirror of `struct shield_exec_event`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawExec {
    pub hdr: RawHdr,
    pub filename_len: u32,
    pub path_len: u32,
    pub args_len: u32,
    pub _pad: u32,
    pub filename: [u8; PATH_LEN],
    pub path: [u8; PATH_LEN],
    pub args: [u8; ARGS_LEN],
}

/// Mirror of `struct shield_open_event`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawOpen {
    pub hdr: RawHdr,
    pub path_len: u32,
    pub _pad: u32,
    pub flags: u64,
    pub path: [u8; PATH_LEN],
}

/// Mirror of `struct shield_net_event`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawNet {
    pub hdr: RawHdr,
    pub family: u32,
    pub protocol: u32,
    pub sock_type: u32,
    pub port: u16,
    pub _pad: u16,
    pub addr: [u8; 16],
}

/// Mirror of `struct shield_fork_event`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawFork {
    pub hdr: RawHdr,
    pub child_pid: u32,
    pub _pad: u32,
}

/// Mirror of `struct shield_exit_event`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawExit {
    pub hdr: RawHdr,
    pub exit_code: i32,
    pub _pad: u32,
}

/// The path bytes of a rule key.
pub(crate) type PathData = [u8; KEY_PATH_LEN];

/// Mirror of `struct shield_path_key` without its prefix length (which
/// aya's `Key` carries): the session slot, then the path.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PathKeyData {
    pub slot: u32,
    pub path: PathData,
}

// SAFETY: PathKeyData is repr(C), a u32 and 252 bytes (256 bytes, no
// padding), so every bit pattern is valid and it can be copied to the kernel.
unsafe impl aya::Pod for PathKeyData {}

/// Mirror of `struct shield_net_key` without its prefix length.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NetKeyData {
    pub slot: u32,
    pub net: NetData,
}

// SAFETY: repr(C), a u32 then NetData (20 bytes, alignment 2): 24 bytes
// with no padding, every bit pattern valid.
unsafe impl aya::Pod for NetKeyData {}

/// Mirror of `struct shield_bind_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BindKey {
    pub slot: u32,
    pub port: u16,
    pub _pad: u16,
}

// SAFETY: repr(C), u32 + u16 + u16, no padding, every bit pattern valid.
unsafe impl aya::Pod for BindKey {}

/// The protocol, port and address part of `struct shield_net_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NetData {
    pub proto: u8,
    pub _pad: u8,
    /// Network byte order, as the kernel's `user_port`.
    pub port_be: u16,
    pub addr: [u8; 16],
}

// SAFETY: NetData is repr(C), made of integers with no padding (1+1+2+16
// bytes), so every bit pattern is valid and it can be copied to the kernel.
unsafe impl aya::Pod for NetData {}

/// Mirror of `struct shield_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawConfig {
    pub isolated: u32,
    pub exec_enforce: u32,
    pub exec_kill: u32,
    pub file_kill: u32,
    pub bind_enforce: u32,
    pub deny_enforce: u32,
    pub quiet: u32,
}

// SAFETY: RawConfig is repr(C), six u32 with no padding.
unsafe impl aya::Pod for RawConfig {}

/// Marker for the plain-data record mirrors above: every field is an
/// integer or an integer array, so any byte pattern is a valid value.
trait Record: Copy {}
impl Record for RawHdr {}
impl Record for RawExec {}
impl Record for RawOpen {}
impl Record for RawNet {}
impl Record for RawFork {}
impl Record for RawExit {}

/// Copy a record out of a ring-buffer slice, or None if it is too short.
fn read<T: Record>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the slice holds at least size_of::<T>() bytes (checked above),
    // read_unaligned has no alignment requirement, and T (a Record) is plain
    // integers for which every bit pattern is valid.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Bytes up to the first NUL (or `len`, whichever is first), lossily as UTF-8.
fn c_str(bytes: &[u8], len: usize) -> String {
    let bytes = bytes.get(..len.min(bytes.len())).unwrap_or(bytes);
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned()
}

/// What every event carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventMeta {
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent's pid; 0 where the hook cannot see it (network hooks).
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
    /// The session slot the task belongs to (see [`super::Monitor::add_session`]).
    pub slot: u32,
    /// cgroup v2 id (the inode number of the cgroup directory).
    pub cgroup_id: u64,
    /// CLOCK_MONOTONIC nanoseconds at the event.
    pub ts_ns: u64,
    /// `comm` of the task (at exec: the new program's).
    pub comm: String,
    /// The policy forbids this operation.
    pub violation: bool,
    /// The kernel sent SIGKILL to the process.
    pub killed: bool,
    /// The kernel refused the operation (EPERM).
    pub denied: bool,
    /// A path or argv did not fit in the record and was cut.
    pub truncated: bool,
    /// Refused because the session is isolated.
    pub isolated: bool,
}

/// Which socket-address operation a network event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetOp {
    /// connect(2).
    Connect,
    /// sendto/sendmsg with a destination address (unconnected UDP).
    Sendmsg,
    /// bind(2).
    Bind,
}

/// The kind-specific part of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A tracked process executed a new program.
    Exec {
        /// The file the kernel maps, resolved from its dentry (the loader
        /// for `ld.so prog`, `/memfd:NAME` for a memfd, the interpreter of a
        /// `#!` script).
        path: String,
        /// The name passed to execve, as given.
        filename: String,
        /// Head of argv.
        argv: Vec<String>,
    },
    /// A tracked process opened (or tried to open) a file.
    Open {
        /// Absolute path: as given joined to the cwd, or, for a violation
        /// found after the open, the path of the file actually opened.
        path: String,
        /// open(2) flags.
        flags: u64,
    },
    /// connect, sendmsg or bind in the agent's cgroup.
    Net {
        /// Which operation.
        op: NetOp,
        /// `AF_INET` or `AF_INET6` as the program used it.
        family: u32,
        /// IP protocol number (6 TCP, 17 UDP).
        protocol: u32,
        /// Socket type (1 stream, 2 datagram).
        sock_type: u32,
        /// Address; IPv4-mapped IPv6 is shown as IPv4.
        addr: IpAddr,
        /// Port.
        port: u16,
    },
    /// A raw or packet socket was refused.
    Socket {
        /// Address family.
        family: u32,
        /// Socket type.
        sock_type: u32,
        /// Protocol.
        protocol: u32,
    },
    /// A tracked process forked a new process (not a thread).
    Fork {
        /// The child's pid.
        child_pid: u32,
    },
    /// The last thread of a tracked process exited.
    Exit {
        /// Wait status: signal number in the low 7 bits, exit code << 8.
        exit_code: i32,
    },
    /// A record this version does not know (kernel and user space out of step).
    Unknown {
        /// The raw kind.
        kind: u32,
    },
}

/// One event from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Who and when.
    pub meta: EventMeta,
    /// What.
    pub kind: EventKind,
}

fn meta(h: &RawHdr) -> EventMeta {
    EventMeta {
        pid: h.pid,
        tid: h.tid,
        ppid: h.ppid,
        uid: h.uid,
        slot: h.slot,
        cgroup_id: h.cgroup_id,
        ts_ns: h.ts_ns,
        comm: c_str(&h.comm, COMM_LEN),
        violation: h.flags & F_VIOLATION != 0,
        killed: h.flags & F_KILLED != 0,
        denied: h.flags & F_DENIED != 0,
        truncated: h.flags & F_TRUNCATED != 0,
        isolated: h.flags & F_ISOLATED != 0,
    }
}

fn ip_from(addr: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(addr);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// Decode one ring-buffer record. Never fails: a short or unknown record
/// becomes [`EventKind::Unknown`].
pub(crate) fn decode(bytes: &[u8]) -> Event {
    let unknown = |kind: u32| Event {
        meta: EventMeta {
            pid: 0,
            tid: 0,
            ppid: 0,
            uid: 0,
            slot: u32::MAX,
            cgroup_id: 0,
            ts_ns: 0,
            comm: String::new(),
            violation: false,
            killed: false,
            denied: false,
            truncated: false,
            isolated: false,
        },
        kind: EventKind::Unknown { kind },
    };
    let Some(h) = read::<RawHdr>(bytes) else {
        return unknown(0);
    };
    let kind = match h.kind {
        EV_EXEC => read::<RawExec>(bytes).map(|e| {
            let args_len = (e.args_len as usize).min(ARGS_LEN);
            let args = e.args.get(..args_len).unwrap_or_default();
            let argv = args
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            EventKind::Exec {
                path: c_str(&e.path, e.path_len as usize),
                filename: c_str(&e.filename, e.filename_len as usize),
                argv,
            }
        }),
        EV_OPEN => read::<RawOpen>(bytes).map(|e| EventKind::Open {
            path: c_str(&e.path, e.path_len as usize),
            flags: e.flags,
        }),
        EV_CONNECT | EV_SENDMSG | EV_BIND => read::<RawNet>(bytes).map(|e| EventKind::Net {
            op: match h.kind {
                EV_CONNECT => NetOp::Connect,
                EV_SENDMSG => NetOp::Sendmsg,
                _ => NetOp::Bind,
            },
            family: e.family,
            protocol: e.protocol,
            sock_type: e.sock_type,
            addr: ip_from(e.addr),
            port: e.port,
        }),
        EV_SOCKET => read::<RawNet>(bytes).map(|e| EventKind::Socket {
            family: e.family,
            sock_type: e.sock_type,
            protocol: e.protocol,
        }),
        EV_FORK => read::<RawFork>(bytes).map(|e| EventKind::Fork {
            child_pid: e.child_pid,
        }),
        EV_EXIT => read::<RawExit>(bytes).map(|e| EventKind::Exit {
            exit_code: e.exit_code,
        }),
        _ => None,
    };
    match kind {
        Some(kind) => Event {
            meta: meta(&h),
            kind,
        },
        None => unknown(h.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use std::net::Ipv4Addr;

    #[allow(dead_code, non_upper_case_globals)]
    mod c {
        include!(concat!(env!("OUT_DIR"), "/layout.rs"));
    }

    #[test]
    fn layout_matches_c() {
        assert_eq!(MAX_SLOTS, c::MAX_SLOTS);
        assert_eq!(LOST_UNKNOWN, c::LOST_UNKNOWN);
        assert_eq!(size_of::<RawHdr>(), c::SIZE_shield_hdr);
        assert_eq!(offset_of!(RawHdr, kind), c::OFF_shield_hdr_kind);
        assert_eq!(offset_of!(RawHdr, flags), c::OFF_shield_hdr_flags);
        assert_eq!(offset_of!(RawHdr, pid), c::OFF_shield_hdr_pid);
        assert_eq!(offset_of!(RawHdr, tid), c::OFF_shield_hdr_tid);
        assert_eq!(offset_of!(RawHdr, ppid), c::OFF_shield_hdr_ppid);
        assert_eq!(offset_of!(RawHdr, uid), c::OFF_shield_hdr_uid);
        assert_eq!(offset_of!(RawHdr, slot), c::OFF_shield_hdr_slot);
        assert_eq!(offset_of!(RawHdr, cgroup_id), c::OFF_shield_hdr_cgroup_id);
        assert_eq!(offset_of!(RawHdr, ts_ns), c::OFF_shield_hdr_ts_ns);
        assert_eq!(offset_of!(RawHdr, comm), c::OFF_shield_hdr_comm);

        assert_eq!(size_of::<RawExec>(), c::SIZE_shield_exec_event);
        assert_eq!(
            offset_of!(RawExec, filename_len),
            c::OFF_shield_exec_event_filename_len
        );
        assert_eq!(
            offset_of!(RawExec, path_len),
            c::OFF_shield_exec_event_path_len
        );
        assert_eq!(
            offset_of!(RawExec, args_len),
            c::OFF_shield_exec_event_args_len
        );
        assert_eq!(
            offset_of!(RawExec, filename),
            c::OFF_shield_exec_event_filename
        );
        assert_eq!(offset_of!(RawExec, path), c::OFF_shield_exec_event_path);
        assert_eq!(offset_of!(RawExec, args), c::OFF_shield_exec_event_args);

        assert_eq!(size_of::<RawOpen>(), c::SIZE_shield_open_event);
        assert_eq!(
            offset_of!(RawOpen, path_len),
            c::OFF_shield_open_event_path_len
        );
        assert_eq!(offset_of!(RawOpen, flags), c::OFF_shield_open_event_flags);
        assert_eq!(offset_of!(RawOpen, path), c::OFF_shield_open_event_path);

        assert_eq!(size_of::<RawNet>(), c::SIZE_shield_net_event);
        assert_eq!(offset_of!(RawNet, family), c::OFF_shield_net_event_family);
        assert_eq!(
            offset_of!(RawNet, protocol),
            c::OFF_shield_net_event_protocol
        );
        assert_eq!(
            offset_of!(RawNet, sock_type),
            c::OFF_shield_net_event_sock_type
        );
        assert_eq!(offset_of!(RawNet, port), c::OFF_shield_net_event_port);
        assert_eq!(offset_of!(RawNet, addr), c::OFF_shield_net_event_addr);

        assert_eq!(size_of::<RawFork>(), c::SIZE_shield_fork_event);
        assert_eq!(
            offset_of!(RawFork, child_pid),
            c::OFF_shield_fork_event_child_pid
        );
        assert_eq!(size_of::<RawExit>(), c::SIZE_shield_exit_event);
        assert_eq!(
            offset_of!(RawExit, exit_code),
            c::OFF_shield_exit_event_exit_code
        );

        // Keys: aya's lpm_trie::Key is { prefix_len: u32, data: K } repr(C).
        assert_eq!(4 + size_of::<PathKeyData>(), c::SIZE_shield_path_key);
        assert_eq!(
            4 + offset_of!(PathKeyData, slot),
            c::OFF_shield_path_key_slot
        );
        assert_eq!(
            4 + offset_of!(PathKeyData, path),
            c::OFF_shield_path_key_path
        );
        assert_eq!(4 + size_of::<NetKeyData>(), c::SIZE_shield_net_key);
        assert_eq!(4 + offset_of!(NetKeyData, slot), c::OFF_shield_net_key_slot);
        let net = 4 + offset_of!(NetKeyData, net);
        assert_eq!(
            net + offset_of!(NetData, proto),
            c::OFF_shield_net_key_proto
        );
        assert_eq!(
            net + offset_of!(NetData, port_be),
            c::OFF_shield_net_key_port
        );
        assert_eq!(net + offset_of!(NetData, addr), c::OFF_shield_net_key_addr);
        assert_eq!(size_of::<BindKey>(), c::SIZE_shield_bind_key);
        assert_eq!(offset_of!(BindKey, slot), c::OFF_shield_bind_key_slot);
        assert_eq!(offset_of!(BindKey, port), c::OFF_shield_bind_key_port);

        assert_eq!(size_of::<RawConfig>(), c::SIZE_shield_config);
        assert_eq!(
            offset_of!(RawConfig, isolated),
            c::OFF_shield_config_isolated
        );
        assert_eq!(
            offset_of!(RawConfig, exec_enforce),
            c::OFF_shield_config_exec_enforce
        );
        assert_eq!(
            offset_of!(RawConfig, exec_kill),
            c::OFF_shield_config_exec_kill
        );
        assert_eq!(
            offset_of!(RawConfig, file_kill),
            c::OFF_shield_config_file_kill
        );
        assert_eq!(
            offset_of!(RawConfig, bind_enforce),
            c::OFF_shield_config_bind_enforce
        );
        assert_eq!(
            offset_of!(RawConfig, deny_enforce),
            c::OFF_shield_config_deny_enforce
        );
        assert_eq!(offset_of!(RawConfig, quiet), c::OFF_shield_config_quiet);
    }

    fn hdr(kind: u32, flags: u32) -> RawHdr {
        let mut comm = [0u8; COMM_LEN];
        comm[..4].copy_from_slice(b"test");
        RawHdr {
            kind,
            flags,
            pid: 10,
            tid: 11,
            ppid: 1,
            uid: 0,
            slot: 3,
            _hpad: 0,
            cgroup_id: 99,
            ts_ns: 5,
            comm,
        }
    }

    fn bytes_of<T: Record>(v: &T) -> Vec<u8> {
        // SAFETY: T is a plain-integer repr(C) record; viewing its storage
        // as bytes for the size of T is valid (padding-free by layout test).
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    #[test]
    fn decodes_exec_with_argv_and_flags() {
        let mut e = RawExec {
            hdr: hdr(EV_EXEC, F_VIOLATION | F_KILLED),
            filename_len: 8,
            path_len: 13,
            args_len: 9,
            _pad: 0,
            filename: [0; PATH_LEN],
            path: [0; PATH_LEN],
            args: [0; ARGS_LEN],
        };
        e.filename[..8].copy_from_slice(b"/bin/foo");
        e.path[..13].copy_from_slice(b"/usr/bin/foox");
        e.args[..9].copy_from_slice(b"foo\0-x\0y\0");
        let ev = decode(&bytes_of(&e));
        assert!(ev.meta.violation && ev.meta.killed && !ev.meta.denied);
        assert_eq!(ev.meta.comm, "test");
        assert_eq!(ev.meta.slot, 3);
        assert_eq!(
            ev.kind,
            EventKind::Exec {
                path: "/usr/bin/foox".into(),
                filename: "/bin/foo".into(),
                argv: vec!["foo".into(), "-x".into(), "y".into()],
            }
        );
    }

    #[test]
    fn short_or_unknown_records_do_not_panic() {
        assert_eq!(decode(&[]).kind, EventKind::Unknown { kind: 0 });
        let h = hdr(EV_EXEC, 0);
        // A header alone is too short for an exec record.
        assert_eq!(
            decode(&bytes_of(&h)).kind,
            EventKind::Unknown { kind: EV_EXEC }
        );
        let h = hdr(77, 0);
        assert_eq!(decode(&bytes_of(&h)).kind, EventKind::Unknown { kind: 77 });
    }

    #[test]
    fn mapped_v4_is_shown_as_v4_and_v6_stays_v6() {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(ip_from(a), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            ip_from(Ipv6Addr::LOCALHOST.octets()),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
    }
}
