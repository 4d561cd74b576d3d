/**
 * Top talkers over time-bucketed sliding windows.
 *
 * Records are added to an "open" bucket (bucketMs wide, aligned to the epoch)
 * as cheap per-flow sums indexed by flow id. When time moves past the bucket,
 * it is closed: its flows are grouped along every dimension (src, dst, pair,
 * flow, sport, dport, proto, iface) and, per dimension, the `capacity`
 * largest groups by bytes and the `capacity` largest by packets are kept with
 * their exact sums; the rest of the bucket is only in its exact totals. Closed
 * buckets are kept for `horizonMs`.
 *
 * A query merges the summaries of the closed buckets in its window: its cost
 * depends on the number of buckets and `capacity`, not on the number of flows
 * or records, and answers are cached until the next bucket closes. Answers
 * are exact whenever no bucket of the window had more groups in the asked
 * dimension than it could keep (`exact` in the answer says so); otherwise an
 * entry's sums are lower bounds and a group that was never among a bucket's
 * largest is missing.
 *
 * Queries with key conditions (address, port, protocol, interface,
 * direction) are answered from the `flow` dimension: each kept flow is tested
 * against the filter and regrouped along the asked dimension.
 *
 * Time: buckets open and close on a monotonic clock, so that a step of the
 * wall clock (NTP correction, `date -s`) neither moves the open bucket into
 * the future (nothing would close until wall time caught up) nor closes a
 * span of empty buckets. The "timeline" is the monotonic clock shifted to
 * read as wall time at start; wall times that come in (a batch's end, a
 * query's since/until) are moved onto it by the current difference between
 * wall clock and timeline (0 until the wall clock steps), and the answers'
 * `from`/`to` are labelled back the same way. A batch is added to the bucket
 * of its end, but never to one after the current one: a relay replaying
 * history fills the buckets of the past, and an entry claiming a far-future
 * time lands in the open bucket instead of freezing the windows.
 */
import type { RecordBatch, IfaceNamer } from '../../flow/record-batch.js';
import { singleNode, type FlowNodeReader, type FlowTupleReaderWithIds } from '../../flow/tuple-reader.js';
import { type FlowFilter, type FilterableFlow, hasKeyConditions, matchesFlow } from '../../flow/filter.js';
import { formatPrefix } from '../../lib/ip.js';
import { isIcmp, protoName } from '../../flow/protocols.js';
import { metaDirectionCode, metaFamily, metaIcmpCode, metaIcmpType, metaProto, portsDport, portsSport } from '../../flow/tuple.js';
import { growFloat64, growUint32, growUint8 } from '../../lib/typed-arrays.js';
import { NumberIndex } from '../../lib/number-index.js';
import { Slicer } from '../../lib/slicer.js';
import { TOP_DIMENSIONS, type TopDimension, type TopMetric } from '../../flow/top-dimensions.js';
import { TopKSelector, topK } from '../../lib/top-k.js';


export interface TopConfig {
  bucketMs: number;
  horizonMs: number;
  /** groups kept per closed bucket, dimension and metric */
  capacity: number;
}

export const DEFAULT_TOP: Readonly<TopConfig> = Object.freeze({ bucketMs: 10_000, horizonMs: 3_600_000, capacity: 1000 });

export type GroupKeyFields = Record<string, string | number>;

/** A group's identity: `id` merges it across buckets, `key` is what the answer shows. */
interface GroupKey {
  readonly id: string;
  readonly key: GroupKeyFields;
  /** set on flow keys: what the filters test */
  readonly flow?: FilterableFlow & { family: 4 | 6; icmpType: number; icmpCode: number; node: string; keyNode: boolean };
  refs: number;
}

interface DimSummary {
  keys: GroupKey[];
  packets: Float64Array;
  bytes: Float64Array;
  /** distinct groups the bucket had in this dimension */
  groups: number;
}

interface ClosedBucket {
  epoch: number;
  packets: number;
  bytes: number;
  dims: Record<TopDimension, DimSummary>;
}

export interface TopQuery {
  by: TopDimension;
  metric: TopMetric;
  windowMs: number;
  k: number;
  filter: FlowFilter;
}

export interface TopEntry {
  key: GroupKeyFields;
  bytes: number;
  packets: number;
  share: number;
}

