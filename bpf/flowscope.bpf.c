// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * flowscope.bpf.c: counts every frame that crosses a TC or XDP hook, per flow
 * (interface, direction, 5-tuple) and per interface.
 *
 * Entry points: flowscope_tc_ingress, flowscope_tc_egress (TCX or clsact) and
 * flowscope_xdp_ingress. They share one parser (parse_frame) and one counting
 * function (count_frame). They never drop or modify traffic: TC programs
 * return TC_ACT_UNSPEC (TCX_NEXT), XDP returns XDP_PASS. The only change they
 * may make to a packet is bpf_skb_pull_data() when a TC frame's headers are
 * not in the linear area, which moves bytes without changing them.
 *
 * Packets are parsed from uapi structures only. Attribution (the cgroup of a
 * flow's local socket, taken once per flow entry) reads three kernel fields
 * through CO-RE relocations against the running kernel's BTF (struct sock ->
 * cgroup -> kernfs id); everything else needs no BTF. Kernel >= 5.15.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
#include "flowscope.h"

#define EEXIST 17

/*
 * The kernel structures attribution reads, as far as it reads them: CO-RE
 * finds the real offsets in the running kernel's BTF at load.
 */
struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));
struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));
struct sock_cgroup_data {
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));
struct sock {
	struct sock_cgroup_data sk_cgrp_data;
} __attribute__((preserve_access_index));
struct tcp_sock;
struct udp6_sock;

/* Casts a socket from a lookup to the kernel's struct sock (kernel >= 6.2);
 * weak: on older kernels it is NULL and TCP and IPv6 UDP sockets go through
 * bpf_skc_to_tcp_sock / bpf_skc_to_udp6_sock instead (IPv4 UDP sockets are
 * then not attributed). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* IPv6 extension headers the parser steps over before it gives up
 * (FAIL_IPV6_EXT_LIMIT). Eight covers every chain RFC 8200 recommends. */
#define IPV6_EXT_MAX 8
/* How many bytes a TC program pulls into the linear area when the headers it
 * needs are in paged fragments. */
#define TC_PULL_LEN 128

#define AF_INET 2
#define AF_INET6 10

#ifndef IPPROTO_MH
#define IPPROTO_MH 135
#endif

/* Knob (set between open and load): for the benchmark only. When non-zero the
 * ports of every frame are replaced by a rolling counter modulo this value
 * (low 16 bits in sport, the rest in dport), so one BPF_PROG_TEST_RUN walks
 * that many distinct flows. 0 in production, where the verifier removes the
 * code. */
const volatile __u32 bench_flow_spread = 0;

/* Knob (set between open and load): attribute flows to the cgroup of their
 * local socket (--attribution). Off, the verifier removes the code. */
const volatile __u8 attribution = 1;

/* Generation the programs count into (0 or 1). Written by user space through
 * the mmap of .bss; read once per frame. See native/drain.cc. */
__u32 active_gen = 0;
/* Rolling counter behind bench_flow_spread. */
__u32 bench_seq = 0;

/*
 * The agent's own bookkeeping, kept here because .bss is pinned with the maps
 * (native/pins.cc): what one agent writes, the next one that adopts the
 * pinned state reads. The programs never touch these.
 */
/* The agent that owns the pinned state: pid, start (CLOCK_REALTIME ns) and
 * its API URL, for the one-line refusal of a second agent. */
__u32 owner_pid = 0;
__u64 owner_started_ns = 0;
char owner_api[64] = {};
/* End of the last drain (CLOCK_REALTIME and CLOCK_MONOTONIC ns): the start of
 * the interval the next drain covers, also across agents. */
__u64 drained_until_realtime_ns = 0;
__u64 drained_until_mono_ns = 0;
/* Drains completed, and the last drain whose records every sink accepted:
 * when an agent dies between the two, the next one reports the difference. */
__u64 drain_seq = 0;
__u64 exported_seq = 0;

/*
 * flows_gen0, flows_gen1: the flow maps of generation 0 and 1.
 * Key: struct flow_key. Value: struct flow_value, one per CPU.
 * max_entries is set by the loader before load (--flow-map-size).
 * Preallocated, so an insert into a full map fails at once (-E2BIG) and the
 * frame goes to iface_value.overflow_*.
 */
