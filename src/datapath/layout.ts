/**
 * Byte layout of what the addon hands over (struct flow_key, struct
 * flow_value and struct iface_record in bpf/flowscope.h). test/datapath/layout.test.ts locks
 * these numbers against the compiled C structs.
 */
export const FLOW_KEY = {
  size: 48, ifindex: 0, sport: 4, dport: 6, src: 8, dst: 24,
  family: 40, direction: 41, proto: 42, icmp_type: 43, icmp_code: 44, pad: 45,
} as const;

export const FLOW_VALUE = {
  size: 48, packets: 0, bytes: 8, first_seen_ns: 16, last_seen_ns: 24, tcp_flags: 32, pad: 34, cgroup_id: 40,
} as const;

export const IFACE_KEY = { size: 8, ifindex: 0, direction: 4, gen: 5, pad: 6 } as const;

/** struct iface_value: the BPF map's value (frames in no flow); not decoded, locked for completeness */
export const IFACE_VALUE = { size: 32, other_packets: 0, other_bytes: 8, overflow_packets: 16, overflow_bytes: 24 } as const;

export const IFACE_TOTALS = {
  size: 48, packets: 0, bytes: 8, other_packets: 16, other_bytes: 24, overflow_packets: 32, overflow_bytes: 40,
} as const;

export const IFACE_RECORD = { size: 56, key: 0, totals: 8 } as const;

/** Bytes of a flow key that identify the flow (through icmp_code). */
export const FLOW_IDENTITY_BYTES = FLOW_KEY.icmp_code + 1;

/* enum tcp_flag: the bits' names are flow/protocols.ts's TCP_FLAG_NAMES. */
