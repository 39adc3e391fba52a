/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Records sent from the kernel programs to user space through the ring
 * buffer, and the keys of the maps user space fills.
 *
 * This header is the single definition: shieldd/src/monitor/events.rs mirrors
 * it with #[repr(C)] structs, and a test compares sizes and offsets against
 * the values build.rs prints from this very file (layout.c).
 *
 * Every record starts with struct shield_hdr; `kind` says which struct
 * follows. Only fixed-width types and natural alignment, so the layout is
 * the same for the BPF target and the host.
 */
#ifndef SHIELD_EVENTS_H
#define SHIELD_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SHIELD_PATH_LEN 256 /* bytes of a path, NUL included; longer ones are truncated and flagged */
#define SHIELD_ARGS_LEN 128 /* head of argv, NUL-separated as in /proc/PID/cmdline */
#define SHIELD_COMM_LEN 16
/* Bytes of a path inside a rule key: the LPM trie takes at most 256 bytes
 * of key data, and the session slot takes the first 4. */
#define SHIELD_KEY_PATH_LEN 252
/* Session slots: one per supervised session of a loaded monitor. */
#define SHIELD_MAX_SLOTS 1024
/* Index of the lost-record counters for tasks in no session slot. */
#define SHIELD_LOST_UNKNOWN SHIELD_MAX_SLOTS

/* shield_hdr.kind */
#define SHIELD_EV_EXEC 1
#define SHIELD_EV_OPEN 2
#define SHIELD_EV_CONNECT 3
#define SHIELD_EV_SENDMSG 4
#define SHIELD_EV_BIND 5
#define SHIELD_EV_FORK 6
#define SHIELD_EV_EXIT 7
#define SHIELD_EV_SOCKET 8 /* socket(2) refused by sock_create */

/* shield_hdr.flags */
#define SHIELD_F_VIOLATION 1u /* the policy forbids this */
#define SHIELD_F_KILLED 2u    /* bpf_send_signal(SIGKILL) was sent to the process */
#define SHIELD_F_DENIED 4u    /* the kernel refused the operation (EPERM) */
#define SHIELD_F_TRUNCATED 8u /* a path or argv did not fit */
#define SHIELD_F_ISOLATED 16u /* refused because the session is isolated */

struct shield_hdr {
	__u32 kind;
	__u32 flags;
	__u32 pid;  /* thread group id (what user space calls the pid) */
	__u32 tid;
	__u32 ppid; /* 0 where the hook cannot see the parent (cgroup hooks) */
	__u32 uid;
	__u32 slot;      /* the session the task belongs to */
	__u32 _hpad;
	__u64 cgroup_id; /* cgroup v2 id of the task */
	__u64 ts_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	char comm[SHIELD_COMM_LEN];
};

struct shield_exec_event {
	struct shield_hdr hdr;
	__u32 filename_len; /* bytes in filename, NUL excluded */
	__u32 path_len;
	__u32 args_len;
	__u32 _pad;
	char filename[SHIELD_PATH_LEN]; /* as passed to execve (may be relative, /dev/fd/N) */
	char path[SHIELD_PATH_LEN];     /* the file the kernel runs, resolved from its dentry */
	char args[SHIELD_ARGS_LEN];
};

struct shield_open_event {
	struct shield_hdr hdr;
	__u32 path_len;
	__u32 _pad;
	__u64 flags; /* open(2) flags */
	char path[SHIELD_PATH_LEN]; /* absolute: relative paths are joined to the cwd */
};

struct shield_net_event {
	struct shield_hdr hdr;
	__u32 family;   /* AF_INET / AF_INET6 / AF_PACKET ... */
	__u32 protocol; /* IPPROTO_TCP / IPPROTO_UDP / ... */
	__u32 sock_type;
	__u16 port; /* host byte order */
	__u16 _pad;
	__u8 addr[16]; /* IPv4 as ::ffff:a.b.c.d */
};

struct shield_fork_event {
	struct shield_hdr hdr;
	__u32 child_pid;
	__u32 _pad;
};

struct shield_exit_event {
	struct shield_hdr hdr;
	__s32 exit_code; /* wait status: signal in the low 7 bits, exit code << 8 */
	__u32 _pad;
};

/* Key of the path LPM tries (exec_allow, deny_paths, exec_deny): the
 * session slot, then the path. An entry with prefixlen = 32 + (len + 1) * 8
 * and the NUL stored is an exact path; an entry ending in '/' without the
 * NUL is a directory prefix. */
struct shield_path_key {
	__u32 prefixlen; /* bits, counted from slot */
	__u32 slot;
	char path[SHIELD_KEY_PATH_LEN];
};

/* Key of the network allow LPM trie: slot, protocol and port match
 * exactly (port 0 = any port), then the address by prefix. */
struct shield_net_key {
	__u32 prefixlen; /* bits, counted from slot */
	__u32 slot;
	__u8 proto;
	__u8 _pad;
	__u16 port; /* network byte order */
	__u8 addr[16];
};

/* Key of bind_ports: a port (host order) a session may bind. */
struct shield_bind_key {
	__u32 slot;
	__u16 port;
	__u16 _pad;
};

/* One entry of the config array per session slot. */
struct shield_config {
	__u32 isolated;    /* deny every socket address operation */
	__u32 exec_enforce;/* exec_allow is in force */
	__u32 exec_kill;   /* SIGKILL on an exec violation */
	__u32 file_kill;   /* SIGKILL on an open of a denied path */
	__u32 bind_enforce;/* bind_ports is in force */
	__u32 deny_enforce;/* deny_paths has entries: resolve opened files */
	__u32 quiet;       /* nothing records events: emit only violations */
};

#endif