struct flow_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows_gen0 SEC(".maps"), flows_gen1 SEC(".maps");

/*
 * flow_gens: generation -> flow map.
 * Key: __u32 generation. Value: the flow map of that generation.
 * Never changes content; user space rewrites a slot with the same map only
 * for the side effect that matters: the kernel waits for every running
 * program (synchronize_rcu) before the update returns.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, FLOW_GENERATIONS);
	__type(key, __u32);
	__array(values, struct flow_map);
} flow_gens SEC(".maps") = {
	.values = { &flows_gen0, &flows_gen1 },
};

/*
 * iface_stats: the frames of an interface that are in no flow (non-IP, or
 * overflow). Off the hot path: a frame in a flow never touches it.
 * Key: struct iface_key (ifindex, direction, generation).
 * Value: struct iface_value, one per CPU.
 * The loader creates the entries of every attached interface up front; the
 * program inserts one itself only for an interface it meets first.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct iface_key);
	__type(value, struct iface_value);
} iface_stats SEC(".maps");

/*
 * local_addrs: the addresses of the interfaces of the agent's network
 * namespace, kept by user space (native/datapath.cc, setLocalAddresses).
 * Key: struct local_addr. Value: __u8, unused (presence is what counts).
 * Read only when a new ingress flow finds a socket bound to the wildcard
 * address: such a socket would also match traffic the host forwards to its
 * port, and that traffic has no local socket.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct local_addr);
	__type(value, __u8);
} local_addrs SEC(".maps");

/*
 * failures: datapath events by kind.
 * Key: __u32 enum failure_kind. Value: __u64 count, one per CPU, cumulative.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FAIL_KIND_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} failures SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct ipv6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* What parse_frame found. */
struct parse_result {
	__u16 tcp_flags;
	__u8 is_flow;   /* key is complete: count as a flow; else count in other_* */
	__u8 failure;   /* enum failure_kind, or FAIL_KIND_COUNT for none */
};

static __always_inline void record_failure(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&failures, &kind);

	if (n)
		*n += 1;
}

static __always_inline int is_truncation(__u8 failure)
{
	return failure == FAIL_TRUNCATED_L2 || failure == FAIL_TRUNCATED_L3 ||
	       failure == FAIL_TRUNCATED_L4;
}

/* Ports (TCP, UDP, UDP-Lite, SCTP), TCP flags and ICMP type/code.
 * A transport header cut short leaves the ports at 0. */
static __always_inline void parse_l4(void *l4, void *data_end, struct flow_key *key,
				     struct parse_result *res)
{
	__u8 *p = l4;

	switch (key->proto) {
	case IPPROTO_TCP:
		/* ports (0-3) and the flag bytes (12-13) */
		if ((void *)(p + 14) > data_end) {
			res->failure = FAIL_TRUNCATED_L4;
			return;
		}
		key->sport = ((__u16)p[0] << 8) | p[1];
		key->dport = ((__u16)p[2] << 8) | p[3];
		res->tcp_flags = p[13] | ((__u16)(p[12] & 1) << 8);
		return;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
		if ((void *)(p + 4) > data_end) {
			res->failure = FAIL_TRUNCATED_L4;
			return;
		}
		key->sport = ((__u16)p[0] << 8) | p[1];
		key->dport = ((__u16)p[2] << 8) | p[3];
		return;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* ICMP in IPv6 or ICMPv6 in IPv4 is not ICMP: keep ports and type 0 */
		if ((key->proto == IPPROTO_ICMP) != (key->family == 4))
			return;
		if ((void *)(p + 2) > data_end) {
			res->failure = FAIL_TRUNCATED_L4;
			return;
		}
		key->icmp_type = p[0];
		key->icmp_code = p[1];
		return;
	}
}

static __always_inline void parse_ipv4(void *l3, void *data_end, struct flow_key *key,
				       struct parse_result *res)
{
	struct iphdr *ip = l3;
	__u32 hdr_len;

