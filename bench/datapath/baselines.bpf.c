// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Baselines for bench/datapath/per-packet.ts: the smallest useful counter,
// a per-CPU hash map lookup-or-insert and two adds, with a 4-byte key and with
// a key of flowscope's size (struct flow_key, 48 bytes). Same value size as
// struct flow_value.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "flowscope.h"

struct counter {
	__u64 packets, bytes, first, last, flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct counter);
} by_u32 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct counter);
} by_flow_key SEC(".maps");

#define COUNT(map, key)                                                      \
	do {                                                                 \
		struct counter *c = bpf_map_lookup_elem(&map, &key);         \
		if (c) {                                                     \
			c->packets++;                                        \
			c->bytes += ctx->data_end - ctx->data;               \
		} else {                                                     \
			struct counter n = { 1, ctx->data_end - ctx->data }; \
			bpf_map_update_elem(&map, &key, &n, BPF_NOEXIST);    \
		}                                                            \
	} while (0)

SEC("xdp")
int counter_u32_key(struct xdp_md *ctx)
{
	__u32 key = 1;

	COUNT(by_u32, key);
	return XDP_PASS;
}

SEC("xdp")
int counter_flow_key(struct xdp_md *ctx)
{
	struct flow_key key = { .ifindex = 1, .family = 4 };

	COUNT(by_flow_key, key);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
