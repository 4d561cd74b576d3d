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
}