	if ((void *)(ip + 1) > data_end) {
		res->failure = FAIL_TRUNCATED_L3;
		return;
	}
	hdr_len = ip->ihl * 4;
	if (hdr_len < sizeof(*ip)) {
		res->failure = FAIL_TRUNCATED_L3;
		return;
	}
	key->family = 4;
	__builtin_memcpy(key->src, &ip->saddr, 4);
	__builtin_memcpy(key->dst, &ip->daddr, 4);
	key->proto = ip->protocol;
	res->is_flow = 1;

	if (ip->frag_off & bpf_htons(0x1fff)) {
		res->failure = FAIL_FRAGMENT;
		return;
	}
	/* options cut short: the addresses are known, the transport header is not */
	if (l3 + hdr_len > data_end) {
		res->failure = FAIL_TRUNCATED_L3;
		return;
	}
	parse_l4(l3 + hdr_len, data_end, key, res);
}

static __always_inline void parse_ipv6(void *l3, void *data_end, struct flow_key *key,
				       struct parse_result *res)
{
	struct ipv6hdr *ip6 = l3;
	void *hdr = ip6 + 1;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6 + 1) > data_end) {
		res->failure = FAIL_TRUNCATED_L3;
		return;
	}
	key->family = 6;
	__builtin_memcpy(key->src, &ip6->saddr, 16);
	__builtin_memcpy(key->dst, &ip6->daddr, 16);
	res->is_flow = 1;
	nexthdr = ip6->nexthdr;

#pragma unroll
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		struct ipv6_ext_hdr *ext = hdr;
		struct ipv6_frag_hdr *frag = hdr;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_MH:
			if ((void *)(ext + 1) > data_end)
				goto truncated;
			nexthdr = ext->nexthdr;
			hdr += (ext->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(ext + 1) > data_end)
				goto truncated;
			nexthdr = ext->nexthdr;
			hdr += (ext->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if ((void *)(frag + 1) > data_end)
				goto truncated;
			nexthdr = frag->nexthdr;
			if (frag->frag_off & bpf_htons(0xfff8)) {
				key->proto = nexthdr;
				res->failure = FAIL_FRAGMENT;
				return;
			}
			hdr += sizeof(*frag);
			break;
		default:
			key->proto = nexthdr;
			parse_l4(hdr, data_end, key, res);
			return;
		}
	}
	key->proto = nexthdr;
	res->failure = FAIL_IPV6_EXT_LIMIT;
	return;
truncated:
	key->proto = nexthdr;
	res->failure = FAIL_TRUNCATED_L4;
}

/* Fills key (which the caller zeroed) from an Ethernet frame. */
static __always_inline void parse_frame(void *data, void *data_end, struct flow_key *key,
					struct parse_result *res)
{
	struct ethhdr *eth = data;
	void *cur = eth + 1;
	__be16 proto;
	int i;

	res->tcp_flags = 0;
	res->is_flow = 0;
	res->failure = FAIL_KIND_COUNT;
	if (cur > data_end) {
		res->failure = FAIL_TRUNCATED_L2;
		return;
	}
	proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < 2; i++) {
		struct vlan_hdr *vlan = cur;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > data_end) {
			res->failure = FAIL_TRUNCATED_L2;
			return;
		}
		proto = vlan->encapsulated_proto;
		cur = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_IP))
		parse_ipv4(cur, data_end, key, res);
	else if (proto == bpf_htons(ETH_P_IPV6))
		parse_ipv6(cur, data_end, key, res);
	else if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		res->failure = FAIL_VLAN_LIMIT;
}

static __always_inline struct iface_value *iface_counters(__u32 ifindex, __u8 direction, __u32 gen)
{
	struct iface_key ik = { .ifindex = ifindex, .direction = direction, .gen = gen };
	struct iface_value *iv = bpf_map_lookup_elem(&iface_stats, &ik);

	if (iv)
		return iv;
	{
		struct iface_value zero = {};

		/* -EEXIST: another CPU created it meanwhile, fine */
		bpf_map_update_elem(&iface_stats, &ik, &zero, BPF_NOEXIST);
	}
	return bpf_map_lookup_elem(&iface_stats, &ik);
}

