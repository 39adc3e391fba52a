/* SPDX-License-Identifier: Apache-2.0 */
/* Host program run by build.rs: prints the layout of events.h as Rust
 * constants, which the monitor's tests compare with its #[repr(C)] mirror. */
#include <stddef.h>
#include <stdio.h>
#include "events.h"

#define SIZE(t) printf("pub const SIZE_%s: usize = %zu;\n", #t, sizeof(struct t))
#define OFF(t, f) printf("pub const OFF_%s_%s: usize = %zu;\n", #t, #f, offsetof(struct t, f))

int main(void)
{
	printf("pub const MAX_SLOTS: u32 = %d;\n", SHIELD_MAX_SLOTS);
	printf("pub const LOST_UNKNOWN: u32 = %d;\n", SHIELD_LOST_UNKNOWN);
	SIZE(shield_hdr);
	OFF(shield_hdr, kind);
	OFF(shield_hdr, flags);
	OFF(shield_hdr, pid);
	OFF(shield_hdr, tid);
	OFF(shield_hdr, ppid);
	OFF(shield_hdr, uid);
	OFF(shield_hdr, slot);
	OFF(shield_hdr, cgroup_id);
	OFF(shield_hdr, ts_ns);
	OFF(shield_hdr, comm);

	SIZE(shield_exec_event);
	OFF(shield_exec_event, filename_len);
	OFF(shield_exec_event, path_len);
	OFF(shield_exec_event, args_len);
	OFF(shield_exec_event, filename);
	OFF(shield_exec_event, path);
	OFF(shield_exec_event, args);

	SIZE(shield_open_event);
	OFF(shield_open_event, path_len);
	OFF(shield_open_event, flags);
	OFF(shield_open_event, path);

	SIZE(shield_net_event);
	OFF(shield_net_event, family);
	OFF(shield_net_event, protocol);
	OFF(shield_net_event, sock_type);
	OFF(shield_net_event, port);
	OFF(shield_net_event, addr);

	SIZE(shield_fork_event);
	OFF(shield_fork_event, child_pid);

	SIZE(shield_exit_event);
	OFF(shield_exit_event, exit_code);

	SIZE(shield_path_key);
	OFF(shield_path_key, slot);
	OFF(shield_path_key, path);

	SIZE(shield_net_key);
	OFF(shield_net_key, slot);
	OFF(shield_net_key, proto);
	OFF(shield_net_key, port);
	OFF(shield_net_key, addr);

	SIZE(shield_bind_key);
	OFF(shield_bind_key, slot);
	OFF(shield_bind_key, port);

	SIZE(shield_config);
	OFF(shield_config, isolated);
	OFF(shield_config, exec_enforce);
	OFF(shield_config, exec_kill);
	OFF(shield_config, file_kill);
	OFF(shield_config, bind_enforce);
	OFF(shield_config, deny_enforce);
	OFF(shield_config, quiet);
	return 0;
}
