/**
 * NetFlow-style flow expiry: when the flow table forgets a flow, so that the
 * next packet with the same identity starts a new flow (new firstSeen).
 *
 * The defaults are softflowd's / pmacct nfprobe's: a TCP flow lives an hour
 * without packets, but only 5 minutes after a FIN and 2 minutes after a RST
 * (so late ACKs and retransmissions still belong to it); UDP and ICMP 5
 * minutes; anything else an hour; and no flow lives longer than a week (the
 * active timeout, "maxlife").
 */
import { TCP_FIN, TCP_RST } from './protocols.js';

export interface ExpiryConfig {
  tcpIdleMs: number;
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
  tcpFinMs: 300_000,
  tcpRstMs: 120_000,
  udpIdleMs: 300_000,
  icmpIdleMs: 300_000,
  otherIdleMs: 3_600_000,
  activeMs: 604_800_000,
  maxFlows: 2_000_000,
});

export type ExpiryReason = 'idle' | 'fin' | 'rst' | 'active' | 'evicted';
export const EXPIRY_REASONS: readonly ExpiryReason[] = ['idle', 'fin', 'rst', 'active', 'evicted'];

/** Flow-table state bits (tcp end seen) that shorten the idle timeout. */
export const STATE_FIN = 1;
export const STATE_RST = 2;

export function stateFromFlags(tcpFlags: number): number {
  return (tcpFlags & TCP_RST ? STATE_RST : 0) | (tcpFlags & TCP_FIN ? STATE_FIN : 0);
}

/** Idle timeout of a flow given its protocol and TCP end state. */
export function idleTimeoutMs(config: ExpiryConfig, proto: number, state: number): number {
  switch (proto) {
    case 6:
      if (state & STATE_RST) return config.tcpRstMs;
      if (state & STATE_FIN) return config.tcpFinMs;
      return config.tcpIdleMs;
    case 17:
      return config.udpIdleMs;
    case 1:
    case 58:
      return config.icmpIdleMs;
    default:
      return config.otherIdleMs;
  }
}

/** Why an idle flow ends, for the metrics: a TCP end if one was seen, else plain idle. */
export function idleReason(state: number): ExpiryReason {
  if (state & STATE_RST) return 'rst';
  if (state & STATE_FIN) return 'fin';
  return 'idle';
}