/* A frame that gets no flow entry: counted per interface in other_* or overflow_*. */
static __always_inline void count_unflowed(__u32 ifindex, __u8 direction, __u32 gen, __u64 len, int overflow)
{
	struct iface_value *iv = iface_counters(ifindex, direction, gen);

	if (!iv) {
		record_failure(FAIL_IFACE_MAP_FULL);
		return;
	}
	if (overflow) {
		iv->overflow_packets += 1;
		iv->overflow_bytes += len;
	} else {
		iv->other_packets += 1;
		iv->other_bytes += len;
	}
}

static __always_inline void add_to_flow(struct flow_value *fv, __u64 len, __u64 now, __u16 tcp_flags)
{
	fv->packets += 1;
	fv->bytes += len;
	if (!fv->first_seen_ns)
		fv->first_seen_ns = now;
	fv->last_seen_ns = now;
	fv->tcp_flags |= tcp_flags;
}

/* Where a frame was seen: which socket, if any, a new flow entry belongs to. */
enum hook_kind {
	HOOK_TC_INGRESS,
	HOOK_TC_EGRESS,
	HOOK_XDP,
};

static __always_inline __u64 sock_cgroup_id(struct bpf_sock *bsk)
{
	struct sock *sk = 0;
	struct cgroup *cg;

	if (bpf_rdonly_cast)
		sk = bpf_rdonly_cast(bsk, bpf_core_type_id_kernel(struct sock));
	else if (bsk->protocol == IPPROTO_TCP)
		sk = (struct sock *)bpf_skc_to_tcp_sock(bsk);
	else
		sk = (struct sock *)bpf_skc_to_udp6_sock(bsk);
	if (!sk)
		return 0;
	cg = sk->sk_cgrp_data.cgroup;
	if (!cg)
		return 0;
	return cg->kn->id;
}

/* Whether a socket found for an ingress frame really is the frame's
 * destination: bound to an address (the lookup then matched it), or bound to
 * the wildcard and the frame is addressed to one of the host's addresses. */
static __always_inline int delivers_locally(struct bpf_sock *sk, struct flow_key *key)
{
	struct local_addr la = { .family = key->family };

	if (sk->src_ip4 || sk->src_ip6[0] || sk->src_ip6[1] || sk->src_ip6[2] || sk->src_ip6[3])
		return 1;
	__builtin_memcpy(la.addr, key->dst, 16);
	return bpf_map_lookup_elem(&local_addrs, &la) != 0;
}

/*
 * The cgroup v2 id of the local socket a new flow entry belongs to, or 0.
 * Egress: the skb's own socket (0 for forwarded traffic, which has none).
 * Ingress: the socket the stack will deliver to, found by lookup; a socket
 * bound to the wildcard counts only for a destination that is one of the
 * host's addresses, so that forwarded traffic to its port is not claimed.
 * Runs once per flow entry and generation, never per packet.
 */
