/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * flowscope.h: the structures shared by the BPF programs (flowscope.bpf.c),
 * the native addon (native/) and, through the layout test, the TypeScript
 * decoder (src/datapath/layout.ts). Change a field here and the layout test
 * fails until the decoder follows.
 *
 * Every struct is padded explicitly: hash-map keys are compared byte by byte,
 * so no byte of a key may be left to the compiler.
 */
#ifndef FLOWSCOPE_H
#define FLOWSCOPE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Direction of a packet relative to the interface that saw it. */
enum flow_direction {
	FLOW_DIR_INGRESS = 0, /* received by the interface */
	FLOW_DIR_EGRESS = 1,  /* sent by the interface */
};

/* How many generations of counting maps exist; see "Lossless drain" in
 * native/drain.cc. The programs write to generation `active_gen`, user space
 * drains the other one. */
#define FLOW_GENERATIONS 2

/*
 * Key of the flow maps (flows_gen0, flows_gen1).
 * One entry per interface, direction and 5-tuple, as the contract defines a
 * flow. IPv4 addresses are stored in the first 4 bytes of src/dst, the other
 * 12 bytes are zero.
 */
struct flow_key {
	__u32 ifindex;    /* interface that saw the packet */
	__u16 sport;      /* source port, host byte order; 0 for ICMP, non-first fragments and protocols without ports */
	__u16 dport;      /* destination port, host byte order; same rules as sport */
	__u8 src[16];     /* source address, network byte order */
	__u8 dst[16];     /* destination address, network byte order */
	__u8 family;      /* 4 or 6 */
	__u8 direction;   /* enum flow_direction */
	__u8 proto;       /* IP protocol (after IPv6 extension headers) */
	__u8 icmp_type;   /* ICMP/ICMPv6 type, else 0 */
	__u8 icmp_code;   /* ICMP/ICMPv6 code, else 0 */
	__u8 pad[3];      /* always zero */
};

/*
 * Value of the flow maps: one per CPU (BPF_MAP_TYPE_PERCPU_HASH), so the hot
 * path never contends on a cache line; user space sums the CPUs' values.
 * It only ever grows at its end: an upgraded agent drains the flow maps an
 * earlier version left pinned by reading their shorter values as a prefix of
 * this one, the newer fields as zero (native/previous_maps.h).
 */
struct flow_value {
	__u64 packets;        /* frames counted */
	__u64 bytes;          /* sum of the L2 frame lengths (skb->len at TC, data_end - data at XDP) */
	__u64 first_seen_ns;  /* CLOCK_MONOTONIC, tick resolution, of the first frame on this CPU in this generation */
	__u64 last_seen_ns;   /* CLOCK_MONOTONIC, tick resolution, of the last frame on this CPU in this generation */
	__u16 tcp_flags;      /* union of enum tcp_flag bits seen */
	__u16 pad[3];         /* always zero */
	__u64 cgroup_id;      /* cgroup v2 id of the local socket the flow belongs to, taken when the entry is
	                         created (egress: the skb's socket; ingress: a socket lookup); 0: none found
	                         (forwarded traffic, no socket, attribution off) */
};

/* TCP flag bits in flow_value.tcp_flags: the 8 flag bits of the TCP header
 * (FIN..CWR) in their wire order, and NS (the low bit of the data-offset byte). */
enum tcp_flag {
	TCP_FLAG_FIN = 1 << 0,
	TCP_FLAG_SYN = 1 << 1,
	TCP_FLAG_RST = 1 << 2,
	TCP_FLAG_PSH = 1 << 3,
	TCP_FLAG_ACK = 1 << 4,
	TCP_FLAG_URG = 1 << 5,
	TCP_FLAG_ECE = 1 << 6,
	TCP_FLAG_CWR = 1 << 7,
	TCP_FLAG_NS = 1 << 8,
};

/*
 * Key of local_addrs: one address of an interface of the agent's network
 * namespace. IPv4 in the first 4 bytes of addr, the rest zero.
 */
struct local_addr {
	__u8 addr[16];   /* network byte order */
	__u8 family;     /* 4 or 6 */
	__u8 pad[3];     /* always zero */
};

/*
 * Key of iface_stats: one entry per interface, direction and generation.
 */
struct iface_key {
	__u32 ifindex;   /* interface that saw the packet */
	__u8 direction;  /* enum flow_direction */
	__u8 gen;        /* generation the counts belong to (0 or 1) */
	__u8 pad[2];     /* always zero */
};

/*
 * Value of iface_stats (per CPU): the frames of an interface that are in no
 * flow. A frame that is in a flow is counted in its flow entry only, so the
 * hot path makes one map update; the interface's totals are the sum of its
 * flows plus these (struct iface_totals, computed by the addon per drain).
 */
struct iface_value {
	__u64 other_packets;     /* frames that are not a flow: non-IP, or IP too short to carry addresses */
	__u64 other_bytes;
	__u64 overflow_packets;  /* IP frames that found the flow map full */
	__u64 overflow_bytes;
};

/*
 * Everything one interface and direction saw in one generation. Every frame
 * that crosses a hook is in exactly one of: a flow, other_*, overflow_*. So
 *   packets == sum(flow packets) + other_packets + overflow_packets
 * and the same for bytes.
 */
struct iface_totals {
	__u64 packets;           /* all frames */
	__u64 bytes;             /* all bytes (L2 frame length, as for flows) */
	__u64 other_packets;
	__u64 other_bytes;
	__u64 overflow_packets;
	__u64 overflow_bytes;
};

/*
 * Index of the failures array (BPF_MAP_TYPE_PERCPU_ARRAY). Cumulative since
 * load, never reset; exported as flowscope_datapath_events_total{event=...}.
 * Keep FAILURE_NAMES in src/datapath/layout.ts in the same order.
 */
enum failure_kind {
	FAIL_FLOW_MAP_FULL = 0,      /* flow update failed: map full (frame counted in overflow_*) */
	FAIL_IFACE_MAP_FULL = 1,     /* iface_stats full: a non-flow or overflow frame is not counted at all */
	FAIL_TRUNCATED_L2 = 2,       /* shorter than its Ethernet/VLAN headers (counted in other_*) */
	FAIL_TRUNCATED_L3 = 3,       /* IP header cut short or IHL < 5 (other_*), or IPv4 options cut short (flow, ports 0) */
	FAIL_TRUNCATED_L4 = 4,       /* transport header cut short (flow with ports 0) */
	FAIL_IPV6_EXT_LIMIT = 5,     /* more IPv6 extension headers than the parser walks (flow with ports 0) */
	FAIL_FRAGMENT = 6,           /* non-first IP fragment (flow with ports 0): informational */
	FAIL_VLAN_LIMIT = 7,         /* more than two VLAN tags (counted in other_*) */
	FAIL_PULL_FAILED = 8,        /* TC: headers not linear and bpf_skb_pull_data failed */
	FAIL_KIND_COUNT = 9,
};

/*
 * The addon hands a drain's flows to TypeScript as two arrays in one buffer:
 * capacity struct flow_key, then capacity struct flow_value summed over CPUs
 * (packets, bytes summed; first_seen min; last_seen max; tcp_flags OR-ed;
 * cgroup_id: the one CPU that created the entry set it).
 * Decoded by src/datapath/flow-batch.ts.
 */

/* The record the addon hands to TypeScript for one interface and direction. */
struct iface_record {
	struct iface_key key;        /* 8 bytes: totals start 8-byte aligned */
	struct iface_totals totals;
};

#endif /* FLOWSCOPE_H */