export interface TopAnswer {
  entries: TopEntry[];
  /** ISO time bounds of the buckets merged; null when none */
  from: string | null;
  to: string | null;
  /** window totals (of the filtered flows when a filter is given) */
  totalBytes: number;
  totalPackets: number;
  /** false when a bucket kept only its largest groups (entries are then lower bounds) */
  exact: boolean;
}

/** Fields of a flow as a top-talker key, built from a flow id. */
type FlowFields = NonNullable<GroupKey['flow']>;

/** flows (or groups) between two looks at the clock while a bucket closes; the close yields every few ms */
const CLOSE_CHUNK = 1024;

/** A difference between wall clock and timeline that changes by less than this is jitter, not a step. */
const STEP_MS = 500;

/** A monotonic clock in ms that reads as wall time at process start. */
export const monotonicNow = (): number => performance.timeOrigin + performance.now();
/** kept groups a query merges between two looks at the clock (topSliced); a power of two */
const QUERY_CHUNK = 512;

export class TopWindows {
  private readonly keyTable = new Map<string, GroupKey>();
  private readonly closed: ClosedBucket[] = [];
  private openEpoch = -1;
  private openPackets = new Float64Array(0);
  private openBytes = new Float64Array(0);
  private openMark = new Uint8Array(0);
  private touched = new Uint32Array(1024);
  private touchedCount = 0;
  private openTotalPackets = 0;
  private openTotalBytes = 0;
  private closing: Promise<void> | undefined;
  /** scratch of summarizeOpen(), reused by every close */
  private groupers: Grouper[] | undefined;
  private flowPackets = new Float64Array(0);
  private flowBytes = new Float64Array(0);
  private readonly cache = new Map<string, TopAnswer>();
  /** closes so far; answers are cached per generation */
  generation = 0;
  /** timeline = mono() + origin: reads as the wall clock at construction */
  private readonly origin: number;
  private readonly mono: () => number;
  /** wall clock minus timeline, as last measured (changes when the wall clock steps) */
  private offset = 0;
  /** wall-clock steps seen */
  clockSteps = 0;
  /** called after a bucket closed: flow ids of that bucket are no longer read */
  onBucketClosed: () => void = () => {};

  constructor(
    readonly config: TopConfig,
    private readonly tuples: FlowTupleReaderWithIds,
    private readonly ifaceName: IfaceNamer,
    private readonly now: () => number = Date.now,
    /** the node of each flow slot (a relay's flows come from many nodes) */
    private readonly nodes: FlowNodeReader = singleNode(''),
    /** monotonic clock (ms) the buckets run on; default `now` (then wall steps are not seen: tests) */
    mono?: () => number,
  ) {
    if (!(config.bucketMs >= 1) || !(config.horizonMs >= config.bucketMs) || !(config.capacity >= 1)) {
      throw new RangeError(`bad top-talkers config ${JSON.stringify(config)}: need bucketMs >= 1, horizonMs >= bucketMs, capacity >= 1`);
    }
    this.mono = mono ?? now;
    this.origin = mono ? now() - mono() : 0;
  }

  /** The current time on the timeline. */
  timelineNow(): number {
    return this.mono() + this.origin;
  }

  /** Wall clock minus timeline now; follows steps of the wall clock, ignores sub-STEP_MS jitter. */
  wallOffset(): number {
    const measured = this.now() - this.timelineNow();
    if (Math.abs(measured - this.offset) >= STEP_MS) {
      this.offset = Math.round(measured);
      this.clockSteps++;
    }
    return this.offset;
  }

  /** A wall time taken recently, on the timeline, but not after its now. */
  private toTimeline(wallMs: number): number {
    return Math.min(wallMs - this.wallOffset(), this.timelineNow());
  }

  get bucketCount(): number {
    return this.closed.length;
  }

  /** Distinct group keys held by the closed buckets. */
  get keyCount(): number {
    return this.keyTable.size;
  }

  /**
   * Closes the open bucket if `nowMs` (a wall time, e.g. the drain's) is past
   * it on the timeline. Call once per poll.
   */
  async advance(nowMs: number): Promise<void> {
    if (this.closing) await this.closing;
    const epoch = Math.floor(this.toTimeline(nowMs) / this.config.bucketMs);
    if (this.openEpoch >= 0 && epoch > this.openEpoch) await this.closeOpen();
    if (this.openEpoch < epoch && this.touchedCount === 0) this.openEpoch = epoch;
  }

