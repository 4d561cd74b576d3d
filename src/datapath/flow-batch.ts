/**
 * FlowBatch over the addon's buffer: an array of struct flow_key (written by
 * the kernel's batch lookup itself) followed by an array of summed struct
 * flow_value. Fields are read on demand through typed-array views, so a drain
 * of a million flows creates no object per flow.
 */
import type { Direction, FlowBatch } from './types.js';
import { formatIPv4, formatIPv6 } from '../lib/ip.js';
import { FLOW_IDENTITY_BYTES, FLOW_KEY, FLOW_VALUE } from './layout.js';

const KEY_U32 = FLOW_KEY.size / 4; // = KEY_WORDS in types.ts
const KEY_U16 = FLOW_KEY.size / 2;
const VALUE_U32 = FLOW_VALUE.size / 4;
const VALUE_U16 = FLOW_VALUE.size / 2;
const TWO_POW_32 = 4294967296;

/** Converts the kernel's CLOCK_MONOTONIC stamps to wall-clock ms, anchored at one instant read on both clocks. */
export interface ClockAnchor {
  monoNs: number;
  realtimeNs: number;
}

export class KernelFlowBatch implements FlowBatch {
  readonly count: number;
  readonly keyWords: Uint32Array;
  private readonly keyBytes: Buffer;
  private readonly key8: Uint8Array;
  private readonly key16: Uint16Array;
  private readonly key32: Uint32Array;
  private readonly value16: Uint16Array;
  private readonly value32: Uint32Array;
  private readonly anchorMs: number;
  private readonly anchorMonoNs: number;

  /** `flows` holds `capacity` keys and then `capacity` values; the first `count` of each are filled. */
  constructor(flows: ArrayBuffer, count: number, capacity: number, anchor: ClockAnchor) {
    const need = capacity * (FLOW_KEY.size + FLOW_VALUE.size);
    if (count > capacity || flows.byteLength < need) throw new RangeError(`flow buffer of ${flows.byteLength} bytes cannot hold ${capacity} flows`);
    this.count = count;
    const values = capacity * FLOW_KEY.size;
    this.keyBytes = Buffer.from(flows, 0, count * FLOW_KEY.size);
    this.key8 = new Uint8Array(flows, 0, count * FLOW_KEY.size);
    this.key16 = new Uint16Array(flows, 0, count * KEY_U16);
    this.key32 = new Uint32Array(flows, 0, count * KEY_U32);
    this.keyWords = this.key32;
    this.value16 = new Uint16Array(flows, values, count * VALUE_U16);
    this.value32 = new Uint32Array(flows, values, count * VALUE_U32);
    this.anchorMs = anchor.realtimeNs / 1e6;
    this.anchorMonoNs = anchor.monoNs;
  }

  private u64(i: number, field: number): number {
    const at = i * VALUE_U32 + field / 4;
    return this.value32[at] + this.value32[at + 1] * TWO_POW_32;
  }

  ifindex(i: number): number {
    return this.key32[i * KEY_U32 + FLOW_KEY.ifindex / 4];
  }
  direction(i: number): Direction {
    return this.key8[i * FLOW_KEY.size + FLOW_KEY.direction] === 0 ? 'ingress' : 'egress';
  }
  family(i: number): 4 | 6 {
    return this.key8[i * FLOW_KEY.size + FLOW_KEY.family] === 6 ? 6 : 4;
  }
  proto(i: number): number {
    return this.key8[i * FLOW_KEY.size + FLOW_KEY.proto];
  }
  sport(i: number): number {
    return this.key16[i * KEY_U16 + FLOW_KEY.sport / 2];
  }
  dport(i: number): number {
    return this.key16[i * KEY_U16 + FLOW_KEY.dport / 2];
  }
  icmpType(i: number): number {
    return this.key8[i * FLOW_KEY.size + FLOW_KEY.icmp_type];
  }
  icmpCode(i: number): number {
    return this.key8[i * FLOW_KEY.size + FLOW_KEY.icmp_code];
  }
  packets(i: number): number {
    return this.u64(i, FLOW_VALUE.packets);
  }
  bytes(i: number): number {
    return this.u64(i, FLOW_VALUE.bytes);
  }
  tcpFlags(i: number): number {
    return this.value16[i * VALUE_U16 + FLOW_VALUE.tcp_flags / 2];
  }
  cgroupId(i: number): number {
    return this.u64(i, FLOW_VALUE.cgroup_id);
  }
  firstSeenMs(i: number): number {
    return this.anchorMs - (this.anchorMonoNs - this.u64(i, FLOW_VALUE.first_seen_ns)) / 1e6;
  }
  lastSeenMs(i: number): number {
    return this.anchorMs - (this.anchorMonoNs - this.u64(i, FLOW_VALUE.last_seen_ns)) / 1e6;
  }
  src(i: number): string {
    return this.address(i, FLOW_KEY.src);
  }
  dst(i: number): string {
    return this.address(i, FLOW_KEY.dst);
  }
  key(i: number): string {
    const at = i * FLOW_KEY.size;
    return this.keyBytes.toString('latin1', at, at + FLOW_IDENTITY_BYTES);
  }

  private address(i: number, field: number): string {
    const at = i * FLOW_KEY.size + field;
    return this.family(i) === 6 ? formatIPv6(this.key8, at) : formatIPv4(this.key8, at);
  }
}
