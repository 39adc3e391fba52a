// SPDX-License-Identifier: GPL-2.0
/*
 * shieldd kernel programs: watch the agent's process tree, enforce the
 * policy where the kernel allows it, and report every event through a ring
 * buffer.
 *
 * No BPF LSM and no fentry/fexit (refused by many kernels, including the one
 * this was written on): exec and open are watched from tp_btf and syscall
 * tracepoints and enforced with bpf_send_signal(SIGKILL), which is delivered
 * before the task returns to user space; the network is enforced by cgroup
 * sock_addr programs, which refuse the operation itself (EPERM).
 *
 * Built with CO-RE (vmlinux.h from the running kernel's BTF) so one object
 * runs on other kernels whose structure layouts differ.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.h"

char LICENSE[] SEC("license") = "GPL";

/* vmlinux.h carries no #defines. */
#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define SOCK_RAW 3
#define AT_FDCWD -100
#define SIGKILL 9
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000

#define MAX_DEPTH 32 /* path components kept; deeper paths are flagged truncated */
#define MAX_WALK 48  /* dentry steps, mount crossings included */

_Static_assert(sizeof(struct shield_hdr) == 64, "shield_hdr layout");
_Static_assert(sizeof(struct shield_exec_event) == 64 + 16 + 2 * SHIELD_PATH_LEN + SHIELD_ARGS_LEN,
	       "shield_exec_event layout");
_Static_assert(sizeof(struct shield_net_key) == 28, "shield_net_key layout");
_Static_assert(sizeof(struct shield_path_key) == 4 + 256, "an LPM key holds at most 256 data bytes");

/* ---- maps (sizes are defaults; user space may override max_entries) ---- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Records that did not fit in the ring buffer, counted per CPU and per
 * session slot, so that each session's loss is its own; the last entry
 * (SHIELD_LOST_UNKNOWN) counts records of tasks in no slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHIELD_MAX_SLOTS + 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/*
 * Sessions: one loaded monitor serves many supervised sessions, each with a
 * slot (0 .. SHIELD_MAX_SLOTS-1). Every rule map is keyed by slot, and every
 * record carries it, so user space routes it to its session.
 */

/* Process tree: tgid -> slot. The launcher enters the agent before it
 * execs; a fork inherits its parent's slot. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u32);
} tracked_pids SEC(".maps");

/* cgroup v2 id -> slot: every task of a session's cgroup is tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHIELD_MAX_SLOTS);
	__type(key, __u64);
	__type(value, __u32);
} tracked_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shield_path_key);
	__type(value, __u32);
} exec_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shield_path_key);
	__type(value, __u32);
} deny_paths SEC(".maps");

/* Never executable, even inside an allowed directory: the dynamic loader,
 * which would otherwise run any file as `ld.so FILE`. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shield_path_key);
	__type(value, __u32);
} exec_deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shield_net_key);
	__type(value, __u32);
} net_allow SEC(".maps");

/* (slot, port in host order) a session may bind. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct shield_bind_key);
	__type(value, __u32);
} bind_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHIELD_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct shield_config);
} shield_cfg SEC(".maps");

/* Path work area: too big for the 512-byte stack. `prefixlen`, `slot` and
 * `buf` have the layout of struct shield_path_key, so they are the lookup key.
 * buf is twice the path length so that a write at (off & (LEN-1)) of up to
 * LEN bytes stays inside it, which is what the verifier needs to see.
 *
 * The state of a path walk lives here too, in map memory rather than on the
 * stack: the verifier sees its fields as unknown values, so each bpf_loop
 * body is checked once or twice, not once per value a counter can take
 * (that was most of the load time). */
struct scratch {
	__u32 prefixlen;
	__u32 slot;
	char buf[2 * SHIELD_PATH_LEN];
	__u64 names[MAX_DEPTH];
	__u64 w_dentry; /* struct dentry *: the walk's current dentry */
	__u64 w_mount;  /* struct mount *: the same mount, outer struct */
	__u64 w_root;   /* struct dentry *: the root of that mount (read once per mount) */
	__u64 w_off;    /* bytes written to buf */
	__s32 w_n;      /* names collected */
	__s32 w_trunc;  /* the path did not fit */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* Open flags seen at syscall entry, per thread, for the exit hook. LRU:
 * a thread killed inside open never reaches the exit hook to clean up. */
struct open_pending {
	__u64 flags;
	__u32 violation; /* already reported at entry */
	__u32 deferred;  /* quiet: the path as given is checked at exit, on failure only */
	__u64 upath;     /* deferred: the user pointer and dirfd of the call */
	__s64 dfd;
	__u32 slot;      /* the session whose rules apply at exit */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct open_pending);
} open_pending SEC(".maps");

