/**
 * A FlowSource without a kernel, for tests, benchmarks and demos. It hands out
 * FlowBatches of the real shape (identity bytes laid out as struct flow_key,
 * `key(i)` a latin1 string of them, as src/datapath/flow-batch.ts does) and
 * interface deltas that keep the datapath invariant:
 *   iface packets == sum of flow packets + other + overflow  (same for bytes)
 *
 * Two ways to feed it:
 * - push(): flows (and non-flow frames) for the next drain, e.g. in tests;
 * - generate(): a fixed population of N flows that all get traffic on every
 *   drain, built once as columns so a drain costs no allocation (benchmarks).
 */
import type {
  Attachment, Direction, DrainResult, FailureName, FlowBatch, FlowSource, FlowSourceStats, HookMode, InterfaceDelta,
} from './types.js';
import { FAILURE_NAMES, KEY_WORDS } from './types.js';
import { FLOW_IDENTITY_BYTES, FLOW_KEY } from './layout.js';
import { formatIPv4, formatIPv6, parseIp } from '../lib/ip.js';
import { growFloat64, growUint16, growUint32, growUint8 } from '../lib/typed-arrays.js';

/** Bytes of struct flow_key up to icmp_code, as FLOW_IDENTITY_BYTES in src/datapath/layout.ts. */
// struct flow_key: 48 bytes, the first FLOW_IDENTITY_BYTES identify the flow, the rest is zero padding.
const KEY_BYTES = FLOW_KEY.size;

export interface SyntheticFlow {
  iface: string;
  direction: Direction;
  src: string;
  dst: string;
  /** IP protocol number; default 17 (udp) */
  proto?: number;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  packets: number;
  bytes: number;
  tcpFlags?: number;
  /** default: the drain time */
  firstSeenMs?: number;
  lastSeenMs?: number;
  /** cgroup id of the flow's local socket, as the kernel would report it (default 0: none) */
  cgroupId?: number;
}

/** Frames counted for an interface but not as a flow. */
export interface SyntheticNonFlow {
  iface: string;
  direction: Direction;
  kind: 'other' | 'overflow';
  packets: number;
  bytes: number;
}

/** A FlowBatch over columns, laid out like the kernel's records. */
export class ColumnarFlowBatch implements FlowBatch {
  count = 0;
  private ifindexCol = new Uint32Array(16);
  private dirCol = new Uint8Array(16);
  private familyCol = new Uint8Array(16);
  private protoCol = new Uint8Array(16);
  private sportCol = new Uint16Array(16);
  private dportCol = new Uint16Array(16);
  private icmpTypeCol = new Uint8Array(16);
  private icmpCodeCol = new Uint8Array(16);
  flagsCol = new Uint16Array(16);
  packetsCol = new Float64Array(16);
  bytesCol = new Float64Array(16);
  firstCol = new Float64Array(16);
  lastCol = new Float64Array(16);
  cgroupCol = new Float64Array(16);
  private srcCol: string[] = [];
  private dstCol: string[] = [];
  private keys = Buffer.alloc(16 * KEY_BYTES);

  private ensure(n: number): void {
    if (n <= this.ifindexCol.length) return;
    this.ifindexCol = growUint32(this.ifindexCol, n);
    this.dirCol = growUint8(this.dirCol, n);
    this.familyCol = growUint8(this.familyCol, n);
    this.protoCol = growUint8(this.protoCol, n);
    this.sportCol = growUint16(this.sportCol, n);
    this.dportCol = growUint16(this.dportCol, n);
    this.icmpTypeCol = growUint8(this.icmpTypeCol, n);
    this.icmpCodeCol = growUint8(this.icmpCodeCol, n);
    this.flagsCol = growUint16(this.flagsCol, n);
    this.packetsCol = growFloat64(this.packetsCol, n);
    this.bytesCol = growFloat64(this.bytesCol, n);
    this.firstCol = growFloat64(this.firstCol, n);
    this.lastCol = growFloat64(this.lastCol, n);
    this.cgroupCol = growFloat64(this.cgroupCol, n);
    const keys = Buffer.alloc(this.ifindexCol.length * KEY_BYTES);
    this.keys.copy(keys);
    this.keys = keys;
  }