  /** Adds exported records to the bucket of their interval end. */
  async add(batch: RecordBatch): Promise<void> {
    await this.advance(batch.endMs);
    if (this.openEpoch < 0) this.openEpoch = Math.floor(this.toTimeline(batch.endMs) / this.config.bucketMs);
    const { flowId, packets, bytes } = batch;
    let maxId = 0;
    for (let i = 0; i < batch.count; i++) if (flowId[i] > maxId) maxId = flowId[i];
    if (maxId >= this.openPackets.length) {
      this.openPackets = growFloat64(this.openPackets, maxId + 1);
      this.openBytes = growFloat64(this.openBytes, maxId + 1);
      this.openMark = growUint8(this.openMark, maxId + 1);
    }
    for (let i = 0; i < batch.count; i++) {
      const id = flowId[i];
      if (this.openMark[id] === 0) {
        this.openMark[id] = 1;
        if (this.touchedCount === this.touched.length) this.touched = growUint32(this.touched, this.touchedCount + 1);
        this.touched[this.touchedCount++] = id;
      }
      this.openPackets[id] += packets[i];
      this.openBytes[id] += bytes[i];
      this.openTotalPackets += packets[i];
      this.openTotalBytes += bytes[i];
    }
  }

  private closeOpen(): Promise<void> {
    this.closing = this.summarizeOpen().finally(() => (this.closing = undefined));
    return this.closing;
  }

  /**
   * Groups the open bucket along every dimension and keeps the largest
   * groups. Time-sliced (a million flows take longer than a request should
   * wait); the closed bucket appears to queries at once, when complete.
   */
  private async summarizeOpen(): Promise<void> {
    const slicer = new Slicer();
    const n = this.touchedCount;
    const slots = this.touched;
    // Scratch kept across closes: a million flows' worth of fresh arrays per
    // close would cost page faults and GC work in the middle of the slices.
    const groupers = (this.groupers ??= TOP_DIMENSIONS.filter((d) => d !== 'flow').map((d) => new Grouper(d, this.tuples, this.nodes)));
    for (const g of groupers) g.reset(g.dim === 'pair' ? n : 0);
    for (let from = 0; from < n; from += CLOSE_CHUNK) {
      const to = Math.min(n, from + CLOSE_CHUNK);
      for (const g of groupers) g.addRange(slots, from, to, this.openPackets, this.openBytes);
      await slicer.check();
    }
    const dims = {} as Record<TopDimension, DimSummary>;
    for (const g of groupers) dims[g.dim] = await this.summarize(g.dim, g.count, g.packets, g.bytes, g.rep, slicer);
    if (this.flowPackets.length < n) {
      this.flowPackets = new Float64Array(n);
      this.flowBytes = new Float64Array(n);
    }
    const flowPackets = this.flowPackets;
    const flowBytes = this.flowBytes;
    for (let from = 0; from < n; from += CLOSE_CHUNK) {
      const to = Math.min(n, from + CLOSE_CHUNK);
      for (let i = from; i < to; i++) {
        flowPackets[i] = this.openPackets[slots[i]];
        flowBytes[i] = this.openBytes[slots[i]];
      }
      await slicer.check();
    }
    dims.flow = await this.summarize('flow', n, flowPackets, flowBytes, slots, slicer);
    this.closed.push({ epoch: this.openEpoch, packets: this.openTotalPackets, bytes: this.openTotalBytes, dims });
    this.expireOld();
    this.generation++;
    this.cache.clear();
    // add() waits for the close, so the open bucket is reset before anything is added to it.
    for (let from = 0; from < n; from += CLOSE_CHUNK) {
      const to = Math.min(n, from + CLOSE_CHUNK);
      for (let i = from; i < to; i++) {
        const slot = slots[i];
        this.openPackets[slot] = 0;
        this.openBytes[slot] = 0;
        this.openMark[slot] = 0;
      }
      await slicer.check();
    }
    this.touchedCount = 0;
    this.openTotalPackets = 0;
    this.openTotalBytes = 0;
    this.openEpoch = -1;
    this.onBucketClosed();
  }

