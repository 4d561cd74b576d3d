/** The flow record of the contract (shared/contract.md, "Flow record"). */
import type { Direction } from '../datapath/types.js';

export interface FlowRecord {
  node: string;
  iface: string;
  ifindex: number;
  direction: Direction;
  family: 4 | 6;
  src: string;
  dst: string;
  /** `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, or the protocol number as a string */
  proto: string;
  sport: number;
  dport: number;
  /** present for ICMP and ICMPv6 only */
  icmpType?: number;
  icmpCode?: number;
  packets: number;
  bytes: number;
  tcpFlags: string[];
  start: string;
  end: string;
  firstSeen: string;
  lastSeen: string;
  /**
   * Attribution (contract, "Attribution"; docs/api.md): the cgroup v2 path of the
   * flow's local socket, relative to the cgroup v2 root, null when its id could
   * not be resolved (the cgroup is gone); absent when the flow has no local
   * socket (forwarded traffic) or attribution is off.
   */
  cgroup?: string | null;
  /** the cgroup v2 id (the directory's inode number) */
  cgroupId?: number;
  /** a short label of the workload: NAMESPACE/POD, a systemd unit, docker:ID12, ... (flow/workload.ts) */
  workload?: string;
  pod?: { namespace: string; name: string };
  /** container id (64 hex digits) */
  container?: string;
}