/* ---- helpers ---- */

static __always_inline struct shield_config *get_config(__u32 slot)
{
	return bpf_map_lookup_elem(&shield_cfg, &slot);
}

static __always_inline struct scratch *get_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_map, &zero);
}

/* Reserve a record for a session's slot; a failure is counted against
 * that session, never silent. */
static __always_inline void *reserve(__u64 size, __u32 slot)
{
	void *rec = bpf_ringbuf_reserve(&events, size, 0);
	if (!rec) {
		__u32 idx = slot < SHIELD_MAX_SLOTS ? slot : SHIELD_LOST_UNKNOWN;
		__u64 *n = bpf_map_lookup_elem(&lost, &idx);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return rec;
}

/* The session of the current task (by pid, else by cgroup): 1 and *slot
 * set when it is tracked, 0 otherwise. */
static __always_inline int slot_of(__u32 tgid, __u32 *slot)
{
	__u32 *v = bpf_map_lookup_elem(&tracked_pids, &tgid);
	if (!v) {
		__u64 cg = bpf_get_current_cgroup_id();
		v = bpf_map_lookup_elem(&tracked_cgroups, &cg);
	}
	if (!v)
		return 0;
	*slot = *v;
	return 1;
}

static __always_inline void fill_hdr(struct shield_hdr *h, __u32 kind, __u32 flags, __u32 ppid,
				     __u32 slot)
{
	__u64 id = bpf_get_current_pid_tgid();
	h->kind = kind;
	h->flags = flags;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->ppid = ppid;
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->slot = slot;
	h->_hpad = 0;
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline __u32 current_ppid(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(t, real_parent, tgid);
}

/* off & (SHIELD_PATH_LEN - 1), in a form the compiler cannot drop: clang
 * proves the mask redundant and removes it, and the verifier, which tracks
 * less than clang, then sees an unbounded offset. */
static __always_inline __u64 bound(__u64 off)
{
	asm volatile("%0 &= %1" : "+r"(off) : "i"(SHIELD_PATH_LEN - 1));
	return off;
}

/*
 * Absolute path of (dentry, vfsmount) into s->buf, NUL-terminated, the way
 * d_path builds it (bpf_d_path is not allowed in tracepoints): walk to the
 * root collecting names, crossing mount points, then write them root first.
 * Both loops run under bpf_loop, with their state in the scratch map (see
 * struct scratch), so the verifier checks each body about once.
 */
static long walk_step(__u64 i, void *data)
{
	struct scratch *s = get_scratch();
	if (!s)
		return 1;
	struct dentry *d = (void *)s->w_dentry;
	struct mount *mnt = (void *)s->w_mount;
	if (s->w_dentry == s->w_root) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt)
			return 1; /* root of the mount tree */
		struct vfsmount *vm = (void *)up + bpf_core_field_offset(struct mount, mnt);
		s->w_dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		s->w_mount = (__u64)up;
		s->w_root = (__u64)BPF_CORE_READ(vm, mnt_root);
		return 0;
	}
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	int n = s->w_n;
	if (n < 0 || n >= MAX_DEPTH) {
		s->w_trunc = 1;
		return 1;
	}
	s->names[n] = (__u64)BPF_CORE_READ(d, d_name.name);
	s->w_n = n + 1;
	if (parent == d)
		return 1; /* disconnected dentry: memfd, pipe, deleted tree */
	s->w_dentry = (__u64)parent;
	return 0;
}

static long put_step(__u64 i, void *data)
{
	struct scratch *s = get_scratch();
	if (!s)
		return 1;
	int j = s->w_n - 1 - (int)i;
	if (j < 0 || j >= MAX_DEPTH)
		return 1;
	__u64 off = s->w_off;
	if (off >= SHIELD_PATH_LEN - 1) {
		s->w_trunc = 1;
		return 1;
	}
	s->buf[bound(off)] = '/';
	off++;
	long r = bpf_probe_read_kernel_str(&s->buf[bound(off)], SHIELD_PATH_LEN, (void *)s->names[j]);
	if (r > 1)
		off += r - 1;
	s->w_off = off;
	return 0;
}