  /** Keeps the `capacity` largest groups by bytes and by packets; `rep[i]` is a flow slot of group i. */
  private async summarize(dim: TopDimension, count: number, packets: Float64Array, bytes: Float64Array, rep: Uint32Array, slicer: Slicer): Promise<DimSummary> {
    const m = this.config.capacity;
    let kept: number[];
    if (count <= m) kept = Array.from({ length: count }, (_, i) => i);
    else {
      const byBytes = new TopKSelector(m, bytes);
      const byPackets = new TopKSelector(m, packets);
      for (let from = 0; from < count; from += CLOSE_CHUNK) {
        const to = Math.min(count, from + CLOSE_CHUNK);
        byBytes.offer(from, to);
        byPackets.offer(from, to);
        await slicer.check();
      }
      kept = [...new Set([...byBytes.result(), ...byPackets.result()])];
    }
    const summary: DimSummary = {
      keys: new Array<GroupKey>(kept.length),
      packets: new Float64Array(kept.length),
      bytes: new Float64Array(kept.length),
      groups: count,
    };
    for (let j = 0; j < kept.length; j++) {
      const g = kept[j];
      summary.keys[j] = this.acquireKey(dim, this.flowFields(rep[g]));
      summary.packets[j] = packets[g];
      summary.bytes[j] = bytes[g];
      if ((j & 127) === 127) await slicer.check();
    }
    return summary;
  }

  private flowFields(slot: number): FlowFields {
    const t = this.tuples;
    const meta = t.meta(slot);
    const ports = t.ports(slot);
    return {
      iface: this.ifaceName(t.ifindex(slot)),
      direction: metaDirectionCode(meta),
      family: metaFamily(meta),
      proto: metaProto(meta),
      icmpType: metaIcmpType(meta),
      icmpCode: metaIcmpCode(meta),
      sport: portsSport(ports),
      dport: portsDport(ports),
      src: t.srcText(slot),
      dst: t.dstText(slot),
      node: this.nodes.nodeName(slot),
      keyNode: this.nodes.many,
    };
  }

  private acquireKey(dim: TopDimension, f: FlowFields): GroupKey {
    const { id, key } = groupKeyOf(dim, f);
    let gk = this.keyTable.get(id);
    if (!gk) {
      gk = { id, key, refs: 0, flow: dim === 'flow' ? f : undefined };
      this.keyTable.set(id, gk);
    }
    gk.refs++;
    return gk;
  }

  private expireOld(): void {
    const keep = Math.ceil(this.config.horizonMs / this.config.bucketMs);
    while (this.closed.length > keep) {
      const old = this.closed.shift()!;
      for (const dim of TOP_DIMENSIONS) {
        for (const gk of old.dims[dim].keys) if (--gk.refs === 0) this.keyTable.delete(gk.id);
      }
    }
  }

