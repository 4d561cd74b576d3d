/**
 * The interface between the kernel datapath (src/datapath/, native/, bpf/) and
 * the flow service. The service only sees these types, so it can be driven by
 * the real kernel source or by a synthetic one of the same shape in tests.
 */

export type Direction = 'ingress' | 'egress';
export type HookMode = 'tc' | 'xdp';

/** Names of the datapath failure counters, in the order of enum failure_kind in bpf/flowscope.h. */
export const FAILURE_NAMES = [
  'flow_map_full',
  'iface_map_full',
  'truncated_l2',
  'truncated_l3',
  'truncated_l4',
  'ipv6_ext_limit',
  'fragment',
  'vlan_limit',
  'pull_failed',
] as const;
export type FailureName = (typeof FAILURE_NAMES)[number];

/**
 * Flows drained in one poll, as a struct-of-arrays view over the addon's
 * buffer: no object per flow until the caller asks for one. Index i runs from
 * 0 to count - 1. Counts are deltas: what the kernel counted for the flow
 * since the previous drain.
 *
 * A batch is a view into a buffer the source reuses: it is valid until the
 * second drain() after the one that returned it. Copy what must live longer.
 */
export interface FlowBatch {
  readonly count: number;
  ifindex(i: number): number;
  direction(i: number): Direction;
  family(i: number): 4 | 6;
  /** IP protocol number */
  proto(i: number): number;
  sport(i: number): number;
  dport(i: number): number;
  icmpType(i: number): number;
  icmpCode(i: number): number;
  packets(i: number): number;
  bytes(i: number): number;
  /** union of TCP flag bits (FIN=1 … CWR=128, NS=256) */
  tcpFlags(i: number): number;
  /**
   * cgroup v2 id (the cgroup directory's inode number) of the local socket the
   * flow belongs to, taken when the kernel created the flow's entry; 0 when
   * there is none (forwarded traffic) or attribution is off. Sources without
   * sockets (the synthetic one) may leave it out.
   */
  cgroupId?(i: number): number;
  /** wall-clock time (ms since the epoch) of the first / last frame in this delta */
  firstSeenMs(i: number): number;
  lastSeenMs(i: number): number;
  /** source / destination address in canonical text (RFC 5952 for IPv6) */
  src(i: number): string;
  dst(i: number): string;
  /**
   * A string that identifies the flow (ifindex, direction, 5-tuple, ICMP
   * type/code) and is equal for equal flows across batches: use it as a map key.
   */
  key(i: number): string;
  /**
   * The same identity as KEY_WORDS 32-bit words per flow, flow i at
   * [i * KEY_WORDS, (i + 1) * KEY_WORDS): equal words, equal flow. For hash
   * tables that should not build a string per flow. A view, not a copy: valid
   * as long as the batch is.
   */
  readonly keyWords: Uint32Array;
}

/** 32-bit words per flow in FlowBatch.keyWords (struct flow_key is 48 bytes, its padding always zero). */
export const KEY_WORDS = 12;

/** What the kernel counted for one interface and direction since the previous drain. */
export interface InterfaceDelta {
  ifindex: number;
  direction: Direction;
  /** every frame that crossed the hook */
  packets: number;
  bytes: number;
  /** frames that are not flows: non-IP, or IP too short to carry addresses */
  otherPackets: number;
  otherBytes: number;
  /** IP frames that found the flow map full: counted here, not in any flow */
  overflowPackets: number;
  overflowBytes: number;
}

export interface DrainResult {
  flows: FlowBatch;
  /**
   * One entry per interface and direction that saw frames since the previous
   * drain. Invariant, exact for every drain: packets == sum of flow packets of
   * that interface and direction + otherPackets + overflowPackets (same for bytes).
   */
  interfaces: InterfaceDelta[];
  /** cumulative datapath event counters since load, by name */
  failures: Record<FailureName, number>;
  /** wall-clock time (ms since the epoch) at which the drained generation was closed */
  closedAtMs: number;
  /** how long the drain took, in ns: flip + wait for running programs + map walk */
  durationNs: number;
  /** drains completed on these counters, across agents that adopted them; pass to markExported() */
  seq?: number;
  /**
   * Set when a step of the drain after the flip failed: what was read out is
   * in this result; what was not stays in the kernel and comes with a later drain.
   */
  partialError?: string;
}

export interface Attachment {
  ifindex: number;
  iface: string;
  mode: HookMode;
  /** how the tc hooks are attached: TCX links (kernel >= 6.6) or clsact filters */
  tcMechanism: 'tcx' | 'clsact';
  /** taken over from a previous agent's pinned state rather than attached by this process */
  adopted?: boolean;
}

export interface FlowSourceStats {
  /** max entries of each flow map (one generation) */
  flowMapCapacity: number;
  /** flows in the last drained generation */
  lastDrainFlows: number;
  /** drains that returned only part of the counters because a step failed (the rest came later) */
  partialDrains?: number;
  /** pinned state: where, and what a start found there */
  pinned?: PinnedStateReport;
}

export interface PinnedStateReport {
  dir: string;
  /** a previous agent's counters and attachments were taken over at start */
  adopted: boolean;
  /** interfaces taken over, by name */
  adoptedInterfaces: string[];
  /** wall-clock ms where the first interval after the takeover starts (the previous agent's last drain) */
  resumedFromMs?: number;
  /**
   * Drains the previous agent read out of the kernel but never saw every sink
   * accept (it was killed in between): their records may be missing downstream.
   */
  unconfirmedDrains: number;
  /** what could not be taken over, one line each */
  problems: string[];
  /**
   * Flow maps an earlier version left pinned with a shorter value layout (an
   * upgrade that changed it): set aside at start and drained with this
   * agent's records until empty, then removed.
   */
  previousLayout?: PreviousLayoutReport;
}

export interface PreviousLayoutReport {
  /** the earlier version's flow value size */
  valueBytes: number;
  /** flows read out of them so far */
  flowsDrained: number;
  /** set-aside maps still pinned: 0 once everything in them was drained */
  mapsLeft: number;
}

export interface CloseOptions {
  /** leave the programs attached, pinned and counting for the next agent (pinned sources only) */
  keepAttached?: boolean;
}

/** The datapath as the service sees it. */
export interface FlowSource {
  attach(iface: string, mode: HookMode): Promise<Attachment>;
  detach(iface: string): Promise<void>;
  attachments(): Attachment[];
  /** Drains one generation. Never runs two drains at once (a second call waits for the first). */
  drain(): Promise<DrainResult>;
  stats(): FlowSourceStats;
  /** Every sink accepted the records of drains up to `seq` (DrainResult.seq). */
  markExported?(seq: number): void;
  /** Says where the API of the agent that owns the source listens (named to a second agent). */
  setOwnerApi?(url: string): void;
  /** Detaches everything and frees the kernel objects, unless keepAttached. Idempotent. */
  close(options?: CloseOptions): Promise<void>;
}