/*
 * A global (not static) function: the verifier checks it once, on its own,
 * rather than again at every call site of every caller, as it does for
 * inlined code and static subprograms. Returns the length, or -1 when the
 * path was truncated (s->buf then holds its first SHIELD_PATH_LEN-1 bytes).
 */
__noinline long resolve_path(__u64 dentry, __u64 vfsmnt)
{
	struct scratch *s = get_scratch();
	if (!s)
		return -1;
	s->w_dentry = dentry;
	s->w_mount = vfsmnt - bpf_core_field_offset(struct mount, mnt);
	s->w_root = (__u64)BPF_CORE_READ((struct vfsmount *)vfsmnt, mnt_root);
	s->w_off = 0;
	s->w_n = 0;
	s->w_trunc = 0;
	bpf_loop(MAX_WALK, walk_step, NULL, 0);
	bpf_loop(MAX_DEPTH, put_step, NULL, 0);
	__u64 off = s->w_off;
	int truncated = s->w_trunc;
	if (off == 0) {
		s->buf[0] = '/';
		off = 1;
	}
	if (off > SHIELD_PATH_LEN - 1) {
		off = SHIELD_PATH_LEN - 1;
		truncated = 1;
	}
	s->buf[bound(off)] = 0;
	return truncated ? -1 : (long)off;
}

/* The file behind fd in the current task, or NULL. */
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd < 0 || (unsigned int)fd >= max)
		return NULL;
	struct file **arr = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

static __always_inline long walk_file(struct file *f)
{
	return resolve_path((__u64)BPF_CORE_READ(f, f_path.dentry), (__u64)BPF_CORE_READ(f, f_path.mnt));
}

/* Exact-or-prefix match of s->buf in a path trie. Garbage after the NUL is
 * harmless: stored entries end at the NUL (exact) or at a '/' (prefix). */
static __always_inline int path_in(void *trie, struct scratch *s, __u32 slot)
{
	s->prefixlen = 32 + SHIELD_KEY_PATH_LEN * 8;
	s->slot = slot;
	return bpf_map_lookup_elem(trie, s) != NULL;
}

/* ---- process tree ---- */

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), slot = 0;
	if (!slot_of(ptgid, &slot))
		return 0;
	__u32 cpid = BPF_CORE_READ(child, pid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (cpid != ctgid)
		return 0; /* a new thread: its process is tracked already */

	__u32 flags = 0;
	if (bpf_map_update_elem(&tracked_pids, &ctgid, &slot, BPF_ANY))
		flags |= SHIELD_F_TRUNCATED; /* map full: only the cgroup still tracks it */

	struct shield_fork_event *e = reserve(sizeof(*e), slot);
	if (!e)
		return 0;
	fill_hdr(&e->hdr, SHIELD_EV_FORK, flags, BPF_CORE_READ(parent, real_parent, tgid), slot);
	e->child_pid = ctgid;
	e->_pad = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid), slot = 0;
	if (!slot_of(tgid, &slot))
		return 0;
	/* signal->live is decremented before this tracepoint: 0 = last thread. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	bpf_map_delete_elem(&tracked_pids, &tgid);

	struct shield_exit_event *e = reserve(sizeof(*e), slot);
	if (!e)
		return 0;
	fill_hdr(&e->hdr, SHIELD_EV_EXIT, 0, BPF_CORE_READ(p, real_parent, tgid), slot);
	e->exit_code = BPF_CORE_READ(p, exit_code);
	e->_pad = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* ---- exec ---- */