  /** The top talkers for a query over the closed buckets of its window. */
  top(q: TopQuery): TopAnswer {
    const steps = this.query(q);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
    }
  }

  /**
   * top(), time-sliced: yields to the event loop every few ms, so a query
   * that merges many buckets (a filtered one tests every kept flow of the
   * window) does not hold HTTP requests and polls behind it.
   */
  async topSliced(q: TopQuery, slicer: Slicer = new Slicer()): Promise<TopAnswer> {
    const steps = this.query(q);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      await slicer.check();
    }
  }

  /** top() as steps: yields every QUERY_CHUNK groups merged. */
  private *query(q: TopQuery): Generator<void, TopAnswer, void> {
    const generation = this.generation;
    const g = this.config.bucketMs;
    // Buckets by the timeline; since/until (wall times) moved onto it, labels moved back.
    const offset = this.wallOffset();
    let lastEpoch = Math.floor(this.timelineNow() / g) - 1;
    if (q.filter.untilMs !== undefined) lastEpoch = Math.min(lastEpoch, Math.floor((q.filter.untilMs - offset) / g));
    let firstEpoch = lastEpoch - Math.max(1, Math.ceil(q.windowMs / g)) + 1;
    if (q.filter.sinceMs !== undefined) firstEpoch = Math.max(firstEpoch, Math.floor((q.filter.sinceMs - offset) / g));
    const cacheKey = `${q.by}|${q.metric}|${q.k}|${firstEpoch}|${lastEpoch}|${offset}|${filterCacheKey(q.filter)}`;
    const cached = this.cache.get(cacheKey);
    if (cached) return cached;
    const buckets = this.closed.filter((b) => b.epoch >= firstEpoch && b.epoch <= lastEpoch);
    const answer = hasKeyConditions(q.filter) ? yield* this.filteredTop(q, buckets) : yield* this.plainTop(q, buckets);
    if (buckets.length > 0) {
      answer.from = new Date(buckets[0].epoch * g + offset).toISOString();
      answer.to = new Date((buckets[buckets.length - 1].epoch + 1) * g + offset).toISOString();
    }
    // A bucket that closed while a sliced query ran may belong in its window: cache only a current answer.
    if (generation !== this.generation) return answer;
    if (this.cache.size >= 256) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(cacheKey, answer);
    return answer;
  }

  private *plainTop(q: TopQuery, buckets: ClosedBucket[]): Generator<void, TopAnswer, void> {
    const merged = new Merge();
    let totalPackets = 0;
    let totalBytes = 0;
    let exact = true;
    for (const b of buckets) {
      totalPackets += b.packets;
      totalBytes += b.bytes;
      const s = b.dims[q.by];
      if (s.groups > s.keys.length) exact = false;
      for (let j = 0; j < s.keys.length; j++) merged.add(s.keys[j].id, s.keys[j].key, s.packets[j], s.bytes[j]);
      yield;
    }
    return merged.answer(q, totalPackets, totalBytes, exact);
  }

  private *filteredTop(q: TopQuery, buckets: ClosedBucket[]): Generator<void, TopAnswer, void> {
    const merged = new Merge();
    const verdict = new Map<GroupKey, boolean>();
    let totalPackets = 0;
    let totalBytes = 0;
    let exact = true;
    for (const b of buckets) {
      const s = b.dims.flow;
      if (s.groups > s.keys.length) exact = false;
      for (let j = 0; j < s.keys.length; j++) {
        if ((j & (QUERY_CHUNK - 1)) === QUERY_CHUNK - 1) yield;
        const gk = s.keys[j];
        let ok = verdict.get(gk);
        if (ok === undefined) verdict.set(gk, (ok = matchesFlow(q.filter, gk.flow!)));
        if (!ok) continue;
        totalPackets += s.packets[j];
        totalBytes += s.bytes[j];
        const { id, key } = q.by === 'flow' ? gk : groupKeyOf(q.by, gk.flow!);
        merged.add(id, key, s.packets[j], s.bytes[j]);
      }
    }
    return merged.answer(q, totalPackets, totalBytes, exact);
  }
}

/** Sums groups across buckets by id. */
class Merge {
  private readonly index = new Map<string, number>();
  private readonly keys: GroupKeyFields[] = [];
  private readonly packets: number[] = [];
  private readonly bytes: number[] = [];

  add(id: string, key: GroupKeyFields, packets: number, bytes: number): void {
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.keys.length;
      this.index.set(id, i);
      this.keys.push(key);
      this.packets.push(0);
      this.bytes.push(0);
    }
    this.packets[i] += packets;
    this.bytes[i] += bytes;
  }

  answer(q: TopQuery, totalPackets: number, totalBytes: number, exact: boolean): TopAnswer {
    const values = q.metric === 'bytes' ? this.bytes : this.packets;
    const total = q.metric === 'bytes' ? totalBytes : totalPackets;
    const entries = topK(this.keys.length, q.k, (i) => values[i]).map((i) => ({
      key: this.keys[i],
      bytes: this.bytes[i],
      packets: this.packets[i],
      share: total > 0 ? values[i] / total : 0,
    }));
    return { entries, from: null, to: null, totalBytes, totalPackets, exact };
  }
}

/** Groups flow ids along one dimension into dense group indexes with exact sums. */
class Grouper {
  count = 0;
  packets = new Float64Array(1024);
  bytes = new Float64Array(1024);
  /** one flow id per group, to build the group's key from */
  rep = new Uint32Array(1024);
  private readonly index = new NumberIndex();

  constructor(
    readonly dim: Exclude<TopDimension, 'flow'>,
    private readonly tuples: FlowTupleReaderWithIds,
    private readonly nodes: FlowNodeReader,
  ) {}

