/**
 * NetFlow-style flow expiry: when the flow table forgets a flow, so that the
 * next packet with the same identity starts a new flow (new firstSeen).
 *
 * The defaults are softflowd's / pmacct nfprobe's: a TCP flow lives an hour
 * without packets, but only 5 minutes after a FIN and 2 minutes after a RST
 * (so late ACKs and retransmissions still belong to it); UDP and ICMP 5
 * minutes; anything else an hour; and no flow lives longer than a week (the
 * active timeout, "maxlife").
 *
 * A TCP flow that never got past the handshake (only SYN, SYN-ACK, refused
 * with a RST, or scans without ACK) lives only tcpSynMs (20 s) without
 * packets, as conntrack ends SYN_SENT/SYN_RECV early: a SYN flood or a scan
 * then holds memory for seconds, not for the hour an open connection gets.
 * 20 s still keeps a client's first SYN retransmissions (1, 3, 7 and 15 s
 * after the first SYN on Linux) in one flow; a later one starts a new flow,
 * which only splits the records, never the counts.
 */
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from '../flow/protocols.js';

export interface ExpiryConfig {
  tcpIdleMs: number;
  /** a TCP flow not (yet) established: no segment seen that only an open connection sends */
  tcpSynMs: number;
  tcpFinMs: number;
  tcpRstMs: number;
  udpIdleMs: number;
  icmpIdleMs: number;
  /** any other protocol */
  otherIdleMs: number;
  /** active timeout: a flow older than this ends even if it is still busy */
  activeMs: number;
  /** most flows kept; beyond it the least recently seen are evicted */
  maxFlows: number;
}

export const DEFAULT_EXPIRY: Readonly<ExpiryConfig> = Object.freeze({
  tcpIdleMs: 3_600_000,
  tcpSynMs: 20_000,
  tcpFinMs: 300_000,
  tcpRstMs: 120_000,
  udpIdleMs: 300_000,
  icmpIdleMs: 300_000,
  otherIdleMs: 3_600_000,
  activeMs: 604_800_000,
  maxFlows: 2_000_000,
});

/** Why a flow ends: `syn` is a TCP flow that never got past the handshake (tcpSynMs). */
export type ExpiryReason = 'idle' | 'syn' | 'fin' | 'rst' | 'active' | 'evicted';
export const EXPIRY_REASONS: readonly ExpiryReason[] = ['idle', 'syn', 'fin', 'rst', 'active', 'evicted'];

/** Flow-table state bits (tcp end seen) that shorten the idle timeout. */
export const STATE_FIN = 1;
export const STATE_RST = 2;
/** the flow carried a segment only an established connection sends */
export const STATE_EST = 4;

/**
 * The state bits one poll interval's union of TCP flags proves. Established:
 * an ACK without SYN or RST (the handshake's last ACK, any later segment), or
 * an ACK with data or an orderly end (PSH, URG, FIN) even next to a SYN (a
 * whole short connection within one interval). Not: SYN, SYN-ACK, RST-ACK
 * (refused), flags without ACK (scans).
 */
export function stateFromFlags(tcpFlags: number): number {
  const established =
    (tcpFlags & TCP_ACK) !== 0 && ((tcpFlags & (TCP_SYN | TCP_RST)) === 0 || (tcpFlags & (TCP_PSH | TCP_URG | TCP_FIN)) !== 0);
  return (tcpFlags & TCP_RST ? STATE_RST : 0) | (tcpFlags & TCP_FIN ? STATE_FIN : 0) | (established ? STATE_EST : 0);
}

/** Idle timeout of a flow given its protocol and TCP state. */
export function idleTimeoutMs(config: ExpiryConfig, proto: number, state: number): number {
  switch (proto) {
    case 6: {
      const t = state & STATE_RST ? config.tcpRstMs : state & STATE_FIN ? config.tcpFinMs : config.tcpIdleMs;
      return state & STATE_EST ? t : Math.min(t, config.tcpSynMs);
    }
    case 17:
      return config.udpIdleMs;
    case 1:
    case 58:
      return config.icmpIdleMs;
    default:
      return config.otherIdleMs;
  }
}

/** Why an idle flow ends, for the metrics: a TCP end if one was seen, a handshake that never completed, else plain idle. */
export function idleReason(config: ExpiryConfig, proto: number, state: number): ExpiryReason {
  if (proto === 6 && (state & STATE_EST) === 0) {
    const t = state & STATE_RST ? config.tcpRstMs : state & STATE_FIN ? config.tcpFinMs : config.tcpIdleMs;
    if (config.tcpSynMs < t) return 'syn';
  }
  if (state & STATE_RST) return 'rst';
  if (state & STATE_FIN) return 'fin';
  return 'idle';
}