/*
 * Fires after the point of no return, before the new program runs a single
 * instruction. bprm->file is what the kernel maps: the ELF itself (so
 * `ld.so /bin/x` is seen as ld.so), the interpreter of a #! script, or a
 * memfd (path "/memfd:NAME").
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32, slot = 0;
	if (!slot_of(tgid, &slot))
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct shield_config *cfg = get_config(slot);

	__u32 flags = 0;
	long len = walk_file(BPF_CORE_READ(bprm, file));
	int allowed = len >= 0 && path_in(&exec_allow, s, slot) && !path_in(&exec_deny, s, slot);
	if (len < 0)
		flags |= SHIELD_F_TRUNCATED;
	if (cfg && cfg->exec_enforce && !allowed) {
		flags |= SHIELD_F_VIOLATION;
		if (cfg->exec_kill) {
			bpf_send_signal(SIGKILL);
			flags |= SHIELD_F_KILLED;
		}
	}

	struct shield_exec_event *e = reserve(sizeof(*e), slot);
	if (!e)
		return 0;
	fill_hdr(&e->hdr, SHIELD_EV_EXEC, flags, BPF_CORE_READ(p, real_parent, tgid), slot);
	e->path_len = len < 0 ? SHIELD_PATH_LEN - 1 : len;
	bpf_probe_read_kernel(e->path, SHIELD_PATH_LEN, s->buf);
	long fl = bpf_probe_read_kernel_str(e->filename, SHIELD_PATH_LEN, BPF_CORE_READ(bprm, filename));
	e->filename_len = fl > 0 ? fl - 1 : 0;
	e->_pad = 0;

	/* argv of the new image, NUL-separated, from its stack. */
	unsigned long start = BPF_CORE_READ(p, mm, arg_start);
	unsigned long end = BPF_CORE_READ(p, mm, arg_end);
	__u64 alen = end > start ? end - start : 0;
	if (alen > SHIELD_ARGS_LEN) {
		alen = SHIELD_ARGS_LEN;
		e->hdr.flags |= SHIELD_F_TRUNCATED;
	}
	if (bpf_probe_read_user(e->args, alen, (void *)start) < 0)
		alen = 0;
	e->args_len = alen;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* ---- open ---- */

/* The path as given to open, joined to the cwd (or the dirfd's path) when it
 * is relative, into the scratch buffer. Returns its length, or -1 when it
 * did not fit or a directory could not be resolved (its length is then
 * SHIELD_PATH_LEN - 1). Global, so verified once (see resolve_path). */
__noinline long given_path(int dfd, __u64 upath_addr)
{
	const char *upath = (const char *)upath_addr;
	struct scratch *s = get_scratch();
	if (!s)
		return -1;
	char first = 0;
	bpf_probe_read_user(&first, 1, upath);
	long len = 0;
	if (first == '/') {
		len = bpf_probe_read_user_str(s->buf, SHIELD_PATH_LEN, upath);
		return len > 0 ? len - 1 : 0;
	}
	__u64 dentry = 0, mnt = 0;
	if (dfd == AT_FDCWD) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();
		dentry = (__u64)BPF_CORE_READ(t, fs, pwd.dentry);
		mnt = (__u64)BPF_CORE_READ(t, fs, pwd.mnt);
	} else {
		struct file *f = fd_file(dfd);
		if (!f)
			return -1;
		dentry = (__u64)BPF_CORE_READ(f, f_path.dentry);
		mnt = (__u64)BPF_CORE_READ(f, f_path.mnt);
	}
	len = resolve_path(dentry, mnt);
	if (len < 0 || len >= SHIELD_PATH_LEN - 2)
		return -1;
	__u32 off = len;
	if (off > 1) { /* "/" + "x" must not become "//x" */
		s->buf[bound(off)] = '/';
		off++;
	}
	long r = bpf_probe_read_user_str(&s->buf[bound(off)], SHIELD_PATH_LEN, upath);
	if (r > 1)
		off += r - 1;
	if (off > SHIELD_PATH_LEN - 1) {
		s->buf[SHIELD_PATH_LEN - 1] = 0;
		return -1;
	}
	s->buf[bound(off)] = 0;
	return off;
}

/* Report an open (and kill per the response when it is a violation). */
static __always_inline void open_event(struct scratch *s, long len, __u32 flags, __u64 oflags,
				       __u32 slot)
{
	struct shield_open_event *e = reserve(sizeof(*e), slot);
	if (!e)
		return;
	fill_hdr(&e->hdr, SHIELD_EV_OPEN, flags, current_ppid(), slot);
	e->path_len = len;
	e->_pad = 0;
	e->flags = oflags;
	bpf_probe_read_kernel(e->path, SHIELD_PATH_LEN, s->buf);
	bpf_ringbuf_submit(e, 0);
}