  /**
   * Starts a new grouping, keeping the memory. `expected` groups (about one
   * per flow for pairs) fit without growing: growing a big index would hold
   * the event loop.
   */
  reset(expected: number): void {
    this.count = 0;
    this.index.clear(expected);
    if (expected > this.packets.length) {
      this.packets = new Float64Array(expected);
      this.bytes = new Float64Array(expected);
      this.rep = new Uint32Array(expected);
    }
  }

  /** A number identifying the flow's group in this dimension. */
  private groupNumber(slot: number): number {
    const t = this.tuples;
    switch (this.dim) {
      case 'src':
        return t.srcId(slot);
      case 'dst':
        return t.dstId(slot);
      case 'pair':
        // Unique while address ids stay below 2^26 (67M addresses).
        return t.srcId(slot) * 67_108_864 + t.dstId(slot);
      case 'sport':
        return portsSport(t.ports(slot));
      case 'dport':
        return portsDport(t.ports(slot));
      case 'proto':
        return metaProto(t.meta(slot));
      case 'iface':
        return t.ifindex(slot);
      case 'node':
        return this.nodes.nodeId(slot);
    }
  }

  addRange(slots: Uint32Array, from: number, to: number, packets: Float64Array, bytes: Float64Array): void {
    for (let i = from; i < to; i++) {
      const slot = slots[i];
      const n = this.groupNumber(slot);
      const g = this.index.idOf(n);
      if (g === this.count) {
        this.count++;
        if (g >= this.packets.length) {
          this.packets = growFloat64(this.packets, g + 1);
          this.bytes = growFloat64(this.bytes, g + 1);
          this.rep = growUint32(this.rep, g + 1);
        }
        this.rep[g] = slot;
        this.packets[g] = packets[slot];
        this.bytes[g] = bytes[slot];
      } else {
        this.packets[g] += packets[slot];
        this.bytes[g] += bytes[slot];
      }
    }
  }
}

/** The merge id and the answer key of a flow's group in a dimension. */
export function groupKeyOf(dim: TopDimension, f: FlowFields): { id: string; key: GroupKeyFields } {
  switch (dim) {
    case 'src':
      return { id: `s${f.src}`, key: { src: f.src } };
    case 'dst':
      return { id: `d${f.dst}`, key: { dst: f.dst } };
    case 'pair':
      return { id: `p${f.src} ${f.dst}`, key: { src: f.src, dst: f.dst } };
    case 'sport':
      return { id: `S${f.sport}`, key: { sport: f.sport } };
    case 'dport':
      return { id: `D${f.dport}`, key: { dport: f.dport } };
    case 'proto':
      return { id: `P${f.proto}`, key: { proto: protoName(f.proto) } };
    case 'iface':
      return { id: `i${f.iface}`, key: { iface: f.iface } };
    case 'node':
      return { id: `n${f.node}`, key: { node: f.node } };
    case 'flow': {
      const key: GroupKeyFields = {
        iface: f.iface,
        direction: f.direction === 1 ? 'egress' : 'ingress',
        family: f.family,
        src: f.src,
        dst: f.dst,
        proto: protoName(f.proto),
        sport: f.sport,
        dport: f.dport,
      };
      if (isIcmp(f.proto)) {
        key.icmpType = f.icmpType;
        key.icmpCode = f.icmpCode;
      }
      let id = `f${f.iface} ${f.direction} ${f.src} ${f.dst} ${f.proto} ${f.sport} ${f.dport} ${f.icmpType} ${f.icmpCode}`;
      // Across nodes (a relay), the same 5-tuple on two nodes is two flows.
      if (f.keyNode) {
        key.node = f.node;
        id += ` ${f.node}`;
      }
      return { id, key };
    }
  }
}

function filterCacheKey(f: FlowFilter): string {
  return [
    f.src ? formatPrefix(f.src) : '',
    f.dst ? formatPrefix(f.dst) : '',
    f.ip ? formatPrefix(f.ip) : '',
    f.port ?? '',
    f.sport ?? '',
    f.dport ?? '',
    f.proto ?? '',
    f.iface ?? '',
    f.direction ?? '',
    f.node ?? '',
  ].join(',');
}