static __always_inline __u64 flow_cgroup(void *ctx, enum hook_kind hook, struct flow_key *key)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	__u32 tuple_len;
	__u64 id = 0;

	if (hook == HOOK_TC_EGRESS)
		return bpf_skb_cgroup_id(ctx);
	if (key->proto != IPPROTO_TCP && key->proto != IPPROTO_UDP)
		return 0;
	if (key->family == 4) {
		__builtin_memcpy(&tuple.ipv4.saddr, key->src, 4);
		__builtin_memcpy(&tuple.ipv4.daddr, key->dst, 4);
		tuple.ipv4.sport = bpf_htons(key->sport);
		tuple.ipv4.dport = bpf_htons(key->dport);
		tuple_len = sizeof(tuple.ipv4);
	} else {
		__builtin_memcpy(tuple.ipv6.saddr, key->src, 16);
		__builtin_memcpy(tuple.ipv6.daddr, key->dst, 16);
		tuple.ipv6.sport = bpf_htons(key->sport);
		tuple.ipv6.dport = bpf_htons(key->dport);
		tuple_len = sizeof(tuple.ipv6);
	}
	if (key->proto == IPPROTO_TCP)
		sk = bpf_sk_lookup_tcp(ctx, &tuple, tuple_len, BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_sk_lookup_udp(ctx, &tuple, tuple_len, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	if (delivers_locally(sk, key))
		id = sock_cgroup_id(sk);
	bpf_sk_release(sk);
	return id;
}

/*
 * Counts one frame whose parse is done, in exactly one place: its flow entry,
 * or the interface's other_* (not a flow) or overflow_* (flow map full).
 * The hot path is one flow map update. The time comes from the coarse clock
 * (tick resolution, 1-4 ms): bpf_ktime_get_ns() alone would cost more than
 * all the rest of the program.
 */
static __always_inline void count_frame(void *ctx, enum hook_kind hook, __u32 ifindex, __u8 direction, __u64 len,
					struct flow_key *key, struct parse_result *res)
{
	__u32 gen = *(volatile __u32 *)&active_gen & 1;
	struct flow_value *fv;
	void *flows;
	__u64 now;

	if (res->failure != FAIL_KIND_COUNT)
		record_failure(res->failure);
	if (!res->is_flow) {
		count_unflowed(ifindex, direction, gen, len, 0);
		return;
	}

	key->ifindex = ifindex;
	key->direction = direction;
	if (bench_flow_spread) {
		__u32 seq = bench_seq++ % bench_flow_spread;

		key->sport = seq;
		key->dport = seq >> 16;
	}

	flows = bpf_map_lookup_elem(&flow_gens, &gen);
	if (!flows)
		goto overflow; /* cannot happen: both slots are set at load */
	now = bpf_ktime_get_coarse_ns();
	fv = bpf_map_lookup_elem(flows, key);
	if (fv) {
		add_to_flow(fv, len, now, res->tcp_flags);
		return;
	}
	{
		struct flow_value nv = {
			.packets = 1,
			.bytes = len,
			.first_seen_ns = now,
			.last_seen_ns = now,
			.tcp_flags = res->tcp_flags,
		};
		long err;

		if (attribution)
			nv.cgroup_id = flow_cgroup(ctx, hook, key);
		err = bpf_map_update_elem(flows, key, &nv, BPF_NOEXIST);

		if (!err)
			return;
		if (err == -EEXIST) {
			/* another CPU inserted it first; our CPU's slot starts at zero */
			fv = bpf_map_lookup_elem(flows, key);
			if (fv) {
				add_to_flow(fv, len, now, res->tcp_flags);
				return;
			}
		}
	}
overflow:
	record_failure(FAIL_FLOW_MAP_FULL);
	count_unflowed(ifindex, direction, gen, len, 1);
}

static __always_inline void count_skb(struct __sk_buff *skb, enum hook_kind hook, __u8 direction)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct flow_key key = {};
	struct parse_result res;

	parse_frame(data, data_end, &key, &res);
	/* Headers in paged fragments: pull them into the linear area and parse
	 * again. Only truncated-looking frames pay for this. */
	if (is_truncation(res.failure) && skb->len > (__u32)(data_end - data)) {
		__u32 want = skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN;

		if (bpf_skb_pull_data(skb, want) == 0) {
			data = (void *)(long)skb->data;
			data_end = (void *)(long)skb->data_end;
			__builtin_memset(&key, 0, sizeof(key));
			parse_frame(data, data_end, &key, &res);
		} else {
			record_failure(FAIL_PULL_FAILED);
		}
	}
	count_frame(skb, hook, skb->ifindex, direction, skb->len, &key, &res);
}

SEC("tc")
int flowscope_tc_ingress(struct __sk_buff *skb)
{
	count_skb(skb, HOOK_TC_INGRESS, FLOW_DIR_INGRESS);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int flowscope_tc_egress(struct __sk_buff *skb)
{
	count_skb(skb, HOOK_TC_EGRESS, FLOW_DIR_EGRESS);
	return TC_ACT_UNSPEC;
}

SEC("xdp")
int flowscope_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct flow_key key = {};
	struct parse_result res;

	parse_frame(data, data_end, &key, &res);
	count_frame(ctx, HOOK_XDP, ctx->ingress_ifindex, FLOW_DIR_INGRESS, data_end - data, &key, &res);
	return XDP_PASS;
}

/* Baselines for bench/: the cheapest program of each type, loaded from the
 * same object so the benchmark compares like with like. */
SEC("tc")
int flowscope_bench_empty_tc(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

SEC("xdp")
int flowscope_bench_empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