/*
 * Entry. Recording (not quiet): the path as given is built now, checked
 * against deny_paths and sent. Quiet with deny rules: only the call's
 * arguments are kept for the exit hook, which checks the file actually
 * opened on success and the path as given only on failure (Landlock refuses
 * denied paths, so that is where attempts show). Every violation the entry
 * check would find is still found: a successful open of a denied path as
 * given resolves into a denied tree too (rules are entered both as written
 * and resolved), and a refused one is checked as given. This saves a
 * dentry walk per successful open, the common case.
 */
__noinline int open_enter(int dfd, __u64 upath, __u64 oflags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id, slot = 0;
	if (!slot_of(tgid, &slot))
		return 0;
	struct shield_config *cfg = get_config(slot);
	if (!cfg)
		return 0;
	/* This session records no opens and none can violate: nothing to do. */
	if (cfg->quiet && !cfg->deny_enforce)
		return 0;
	/* Quiet: nothing here; the exit hook reads the call's arguments from
	 * the saved registers (and user space may detach this hook). */
	if (cfg->quiet)
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	long len = given_path(dfd, upath);
	__u32 flags = 0;
	if (len < 0) {
		len = SHIELD_PATH_LEN - 1;
		flags |= SHIELD_F_TRUNCATED;
	}
	if (cfg->deny_enforce) {
		if (path_in(&deny_paths, s, slot)) {
			flags |= SHIELD_F_VIOLATION;
			if (cfg->file_kill) {
				bpf_send_signal(SIGKILL);
				flags |= SHIELD_F_KILLED;
			}
		}
		/* The exit hook checks the resolved file unless this already fired. */
		struct open_pending pend = {
			.flags = oflags, .violation = flags & SHIELD_F_VIOLATION, .slot = slot};
		bpf_map_update_elem(&open_pending, &tid, &pend, BPF_ANY);
	}
	open_event(s, len, flags, oflags, slot);
	return 0;
}

/* Exit: on success, the path of the file actually opened (symlinks and ".."
 * resolved) is checked; a match reported only here gets its own violation
 * record. On failure, a deferred (quiet) call is checked as given. */
__noinline int open_exit(long ret, int dfd, __u64 upath, __u64 oflags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, slot = 0;
	struct open_pending p = {};
	struct open_pending *pend = bpf_map_lookup_elem(&open_pending, &tid);
	if (pend) {
		p = *pend;
		bpf_map_delete_elem(&open_pending, &tid);
		if (p.violation)
			return 0;
	} else {
		/* A quiet session keeps no state between entry and exit (no map
		 * update per open): the arguments are still in the saved
		 * registers. Untracked tasks stop here. */
		if (!slot_of(id >> 32, &slot))
			return 0;
		struct shield_config *qc = get_config(slot);
		if (!qc || !qc->quiet || !qc->deny_enforce)
			return 0;
		p.flags = oflags;
		p.deferred = 1;
		p.upath = upath;
		p.dfd = dfd;
		p.slot = slot;
	}
	/* Resolving the opened file costs a dentry walk: only with rules. */
	struct shield_config *cfg = get_config(p.slot);
	if (!cfg || !cfg->deny_enforce)
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	long len;
	__u32 flags = SHIELD_F_VIOLATION;
	if (ret < 0) {
		if (!p.deferred)
			return 0;
		len = given_path((int)p.dfd, p.upath);
	} else {
		struct file *f = fd_file((int)ret);
		if (!f)
			return 0;
		len = walk_file(f);
	}
	if (len < 0) {
		flags |= SHIELD_F_TRUNCATED;
		len = SHIELD_PATH_LEN - 1;
	}
	if (!path_in(&deny_paths, s, p.slot))
		return 0;
	if (cfg->file_kill) {
		bpf_send_signal(SIGKILL);
		flags |= SHIELD_F_KILLED;
	}
	open_event(s, len, flags, p.flags, p.slot);
	return 0;
}

/*
 * The raw sys_enter/sys_exit tracepoints (tp_btf) rather than the per-syscall
 * ones: those need tracefs mounted, these only BTF. They run for every
 * syscall on the host, so the first thing is a compare on the number.
 */
#if defined(__TARGET_ARCH_x86)
#define NR_open 2
#define NR_creat 85
#define NR_openat 257
#define NR_openat2 437
#define NR_socket 41
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define NR_open -1 /* arm64 has only openat/openat2 */
#define NR_creat -1
#define NR_openat 56
#define NR_openat2 437
#define NR_socket 198
#define SYSCALL_NR(regs) ((regs)->syscallno)
#else
#error "shieldd-ebpf: add the open syscall numbers of this architecture"
#endif

