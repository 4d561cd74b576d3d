/**
 * FlowBatch over the addon's buffer of struct flow_record: fields are read on
 * demand through typed-array views, so a drain of a million flows creates no
 * object per flow.
 */
import type { Direction, FlowBatch } from './types.js';
import { formatIPv4, formatIPv6 } from './address.js';
import { FLOW_IDENTITY_BYTES, FLOW_KEY, FLOW_RECORD, FLOW_VALUE } from './layout.js';

const U32_PER_RECORD = FLOW_RECORD.size / 4;
const U16_PER_RECORD = FLOW_RECORD.size / 2;
const TWO_POW_32 = 4294967296;

/** Converts the kernel's CLOCK_MONOTONIC stamps to wall-clock ms, anchored at one instant read on both clocks. */
export interface ClockAnchor {
  monoNs: number;
  realtimeNs: number;
}

export class KernelFlowBatch implements FlowBatch {
  readonly count: number;
  private readonly buf: Buffer;
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  private readonly anchorMs: number;
  private readonly anchorMonoNs: number;

  constructor(records: Buffer, count: number, anchor: ClockAnchor) {
    // Typed views need aligned storage; the addon's buffers are, a copy makes sure.
    const buf = records.byteOffset % 8 === 0 ? records : Buffer.from(records);
    if (buf.length < count * FLOW_RECORD.size) throw new RangeError(`flow buffer holds ${buf.length} bytes, ${count} records need ${count * FLOW_RECORD.size}`);
    this.buf = buf;
    this.count = count;
    this.u8 = new Uint8Array(buf.buffer, buf.byteOffset, count * FLOW_RECORD.size);
    this.u16 = new Uint16Array(buf.buffer, buf.byteOffset, count * U16_PER_RECORD);
    this.u32 = new Uint32Array(buf.buffer, buf.byteOffset, count * U32_PER_RECORD);
    this.anchorMs = anchor.realtimeNs / 1e6;
    this.anchorMonoNs = anchor.monoNs;
  }

  private u64(i: number, valueOffset: number): number {
    const at = i * U32_PER_RECORD + (FLOW_RECORD.value + valueOffset) / 4;
    return this.u32[at] + this.u32[at + 1] * TWO_POW_32;
  }

  ifindex(i: number): number {
    return this.u32[i * U32_PER_RECORD + FLOW_KEY.ifindex / 4];
  }
  direction(i: number): Direction {
    return this.u8[i * FLOW_RECORD.size + FLOW_KEY.direction] === 0 ? 'ingress' : 'egress';
  }
  family(i: number): 4 | 6 {
    return this.u8[i * FLOW_RECORD.size + FLOW_KEY.family] === 6 ? 6 : 4;
  }
  proto(i: number): number {
    return this.u8[i * FLOW_RECORD.size + FLOW_KEY.proto];
  }
  sport(i: number): number {
    return this.u16[i * U16_PER_RECORD + FLOW_KEY.sport / 2];
  }
  dport(i: number): number {
    return this.u16[i * U16_PER_RECORD + FLOW_KEY.dport / 2];
  }
  icmpType(i: number): number {
    return this.u8[i * FLOW_RECORD.size + FLOW_KEY.icmp_type];
  }
  icmpCode(i: number): number {
    return this.u8[i * FLOW_RECORD.size + FLOW_KEY.icmp_code];
  }
  packets(i: number): number {
    return this.u64(i, FLOW_VALUE.packets);
  }
  bytes(i: number): number {
    return this.u64(i, FLOW_VALUE.bytes);
  }
  tcpFlags(i: number): number {
    return this.u16[i * U16_PER_RECORD + (FLOW_RECORD.value + FLOW_VALUE.tcp_flags) / 2];
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
    const at = i * FLOW_RECORD.size;
    return this.buf.toString('latin1', at, at + FLOW_IDENTITY_BYTES);
  }

  private address(i: number, field: number): string {
    const at = i * FLOW_RECORD.size + field;
    return this.family(i) === 6 ? formatIPv6(this.u8, at) : formatIPv4(this.u8, at);
  }
}