  /** Appends a flow; returns its index. Throws on a malformed address. */
  add(ifindex: number, f: SyntheticFlow, nowMs: number): number {
    const i = this.count;
    this.ensure(i + 1);
    const src = parseIp(f.src);
    const dst = parseIp(f.dst);
    if (!src || !dst || src.family !== dst.family) throw new RangeError(`bad synthetic flow addresses ${f.src} -> ${f.dst}`);
    const proto = f.proto ?? 17;
    const icmp = proto === 1 || proto === 58;
    this.ifindexCol[i] = ifindex;
    this.dirCol[i] = f.direction === 'egress' ? 1 : 0;
    this.familyCol[i] = src.family;
    this.protoCol[i] = proto;
    this.sportCol[i] = icmp ? 0 : (f.sport ?? 0);
    this.dportCol[i] = icmp ? 0 : (f.dport ?? 0);
    this.icmpTypeCol[i] = icmp ? (f.icmpType ?? 0) : 0;
    this.icmpCodeCol[i] = icmp ? (f.icmpCode ?? 0) : 0;
    this.flagsCol[i] = f.tcpFlags ?? 0;
    this.packetsCol[i] = f.packets;
    this.bytesCol[i] = f.bytes;
    this.firstCol[i] = f.firstSeenMs ?? nowMs;
    this.lastCol[i] = f.lastSeenMs ?? f.firstSeenMs ?? nowMs;
    this.cgroupCol[i] = f.cgroupId ?? 0;
    // Canonical text, formatted from the bytes as the kernel batch does.
    this.srcCol[i] = src.family === 6 ? formatIPv6(src.bytes, 0) : formatIPv4(src.bytes, 0);
    this.dstCol[i] = dst.family === 6 ? formatIPv6(dst.bytes, 0) : formatIPv4(dst.bytes, 0);
    const k = this.keys;
    const at = i * KEY_BYTES;
    k.fill(0, at, at + KEY_BYTES);
    k.writeUInt32LE(ifindex, at);
    k.writeUInt16LE(this.sportCol[i], at + 4);
    k.writeUInt16LE(this.dportCol[i], at + 6);
    k.set(src.bytes, at + 8);
    k.set(dst.bytes, at + 24);
    k[at + 40] = src.family;
    k[at + 41] = this.dirCol[i];
    k[at + 42] = proto;
    k[at + 43] = this.icmpTypeCol[i];
    k[at + 44] = this.icmpCodeCol[i];
    this.count++;
    return i;
  }

  ifindex(i: number): number {
    return this.ifindexCol[i];
  }
  direction(i: number): Direction {
    return this.dirCol[i] === 1 ? 'egress' : 'ingress';
  }
  family(i: number): 4 | 6 {
    return this.familyCol[i] === 6 ? 6 : 4;
  }
  proto(i: number): number {
    return this.protoCol[i];
  }
  sport(i: number): number {
    return this.sportCol[i];
  }
  dport(i: number): number {
    return this.dportCol[i];
  }
  icmpType(i: number): number {
    return this.icmpTypeCol[i];
  }
  icmpCode(i: number): number {
    return this.icmpCodeCol[i];
  }
  packets(i: number): number {
    return this.packetsCol[i];
  }
  bytes(i: number): number {
    return this.bytesCol[i];
  }
  tcpFlags(i: number): number {
    return this.flagsCol[i];
  }
  firstSeenMs(i: number): number {
    return this.firstCol[i];
  }
  cgroupId(i: number): number {
    return this.cgroupCol[i];
  }

  lastSeenMs(i: number): number {
    return this.lastCol[i];
  }
  src(i: number): string {
    return this.srcCol[i];
  }
  dst(i: number): string {
    return this.dstCol[i];
  }
  get keyWords(): Uint32Array {
    return new Uint32Array(this.keys.buffer, this.keys.byteOffset, this.count * KEY_WORDS);
  }
  key(i: number): string {
    const at = i * KEY_BYTES;
    return this.keys.toString('latin1', at, at + FLOW_IDENTITY_BYTES);
  }
}

interface FlowSum {
  ifindex: number;
  direction: Direction;
  packets: number;
  bytes: number;
}