static __always_inline void net_event(__u32 slot, __u32 kind, __u32 flags, __u32 family,
				      __u32 protocol, __u32 type, __u16 port_be, const __u8 *addr);

/*
 * cgroup/sock_create only runs for inet sockets, so a packet socket is
 * caught when socket(2) returns: the process is killed before it gets back
 * to user space and can use it. (Without CAP_NET_RAW the call fails and
 * nothing happens here; seccomp can refuse it earlier.)
 */
static __always_inline int socket_exit(struct pt_regs *regs, long ret)
{
	if (ret < 0 || (int)PT_REGS_PARM1_CORE_SYSCALL(regs) != AF_PACKET)
		return 0;
	__u32 slot = 0;
	if (!slot_of(bpf_get_current_pid_tgid() >> 32, &slot))
		return 0;
	bpf_send_signal(SIGKILL);
	__u8 none[16] = {};
	net_event(slot, SHIELD_EV_SOCKET, SHIELD_F_VIOLATION | SHIELD_F_KILLED, AF_PACKET,
		  (__u32)PT_REGS_PARM3_CORE_SYSCALL(regs), (__u32)PT_REGS_PARM2_CORE_SYSCALL(regs), 0, none);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
	if (id == NR_openat)
		return open_enter((int)PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
				  PT_REGS_PARM3_CORE_SYSCALL(regs));
	if (id == NR_openat2) {
		__u64 flags = 0;
		struct open_how *how = (struct open_how *)PT_REGS_PARM3_CORE_SYSCALL(regs);
		bpf_probe_read_user(&flags, sizeof(flags), &how->flags);
		return open_enter((int)PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
				  flags);
	}
	if (id == NR_open)
		return open_enter(AT_FDCWD, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs));
	if (id == NR_creat)
		return open_enter(AT_FDCWD, PT_REGS_PARM1_CORE_SYSCALL(regs), O_CREAT | O_WRONLY | O_TRUNC);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	/* A direct (BTF) load, not a probe-read helper call: this runs for
	 * every system call on the host while attached. */
	long id = SYSCALL_NR(regs);
	if (id == NR_socket)
		return socket_exit(regs, ret);
	if (id == NR_openat)
		return open_exit(ret, (int)PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
				 PT_REGS_PARM3_CORE_SYSCALL(regs));
	if (id == NR_openat2) {
		__u64 flags = 0;
		struct open_how *how = (struct open_how *)PT_REGS_PARM3_CORE_SYSCALL(regs);
		bpf_probe_read_user(&flags, sizeof(flags), &how->flags);
		return open_exit(ret, (int)PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs), flags);
	}
	if (id == NR_open)
		return open_exit(ret, AT_FDCWD, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs));
	if (id == NR_creat)
		return open_exit(ret, AT_FDCWD, PT_REGS_PARM1_CORE_SYSCALL(regs), O_CREAT | O_WRONLY | O_TRUNC);
	return 0;
}

/* ---- network (cgroup programs: only the agent's cgroup runs them) ---- */

/* Emit a record for a socket address operation. */
static __always_inline void net_event(__u32 slot, __u32 kind, __u32 flags, __u32 family,
				      __u32 protocol, __u32 type, __u16 port_be, const __u8 *addr)
{
	struct shield_config *cfg = get_config(slot);
	if (cfg && cfg->quiet && !(flags & SHIELD_F_VIOLATION))
		return;
	struct shield_net_event *e = reserve(sizeof(*e), slot);
	if (!e)
		return;
	fill_hdr(&e->hdr, kind, flags, 0, slot);
	e->family = family;
	e->protocol = protocol;
	e->sock_type = type;
	e->port = bpf_ntohs(port_be);
	e->_pad = 0;
	__builtin_memcpy(e->addr, addr, 16);
	bpf_ringbuf_submit(e, 0);
}

/* Destination as an IPv6 key: IPv4 is stored as ::ffff:a.b.c.d, so an
 * IPv4-mapped IPv6 destination meets the same rules as plain IPv4. */