/** The flows' packets and bytes summed per interface and direction. */
function flowSums(batch: FlowBatch): FlowSum[] {
  const sums = new Map<number, FlowSum>();
  for (let i = 0; i < batch.count; i++) {
    const ifindex = batch.ifindex(i);
    const direction = batch.direction(i);
    const k = ifindex * 2 + (direction === 'egress' ? 1 : 0);
    let s = sums.get(k);
    if (!s) sums.set(k, (s = { ifindex, direction, packets: 0, bytes: 0 }));
    s.packets += batch.packets(i);
    s.bytes += batch.bytes(i);
  }
  return [...sums.values()];
}

export interface SyntheticSourceOptions {
  /** wall clock of the drains; default Date.now */
  clock?: () => number;
  flowMapCapacity?: number;
  /** interface name -> ifindex; unknown names get 100, 101, ... */
  ifindexes?: Record<string, number>;
}

export interface GenerateOptions {
  flows: number;
  /** distinct source addresses the flows are spread over */
  sources?: number;
  iface?: string;
  packetsPerDrain?: number;
  bytesPerPacket?: number;
}

export class SyntheticFlowSource implements FlowSource {
  private readonly clock: () => number;
  private readonly capacity: number;
  private readonly names = new Map<string, number>();
  private readonly attached = new Map<string, Attachment>();
  private queuedFlows: SyntheticFlow[] = [];
  private queuedNonFlows: SyntheticNonFlow[] = [];
  private generated: ColumnarFlowBatch | undefined;
  /** per interface and direction, the flow sums of every drain of the generated population */
  private generatedSums: FlowSum[] | undefined;
  private generatedIfindex = 0;
  private failureCounts = Object.fromEntries(FAILURE_NAMES.map((n) => [n, 0])) as Record<FailureName, number>;
  private nextIfindex = 100;
  private lastDrainFlows = 0;
  private closed = false;
  /** drains so far */
  drains = 0;
  /** if set, the next drain rejects with it (then it is cleared) */
  failNextDrain: Error | undefined;

  constructor(options: SyntheticSourceOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.capacity = options.flowMapCapacity ?? 65536;
    for (const [name, idx] of Object.entries(options.ifindexes ?? {})) this.names.set(name, idx);
  }

  ifindexOf(iface: string): number {
    let idx = this.names.get(iface);
    if (idx === undefined) this.names.set(iface, (idx = this.nextIfindex++));
    return idx;
  }

  async attach(iface: string, mode: HookMode): Promise<Attachment> {
    if (this.closed) throw new Error('the flow source is closed');
    const a: Attachment = { iface, ifindex: this.ifindexOf(iface), mode, tcMechanism: 'tcx' };
    this.attached.set(iface, a);
    return a;
  }

  async detach(iface: string): Promise<void> {
    this.attached.delete(iface);
  }

  attachments(): Attachment[] {
    return [...this.attached.values()];
  }

  /** Queues flows (and non-flow frames) for the next drain. */
  push(flows: SyntheticFlow[], nonFlows: SyntheticNonFlow[] = []): void {
    this.queuedFlows.push(...flows);
    this.queuedNonFlows.push(...nonFlows);
  }

  /** Adds to the cumulative datapath failure counters. */
  countFailure(name: FailureName, n = 1): void {
    this.failureCounts[name] += n;
  }

  /**
   * A population of `flows` UDP flows on one interface, all active on every
   * drain (replaces any earlier population). Flow i goes from source
   * i % sources to a fixed destination, ports varying so every flow is distinct.
   */
  generate(options: GenerateOptions): void {
    const iface = options.iface ?? 'synth0';
    const sources = options.sources ?? Math.min(options.flows, 65536);
    const packets = options.packetsPerDrain ?? 1;
    const bytesPer = options.bytesPerPacket ?? 100;
    const batch = new ColumnarFlowBatch();
    this.generatedIfindex = this.ifindexOf(iface);
    const now = this.clock();
    for (let i = 0; i < options.flows; i++) {
      const s = i % sources;
      const j = Math.floor(i / sources);
      batch.add(this.generatedIfindex, {
        iface, direction: 'ingress',
        src: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`,
        dst: `192.168.${(j >> 16) & 255}.${(j >> 8) & 255}`,
        proto: 17, sport: 1024 + (j & 0xffff) % 60000, dport: 53,
        packets, bytes: packets * bytesPer, firstSeenMs: now, lastSeenMs: now,
      }, now);
    }
    this.generated = batch;
    this.generatedSums = undefined;
  }

  async drain(): Promise<DrainResult> {
    if (this.closed) throw new Error('the flow source is closed');
    this.drains++;
    const started = process.hrtime.bigint();
    if (this.failNextDrain) {
      const err = this.failNextDrain;
      this.failNextDrain = undefined;
      throw err;
    }
    const now = this.clock();
    let batch: ColumnarFlowBatch;
    if (this.generated && this.queuedFlows.length === 0) {
      batch = this.generated;
      batch.firstCol.fill(now - 1, 0, batch.count);
      batch.lastCol.fill(now, 0, batch.count);
    } else {
      batch = this.buildQueued(now);
    }
    const interfaces = this.interfaceDeltas(batch);
    this.queuedNonFlows = [];
    this.lastDrainFlows = batch.count;
    return {
      flows: batch,
      interfaces,
      failures: { ...this.failureCounts },
      closedAtMs: now,
      durationNs: Number(process.hrtime.bigint() - started),
    };
  }

  /** The queued flows as one batch, deltas of equal flows merged as the kernel map would. */
  private buildQueued(now: number): ColumnarFlowBatch {
    const batch = new ColumnarFlowBatch();
    const byKey = new Map<string, number>();
    for (const f of this.queuedFlows) {
      const i = batch.add(this.ifindexOf(f.iface), f, now);
      const key = batch.key(i);
      const earlier = byKey.get(key);
      if (earlier === undefined) {
        byKey.set(key, i);
        continue;
      }
      batch.count--;
      batch.packetsCol[earlier] += f.packets;
      batch.bytesCol[earlier] += f.bytes;
      batch.firstCol[earlier] = Math.min(batch.firstCol[earlier], f.firstSeenMs ?? now);
      batch.lastCol[earlier] = Math.max(batch.lastCol[earlier], f.lastSeenMs ?? f.firstSeenMs ?? now);
      batch.flagsCol[earlier] |= f.tcpFlags ?? 0;
      if (f.cgroupId) batch.cgroupCol[earlier] = f.cgroupId;
    }
    this.queuedFlows = [];
    return batch;
  }

  /**
   * The interface deltas of a drain: the flows' sums per interface and
   * direction (for the generated population, computed once: its deltas are
   * the same on every drain, and a kernel drain does not cost the JS thread a
   * pass over the flows) plus the queued non-flow frames.
   */
  private interfaceDeltas(batch: ColumnarFlowBatch): InterfaceDelta[] {
    const sums = batch === this.generated ? (this.generatedSums ??= flowSums(batch)) : flowSums(batch);
    const deltas = new Map<number, InterfaceDelta>();
    const get = (ifindex: number, direction: Direction): InterfaceDelta => {
      const k = ifindex * 2 + (direction === 'egress' ? 1 : 0);
      let d = deltas.get(k);
      if (!d) {
        d = { ifindex, direction, packets: 0, bytes: 0, otherPackets: 0, otherBytes: 0, overflowPackets: 0, overflowBytes: 0 };
        deltas.set(k, d);
      }
      return d;
    };
    for (const s of sums) {
      const d = get(s.ifindex, s.direction);
      d.packets += s.packets;
      d.bytes += s.bytes;
    }
    for (const n of this.queuedNonFlows) {
      const d = get(this.ifindexOf(n.iface), n.direction);
      d.packets += n.packets;
      d.bytes += n.bytes;
      if (n.kind === 'other') {
        d.otherPackets += n.packets;
        d.otherBytes += n.bytes;
      } else {
        d.overflowPackets += n.packets;
        d.overflowBytes += n.bytes;
        this.failureCounts.flow_map_full += n.packets;
      }
    }
    return [...deltas.values()];
  }

  stats(): FlowSourceStats {
    return { flowMapCapacity: this.capacity, lastDrainFlows: this.lastDrainFlows };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.attached.clear();
  }
}