static __always_inline void load_addr(struct bpf_sock_addr *ctx, int v6, struct shield_net_key *k)
{
	if (!v6) {
		__u32 ip4 = ctx->user_ip4;
		k->addr[10] = 0xff;
		k->addr[11] = 0xff;
		__builtin_memcpy(&k->addr[12], &ip4, 4);
		return;
	}
	__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2], w3 = ctx->user_ip6[3];
	__builtin_memcpy(&k->addr[0], &w0, 4);
	__builtin_memcpy(&k->addr[4], &w1, 4);
	__builtin_memcpy(&k->addr[8], &w2, 4);
	__builtin_memcpy(&k->addr[12], &w3, 4);
}

/* The session of a task in an attached cgroup. Every such task belongs to
 * one; a task found in none (a slot not set up yet) gets NO_SLOT, which
 * has no rules and no config, so it is refused. */
#define NO_SLOT 0xffffffffu
static __always_inline __u32 net_slot(void)
{
	__u32 slot = NO_SLOT;
	slot_of(bpf_get_current_pid_tgid() >> 32, &slot);
	return slot;
}

/* connect / sendmsg: allowed iff (proto, port, addr) or (proto, any port,
 * addr) is in net_allow and the session is not isolated. 1 = allow,
 * 0 = the syscall fails with EPERM. */
static __always_inline int check_dest(struct bpf_sock_addr *ctx, __u32 kind, int v6)
{
	__u32 slot = net_slot();
	struct shield_net_key k = {};
	k.prefixlen = 64 + 128;
	k.slot = slot;
	k.proto = (__u8)ctx->protocol;
	k.port = (__u16)ctx->user_port;
	load_addr(ctx, v6, &k);
	__u16 port = k.port;

	struct shield_config *cfg = get_config(slot);
	__u32 flags = 0;
	int allowed;
	if (!cfg || cfg->isolated) {
		allowed = 0;
		flags |= SHIELD_F_ISOLATED;
	} else {
		allowed = bpf_map_lookup_elem(&net_allow, &k) != NULL;
		if (!allowed) {
			k.port = 0;
			allowed = bpf_map_lookup_elem(&net_allow, &k) != NULL;
		}
	}
	if (!allowed)
		flags |= SHIELD_F_VIOLATION | SHIELD_F_DENIED;
	net_event(slot, kind, flags, ctx->user_family, ctx->protocol, ctx->type, port, k.addr);
	return allowed;
}

static __always_inline int check_bind(struct bpf_sock_addr *ctx, int v6)
{
	struct shield_net_key k = {};
	load_addr(ctx, v6, &k);
	__u16 port_be = (__u16)ctx->user_port;
	__u16 port = bpf_ntohs(port_be);
	__u32 slot = net_slot();

	struct shield_config *cfg = get_config(slot);
	__u32 flags = 0;
	int allowed = 1;
	if (!cfg || cfg->isolated) {
		allowed = 0;
		flags |= SHIELD_F_ISOLATED;
	} else if (cfg->bind_enforce) {
		struct shield_bind_key bk = {.slot = slot, .port = port};
		allowed = bpf_map_lookup_elem(&bind_ports, &bk) != NULL;
	}
	if (!allowed)
		flags |= SHIELD_F_VIOLATION | SHIELD_F_DENIED;
	net_event(slot, SHIELD_EV_BIND, flags, ctx->user_family, ctx->protocol, ctx->type, port_be, k.addr);
	return allowed;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx) { return check_dest(ctx, SHIELD_EV_CONNECT, 0); }

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx) { return check_dest(ctx, SHIELD_EV_CONNECT, 1); }

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx) { return check_dest(ctx, SHIELD_EV_SENDMSG, 0); }

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx) { return check_dest(ctx, SHIELD_EV_SENDMSG, 1); }

SEC("cgroup/bind4")
int bind4(struct bpf_sock_addr *ctx) { return check_bind(ctx, 0); }

SEC("cgroup/bind6")
int bind6(struct bpf_sock_addr *ctx) { return check_bind(ctx, 1); }

/* Raw and packet sockets can forge or sniff traffic past every rule above. */
SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	__u32 type = sk->type, family = sk->family;
	if (type != SOCK_RAW && family != AF_PACKET)
		return 1;
	__u8 none[16] = {};
	net_event(net_slot(), SHIELD_EV_SOCKET, SHIELD_F_VIOLATION | SHIELD_F_DENIED, family,
		  sk->protocol, type, 0, none);
	return 0;
}
