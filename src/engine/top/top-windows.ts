/**
 * Top talkers over time-bucketed sliding windows.
 *
 * Records are added to an "open" bucket (bucketMs wide, aligned to the epoch)
 * as cheap per-flow sums indexed by flow id. When time moves past the bucket,
 * it is closed: its flows are grouped along every dimension (src, dst, pair,
 * flow, sport, dport, proto, iface, node, cgroup, workload) and, per
 * dimension, the `capacity` largest groups by bytes and the `capacity` largest
 * by packets are kept with their exact sums; of the rest, the bucket keeps
 * only how large the largest dropped group was and what they summed to.
 * Closed buckets are kept for `horizonMs`.
 *
 * A window covers (last poll - window, last poll]: the closed buckets it
 * overlaps and the open bucket up to the last poll. The open bucket is
 * summarized like a closed one, for the asked dimension only, once per poll
 * (answers are cached until the next add or poll), so an answer moves with
 * every poll instead of every bucket.
 *
 * Bounds. A query merges the summaries of the buckets in its window. When
 * every bucket kept all its groups, the answer is exact. Otherwise an
 * entry's value is a lower bound and its upper bound (`bytesMax`,
 * `packetsMax`) adds, for every bucket that dropped groups and did not keep
 * this one, the largest group that bucket dropped; a group not listed at all
 * is at most `unlistedBytesMax` / `unlistedPacketsMax`. So an entry whose
 * value is at least every bound below it is certainly ranked above them.
 *
 * Queries with key conditions (address, port, protocol, interface,
 * direction, cgroup, workload) are answered from the `flow` dimension: each
 * kept flow is tested against the filter and regrouped along the asked
 * dimension; then a dropped flow of a bucket may belong to any group, so a
 * bucket's slack is all it dropped.
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
import type { RecordBatch, IfaceNamer, CgroupLabeler } from '../../flow/record-batch.js';
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

/** A group's key fields; null stands for "none" (a flow without a local socket has no cgroup). */
export type GroupKeyFields = Record<string, string | number | null>;

/** A group's identity: `id` merges it across buckets, `key` is what the answer shows. */
interface GroupKey {
  readonly id: string;
  readonly key: GroupKeyFields;
  /** set on flow keys: what the filters test */
  readonly flow?: FlowFields;
  refs: number;
}

interface DimSummary {
  keys: GroupKey[];
  packets: Float64Array;
  bytes: Float64Array;
  /** distinct groups the bucket had in this dimension */
  groups: number;
  /** the largest packets and bytes of a group the bucket did not keep (0 when it kept all) */
  droppedMaxPackets: number;
  droppedMaxBytes: number;
  /** what the groups it did not keep summed to */
  droppedPackets: number;
  droppedBytes: number;
  /**
   * Per kept group, 1 when part of it was dropped: a flow that ended and came
   * back within the bucket has two slots, and only one may have been kept.
   */
  partial?: Uint8Array;
  /** flow dimension: the cgroup id each kept flow had in this bucket */
  cgroupIds?: Float64Array;
}

/** A bucket as queries see it: a closed one, or the open one summarized for one query. */
interface BucketView {
  epoch: number;
  packets: number;
  bytes: number;
  dim(d: TopDimension): DimSummary;
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
  /** upper bounds of the group's true sums (equal to bytes/packets when exact) */
  bytesMax: number;
  packetsMax: number;
}

export interface TopAnswer {
  entries: TopEntry[];
  /** ISO time bounds of what was merged: the first bucket's start, the last poll (or the last bucket's end); null when none */
  from: string | null;
  to: string | null;
  /** window totals (of the filtered flows when a filter is given; then lower bounds unless exact) */
  totalBytes: number;
  totalPackets: number;
  /** false when a bucket kept only its largest groups (entries are then lower bounds, see bytesMax/packetsMax) */
  exact: boolean;
  /** the most a group that is not listed can have, in bytes and in packets */
  unlistedBytesMax: number;
  unlistedPacketsMax: number;
}

/** Top talkers of a window, bucket by bucket (for a chart of the window over time). */
export interface TopSeries {
  bucketMs: number;
  /** epoch ms of each bucket's start, oldest first; the last may be the open bucket (partial) */
  times: number[];
  entries: { key: GroupKeyFields; values: number[] }[];
  /** per bucket: the bucket's total of the metric minus the listed entries */
  other: number[];
  exact: boolean;
}

/** Fields of a flow as a top-talker key, built from a flow id. */
type FlowFields = FilterableFlow & {
  family: 4 | 6; icmpType: number; icmpCode: number; node: string; keyNode: boolean;
  /** cgroup id (0: no local socket) and what it names, null when unknown */
  cgroupId: number; cgroup: string | null; workload: string | null;
};

/** flows (or groups) between two looks at the clock while a bucket closes; the close yields every few ms */
const CLOSE_CHUNK = 1024;

/** A difference between wall clock and timeline that changes by less than this is jitter, not a step. */
const STEP_MS = 500;

/** A monotonic clock in ms that reads as wall time at process start. */
export const monotonicNow = (): number => performance.timeOrigin + performance.now();
/** kept groups a query merges between two looks at the clock (topSliced); a power of two */
const QUERY_CHUNK = 512;
/** a query that a bucket close overtook this often is answered from what it has */
const MAX_QUERY_RESTARTS = 3;

/** The group number of "no cgroup" / "no workload". */
const NO_GROUP = 0;
/** How long a relay keeps an open-bucket summary while its bucket keeps changing, ms. */
const RELAY_OPEN_SUMMARY_MS = 1000;

export class TopWindows {
  private readonly keyTable = new Map<string, GroupKey>();
  private readonly closed: ClosedBucket[] = [];
  private openEpoch = -1;
  private openPackets = new Float64Array(0);
  private openBytes = new Float64Array(0);
  private openMark = new Uint8Array(0);
  /** cgroup id of each flow of the open bucket, as its records gave it (0: none) */
  private openCgroup = new Float64Array(0);
  private touched = new Uint32Array(1024);
  private touchedCount = 0;
  private openTotalPackets = 0;
  private openTotalBytes = 0;
  /** changes whenever the open bucket does: open summaries are cached per version */
  private openVersion = 0;
  /** set from the moment a closing bucket is in `closed` until the open arrays are reset */
  private openRetired = false;
  private openSummaries = new Map<TopDimension, DimSummary>();
  private openSummariesVersion = -1;
  /** the last poll (advance) on the timeline */
  private lastPoll = -Infinity;
  private closing: Promise<void> | undefined;
  /** scratch of summarizeOpen(), reused by every close */
  private groupers: Grouper[] | undefined;
  /** scratch of open summaries at query time (a close may be running with its own) */
  private queryGroupers = new Map<TopDimension, Grouper>();
  private flowPackets = new Float64Array(0);
  private flowBytes = new Float64Array(0);
  private keptMark = new Uint8Array(0);
  private readonly cache = new Map<string, TopAnswer>();
  private readonly answerIds = new WeakMap<TopAnswer, string[]>();
  /** names cgroup ids (the last labeler a batch brought) */
  private labels: CgroupLabeler | undefined;
  /** open summaries being computed, per dimension: a second query of the same dimension waits for the first */
  private readonly openInFlight = new Map<TopDimension, { version: number; summary: Promise<DimSummary> }>();
  /** when each cached open summary was made (timeline ms): a relay's bucket changes with every node's batch */
  private readonly openSummaryMadeAt = new Map<TopDimension, number>();
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
   * it on the timeline. Call once per poll: the windows then reach up to it.
   */
  async advance(nowMs: number): Promise<void> {
    if (this.closing) await this.closing;
    const t = this.toTimeline(nowMs);
    const epoch = Math.floor(t / this.config.bucketMs);
    if (this.openEpoch >= 0 && epoch > this.openEpoch) await this.closeOpen();
    if (this.openEpoch < epoch && this.touchedCount === 0) this.openEpoch = epoch;
    if (t > this.lastPoll) this.lastPoll = t;
  }

  /** Adds exported records to the bucket of their interval end. */
  async add(batch: RecordBatch): Promise<void> {
    await this.advance(batch.endMs);
    if (this.openEpoch < 0) this.openEpoch = Math.floor(this.toTimeline(batch.endMs) / this.config.bucketMs);
    if (batch.labels) this.labels = batch.labels;
    const { flowId, packets, bytes, cgroup } = batch;
    let maxId = 0;
    for (let i = 0; i < batch.count; i++) if (flowId[i] > maxId) maxId = flowId[i];
    if (maxId >= this.openPackets.length) {
      this.openPackets = growFloat64(this.openPackets, maxId + 1);
      this.openBytes = growFloat64(this.openBytes, maxId + 1);
      this.openMark = growUint8(this.openMark, maxId + 1);
      this.openCgroup = growFloat64(this.openCgroup, maxId + 1);
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
      if (cgroup[i] !== 0) this.openCgroup[id] = cgroup[i];
      this.openTotalPackets += packets[i];
      this.openTotalBytes += bytes[i];
    }
    if (batch.count > 0) this.openVersion++;
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
    const groupers = (this.groupers ??= TOP_DIMENSIONS.filter((d) => d !== 'flow').map((d) => this.newGrouper(d)));
    for (const g of groupers) g.reset(g.dim === 'pair' ? n : 0);
    for (let from = 0; from < n; from += CLOSE_CHUNK) {
      const to = Math.min(n, from + CLOSE_CHUNK);
      for (const g of groupers) g.addRange(slots, from, to, this.openPackets, this.openBytes);
      await slicer.check();
    }
    const dims = {} as Record<TopDimension, DimSummary>;
    for (const g of groupers) dims[g.dim] = await this.summarize(g.dim, g.count, g.packets, g.bytes, g.rep, slicer, true);
    const { packets, bytes } = this.flowSums(n);
    dims.flow = await this.summarize('flow', n, packets, bytes, slots, slicer, true);
    this.closed.push({ epoch: this.openEpoch, packets: this.openTotalPackets, bytes: this.openTotalBytes, dims });
    // From here on the bucket is answered from `closed`; the open arrays are being reset.
    this.openRetired = true;
    this.openVersion++;
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
        this.openCgroup[slot] = 0;
      }
      await slicer.check();
    }
    this.touchedCount = 0;
    this.openTotalPackets = 0;
    this.openTotalBytes = 0;
    this.openEpoch = -1;
    this.openRetired = false;
    this.openVersion++;
    this.onBucketClosed();
  }

  /** The open bucket's per-flow sums as dense arrays, in `touched` order. */
  private flowSums(n: number): { packets: Float64Array; bytes: Float64Array } {
    if (this.flowPackets.length < n) {
      this.flowPackets = new Float64Array(n);
      this.flowBytes = new Float64Array(n);
    }
    const slots = this.touched;
    for (let i = 0; i < n; i++) {
      this.flowPackets[i] = this.openPackets[slots[i]];
      this.flowBytes[i] = this.openBytes[slots[i]];
    }
    return { packets: this.flowPackets, bytes: this.flowBytes };
  }

  private newGrouper(dim: Exclude<TopDimension, 'flow'>): Grouper {
    return new Grouper(dim, this.tuples, this.nodes, (slot) => this.openCgroup[slot], (cgroupId) => this.labels?.(cgroupId), this.ifaceName);
  }

  /**
   * Keeps the `capacity` largest groups by bytes and by packets; `rep[i]` is
   * a flow slot of group i. `retain`: the keys are held by a closed bucket
   * (shared and counted in keyTable); otherwise they live for one query.
   */
  private async summarize(
    dim: TopDimension, count: number, packets: Float64Array, bytes: Float64Array, rep: Uint32Array, slicer: Slicer | undefined, retain: boolean,
  ): Promise<DimSummary> {
    const m = this.config.capacity;
    let kept: number[];
    let droppedMaxPackets = 0;
    let droppedMaxBytes = 0;
    let droppedPackets = 0;
    let droppedBytes = 0;
    if (count <= m) kept = Array.from({ length: count }, (_, i) => i);
    else {
      const byBytes = new TopKSelector(m, bytes);
      const byPackets = new TopKSelector(m, packets);
      for (let from = 0; from < count; from += CLOSE_CHUNK) {
        const to = Math.min(count, from + CLOSE_CHUNK);
        byBytes.offer(from, to);
        byPackets.offer(from, to);
        await slicer?.check();
      }
      kept = [...new Set([...byBytes.result(), ...byPackets.result()])];
      if (this.keptMark.length < count) this.keptMark = new Uint8Array(count);
      const mark = this.keptMark;
      for (const g of kept) mark[g] = 1;
      for (let g = 0; g < count; g++) {
        if (mark[g] === 1) {
          mark[g] = 0;
          continue;
        }
        droppedPackets += packets[g];
        droppedBytes += bytes[g];
        if (packets[g] > droppedMaxPackets) droppedMaxPackets = packets[g];
        if (bytes[g] > droppedMaxBytes) droppedMaxBytes = bytes[g];
      }
    }
    // Kept groups with one key (a flow's two slots) become one entry.
    const ids = new Map<string, number>();
    const keys: GroupKey[] = [];
    const keptPackets: number[] = [];
    const keptBytes: number[] = [];
    const cgroupIds: number[] = [];
    for (let j = 0; j < kept.length; j++) {
      const g = kept[j];
      const fields = this.flowFields(rep[g]);
      const { id } = groupKeyOf(dim, fields);
      const at = ids.get(id);
      if (at !== undefined) {
        keptPackets[at] += packets[g];
        keptBytes[at] += bytes[g];
      } else {
        ids.set(id, keys.length);
        keys.push(retain ? this.acquireKey(dim, fields) : transientKey(dim, fields));
        keptPackets.push(packets[g]);
        keptBytes.push(bytes[g]);
        cgroupIds.push(fields.cgroupId);
      }
      if ((j & 127) === 127) await slicer?.check();
    }
    const summary: DimSummary = {
      keys,
      packets: Float64Array.from(keptPackets),
      bytes: Float64Array.from(keptBytes),
      groups: count,
      droppedMaxPackets, droppedMaxBytes, droppedPackets, droppedBytes,
    };
    if (dim === 'flow') {
      summary.cgroupIds = Float64Array.from(cgroupIds);
      if (count > kept.length) summary.partial = await this.partialFlows(kept, count, rep, ids, slicer);
    }
    return summary;
  }

  /**
   * Which kept flows lost part of their sum to the dropped ones: a flow that
   * ended and came back within the bucket has two slots with one key. Dropped
   * slots are matched against the kept ones by a cheap fingerprint first, and
   * by key only when it collides.
   */
  private async partialFlows(kept: number[], count: number, rep: Uint32Array, ids: Map<string, number>, slicer: Slicer | undefined): Promise<Uint8Array | undefined> {
    const fingerprints = new Set<number>();
    for (const g of kept) fingerprints.add(this.flowFingerprint(rep[g]));
    // Its own marks: this runs in slices, and another summary may use the shared scratch meanwhile.
    const mark = new Uint8Array(count);
    for (const g of kept) mark[g] = 1;
    let partial: Uint8Array | undefined;
    for (let from = 0; from < count; from += CLOSE_CHUNK) {
      const to = Math.min(count, from + CLOSE_CHUNK);
      for (let g = from; g < to; g++) {
        if (mark[g] === 1 || !fingerprints.has(this.flowFingerprint(rep[g]))) continue;
        const at = ids.get(groupKeyOf('flow', this.flowFields(rep[g])).id);
        if (at !== undefined) (partial ??= new Uint8Array(ids.size))[at] = 1;
      }
      await slicer?.check();
    }
    return partial;
  }

  /** A hash of a slot's flow identity (equal keys, equal fingerprints). */
  private flowFingerprint(slot: number): number {
    const t = this.tuples;
    let h = Math.imul(t.ifindex(slot) ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ t.meta(slot), 0xc2b2ae35);
    h = Math.imul(h ^ t.ports(slot), 0x85ebca6b);
    h = Math.imul(h ^ t.srcId(slot), 0xc2b2ae35);
    h = Math.imul(h ^ t.dstId(slot), 0x85ebca6b);
    return (h ^ this.nodes.nodeId(slot)) >>> 0;
  }

  /**
   * The open bucket summarized along one dimension, as a close would; cached
   * until the bucket changes, and shared by the queries that ask meanwhile.
   * Sliced like a close (a million flows take tens of ms); when records
   * arrive between slices it starts over (a relay, whose bucket changes with
   * every node's batch, instead reads it as it fills and keeps the summary
   * for a second); after a few tries, or when the query is unsliced, it runs
   * in one go.
   */
  private async openSummary(dim: TopDimension, slicer: Slicer | undefined): Promise<DimSummary> {
    const relay = this.nodes.many;
    if (this.openSummariesVersion !== this.openVersion) {
      const fresh = relay && !this.openRetired;
      if (!fresh) this.openSummaries.clear();
      else for (const [d, at] of this.openSummaryMadeAt) if (this.timelineNow() - at >= RELAY_OPEN_SUMMARY_MS) this.openSummaries.delete(d);
      this.openSummariesVersion = this.openVersion;
    }
    const cached = this.openSummaries.get(dim);
    if (cached) return cached;
    const inFlight = this.openInFlight.get(dim);
    if (inFlight && (inFlight.version === this.openVersion || relay)) return inFlight.summary;
    const version = this.openVersion;
    const summary = this.computeOpenSummary(dim, slicer).finally(() => {
      if (this.openInFlight.get(dim)?.summary === summary) this.openInFlight.delete(dim);
    });
    this.openInFlight.set(dim, { version, summary });
    const done = await summary;
    this.openSummaries.set(dim, done);
    this.openSummaryMadeAt.set(dim, this.timelineNow());
    return done;
  }

  private async computeOpenSummary(dim: TopDimension, slicer: Slicer | undefined): Promise<DimSummary> {
    const restartOnChange = !this.nodes.many;
    for (let attempt = 0; ; attempt++) {
      const version = this.openVersion;
      const sliced = attempt < MAX_QUERY_RESTARTS ? slicer : undefined;
      const changed = () => this.openRetired || (restartOnChange && version !== this.openVersion);
      if (this.openRetired) return emptySummary();
      const n = this.touchedCount;
      let summary: DimSummary;
      if (dim === 'flow') {
        const { packets, bytes } = this.flowSums(n);
        summary = await this.summarize('flow', n, packets, bytes, this.touched, sliced, false);
      } else {
        let g = this.queryGroupers.get(dim);
        if (!g) this.queryGroupers.set(dim, (g = this.newGrouper(dim)));
        // Pairs are about one per flow: sized up front, as a close does (growing a big index would hold the event loop).
        g.reset(dim === 'pair' ? n : 0);
        for (let from = 0; from < n && !changed(); from += CLOSE_CHUNK) {
          g.addRange(this.touched, from, Math.min(n, from + CLOSE_CHUNK), this.openPackets, this.openBytes);
          await sliced?.check();
        }
        if (changed()) continue;
        summary = await this.summarize(dim, g.count, g.packets, g.bytes, g.rep, sliced, false);
      }
      if (changed()) continue;
      return summary;
    }
  }

  private flowFields(slot: number): FlowFields {
    const t = this.tuples;
    const meta = t.meta(slot);
    const ports = t.ports(slot);
    const cgroupId = this.openCgroup[slot] ?? 0;
    const label = cgroupId !== 0 ? this.labels?.(cgroupId) : undefined;
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
      cgroupId,
      cgroup: label?.path ?? null,
      workload: label?.workload ?? null,
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

  /** The top talkers for a query over the buckets of its window. */
  async top(q: TopQuery): Promise<TopAnswer> {
    return this.run(q, undefined);
  }

  /**
   * top(), time-sliced: yields to the event loop every few ms, so a query
   * that merges many buckets (a filtered one tests every kept flow of the
   * window) does not hold HTTP requests and polls behind it.
   */
  async topSliced(q: TopQuery, slicer: Slicer = new Slicer()): Promise<TopAnswer> {
    return this.run(q, slicer);
  }

  /**
   * The window's top k groups bucket by bucket: the entries of top(q), and
   * per bucket what each had and what the rest had. Values are lower bounds
   * where the answer is not exact.
   */
  async series(q: TopQuery, slicer: Slicer = new Slicer()): Promise<TopSeries> {
    for (let attempt = 0; ; attempt++) {
      const generation = this.generation;
      const version = this.openVersion;
      const answer = await this.topSliced(q, slicer);
      const span = this.span(q);
      const buckets = await this.bucketsOf(span, q, slicer);
      const listed = new Map<string, number>();
      (this.answerIds.get(answer) ?? []).forEach((id, i) => listed.set(id, i));
      const values = answer.entries.map(() => new Array<number>(buckets.length).fill(0));
      const other: number[] = [];
      const verdicts = new Map<GroupKey | string, boolean>();
      for (let b = 0; b < buckets.length; b++) {
        let listedSum = 0;
        const total = this.visitBucket(q, buckets[b], (id, _key, packets, bytes) => {
          const i = listed.get(id);
          if (i === undefined) return;
          const v = q.metric === 'bytes' ? bytes : packets;
          values[i][b] += v;
          listedSum += v;
        }, verdicts);
        other.push((q.metric === 'bytes' ? total.bytes : total.packets) - listedSum);
        await slicer.check();
      }
      // The entries were chosen from one state of the buckets; their values must come from the same.
      const moved = generation !== this.generation || (version !== this.openVersion && !this.nodes.many);
      if (moved && attempt < MAX_QUERY_RESTARTS) continue;
      return {
        bucketMs: this.config.bucketMs,
        times: buckets.map((b) => b.epoch * this.config.bucketMs + span.offset),
        entries: answer.entries.map((e, i) => ({ key: e.key, values: values[i] })),
        other,
        exact: answer.exact,
      };
    }
  }

  /** The buckets a query's window covers, and where it ends. */
  private span(q: TopQuery): { firstEpoch: number; lastEpoch: number; withOpen: boolean; to: number; offset: number } {
    const g = this.config.bucketMs;
    // Buckets by the timeline; since/until (wall times) moved onto it, labels moved back.
    const offset = this.wallOffset();
    let to = Number.isFinite(this.lastPoll) ? this.lastPoll : this.timelineNow();
    let lastEpoch = Math.floor(to / g);
    if (q.filter.untilMs !== undefined) {
      const until = q.filter.untilMs - offset;
      if (until < to) {
        to = until;
        lastEpoch = Math.floor(until / g);
      }
    }
    let firstEpoch = Math.floor((to - q.windowMs) / g);
    if (q.windowMs <= 0) firstEpoch = lastEpoch;
    if (q.filter.sinceMs !== undefined) firstEpoch = Math.max(firstEpoch, Math.floor((q.filter.sinceMs - offset) / g));
    const withOpen = this.openEpoch >= 0 && !this.openRetired && this.openEpoch >= firstEpoch && this.openEpoch <= lastEpoch;
    return { firstEpoch, lastEpoch, withOpen, to, offset };
  }

  /** The closed buckets of a span, then the open one (summarized on demand). */
  private async bucketsOf(span: ReturnType<TopWindows['span']>, q: TopQuery, slicer: Slicer | undefined): Promise<BucketView[]> {
    const views: BucketView[] = this.closed
      .filter((b) => b.epoch >= span.firstEpoch && b.epoch <= span.lastEpoch)
      .map((b) => ({ epoch: b.epoch, packets: b.packets, bytes: b.bytes, dim: (d) => b.dims[d] }));
    if (span.withOpen) {
      const dim = hasKeyConditions(q.filter) ? 'flow' : q.by;
      const summary = await this.openSummary(dim, slicer);
      views.push({ epoch: this.openEpoch, packets: this.openTotalPackets, bytes: this.openTotalBytes, dim: () => summary });
    }
    return views;
  }

  private async run(q: TopQuery, slicer: Slicer | undefined): Promise<TopAnswer> {
    for (let attempt = 0; ; attempt++) {
      const generation = this.generation;
      const span = this.span(q);
      const cacheKey = `${q.by}|${q.metric}|${q.k}|${span.firstEpoch}|${span.lastEpoch}|${span.withOpen ? this.openVersion : ''}|${span.to}|${span.offset}|${filterCacheKey(q.filter)}`;
      const cached = this.cache.get(cacheKey);
      if (cached) return cached;
      // The last try runs in one go: nothing can close or arrive in the middle of it.
      const sliceNow = attempt < MAX_QUERY_RESTARTS ? slicer : undefined;
      const buckets = await this.bucketsOf(span, q, sliceNow);
      const merged = new Merge();
      const filtered = hasKeyConditions(q.filter);
      const verdicts = new Map<GroupKey | string, boolean>();
      let visited = 0;
      for (const b of buckets) {
        const total = this.visitBucket(q, b, (id, key, packets, bytes, exact) => {
          merged.add(id, key, packets, bytes, exact);
          visited++;
        }, verdicts);
        merged.addTotals(total.packets, total.bytes);
        const s = b.dim(filtered ? 'flow' : q.by);
        // A group of the asked dimension is at most the largest dropped one; regrouped from flows, it may be all that was dropped.
        if (!filtered || q.by === 'flow') merged.addSlack(s.droppedMaxPackets, s.droppedMaxBytes, true);
        else merged.addSlack(s.droppedPackets, s.droppedBytes, false);
        if (visited >= QUERY_CHUNK) {
          visited = 0;
          await sliceNow?.check();
        }
      }
      // A bucket that closed meanwhile may have moved data between the open bucket and `closed`: start again.
      if (generation !== this.generation && attempt < MAX_QUERY_RESTARTS) continue;
      const { answer, ids } = merged.answer(q);
      this.answerIds.set(answer, ids);
      if (buckets.length > 0) {
        const g = this.config.bucketMs;
        const lastEnd = (buckets[buckets.length - 1].epoch + 1) * g;
        answer.from = new Date(buckets[0].epoch * g + span.offset).toISOString();
        answer.to = new Date(Math.min(span.to, lastEnd) + span.offset).toISOString();
      }
      if (generation !== this.generation) return answer;
      if (this.cache.size >= 256) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(cacheKey, answer);
      return answer;
    }
  }

  /**
   * Calls `visit` for every group of bucket `b` that the query counts
   * (filtered: every kept flow that matches, regrouped), with `exact` true
   * when the group's sum in this bucket is complete. Returns the bucket's
   * totals as the query sees them.
   */
  private visitBucket(
    q: TopQuery, b: BucketView, visit: (id: string, key: GroupKeyFields, packets: number, bytes: number, exact: boolean) => void,
    /** the filter's verdict per flow key (and cgroup, when attribution is asked), shared by the buckets of one query */
    verdicts: Map<GroupKey | string, boolean>,
  ): { packets: number; bytes: number } {
    if (!hasKeyConditions(q.filter)) {
      const s = b.dim(q.by);
      for (let j = 0; j < s.keys.length; j++) visit(s.keys[j].id, s.keys[j].key, s.packets[j], s.bytes[j], s.partial?.[j] !== 1);
      return { packets: b.packets, bytes: b.bytes };
    }
    const s = b.dim('flow');
    // A flow's cgroup is the one it had in this bucket (a flow key lives across buckets; its socket may not).
    const attribution = q.filter.cgroup !== undefined || q.filter.workload !== undefined || q.by === 'cgroup' || q.by === 'workload';
    let packets = 0;
    let bytes = 0;
    for (let j = 0; j < s.keys.length; j++) {
      const gk = s.keys[j];
      let flow = gk.flow!;
      let memo: GroupKey | string = gk;
      if (attribution) {
        const cgroupId = s.cgroupIds?.[j] ?? 0;
        if (cgroupId !== flow.cgroupId) {
          const label = cgroupId !== 0 ? this.labels?.(cgroupId) : undefined;
          flow = { ...flow, cgroupId, cgroup: label?.path ?? null, workload: label?.workload ?? null };
          memo = `${gk.id}\u0000${cgroupId}`;
        }
      }
      let ok = verdicts.get(memo);
      if (ok === undefined) verdicts.set(memo, (ok = matchesFlow(q.filter, flow)));
      if (!ok) continue;
      packets += s.packets[j];
      bytes += s.bytes[j];
      const { id, key } = q.by === 'flow' ? gk : groupKeyOf(q.by, flow);
      visit(id, key, s.packets[j], s.bytes[j], q.by === 'flow' && s.partial?.[j] !== 1);
    }
    return { packets, bytes };
  }
}

/**
 * Sums groups across buckets by id, with the bounds: `slack` is what the
 * buckets that dropped groups may hide from any one group; a group kept
 * (complete) in a bucket is exact there, so that bucket's slack is
 * `covered` for it.
 */
class Merge {
  private readonly index = new Map<string, number>();
  private readonly keys: GroupKeyFields[] = [];
  private readonly packets: number[] = [];
  private readonly bytes: number[] = [];
  private readonly coveredPackets: number[] = [];
  private readonly coveredBytes: number[] = [];
  private slackPackets = 0;
  private slackBytes = 0;
  /** groups the current bucket held completely (added since the last addSlack()), each once */
  private readonly pending: number[] = [];
  private readonly pendingMark: number[] = [];
  private bucketSerial = 1;
  private totalPackets = 0;
  private totalBytes = 0;

  add(id: string, key: GroupKeyFields, packets: number, bytes: number, complete: boolean): void {
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.keys.length;
      this.index.set(id, i);
      this.keys.push(key);
      this.packets.push(0);
      this.bytes.push(0);
      this.coveredPackets.push(0);
      this.coveredBytes.push(0);
      this.pendingMark.push(0);
    }
    this.packets[i] += packets;
    this.bytes[i] += bytes;
    if (complete && this.pendingMark[i] !== this.bucketSerial) {
      this.pendingMark[i] = this.bucketSerial;
      this.pending.push(i);
    }
  }

  /** Closes a bucket: its slack, covered for the groups it held completely (when `coverable`). */
  addSlack(packets: number, bytes: number, coverable: boolean): void {
    this.slackPackets += packets;
    this.slackBytes += bytes;
    if (coverable && (packets > 0 || bytes > 0)) {
      for (const i of this.pending) {
        this.coveredPackets[i] += packets;
        this.coveredBytes[i] += bytes;
      }
    }
    this.pending.length = 0;
    this.bucketSerial++;
  }

  addTotals(packets: number, bytes: number): void {
    this.totalPackets += packets;
    this.totalBytes += bytes;
  }

  /** The answer, and the merge ids of its entries (series() looks them up per bucket). */
  answer(q: TopQuery): { answer: TopAnswer; ids: string[] } {
    const values = q.metric === 'bytes' ? this.bytes : this.packets;
    const total = q.metric === 'bytes' ? this.totalBytes : this.totalPackets;
    const chosen = topK(this.keys.length, q.k, (i) => values[i]);
    const listed = new Set(chosen);
    const packetsMax = (i: number) => this.packets[i] + this.slackPackets - this.coveredPackets[i];
    const bytesMax = (i: number) => this.bytes[i] + this.slackBytes - this.coveredBytes[i];
    // A group never kept by any bucket may hold up to the whole slack; one kept somewhere, up to its own bound.
    let unlistedPacketsMax = this.slackPackets;
    let unlistedBytesMax = this.slackBytes;
    for (let i = 0; i < this.keys.length; i++) {
      if (listed.has(i)) continue;
      unlistedPacketsMax = Math.max(unlistedPacketsMax, packetsMax(i));
      unlistedBytesMax = Math.max(unlistedBytesMax, bytesMax(i));
    }
    const entries = chosen.map((i) => ({
      key: this.keys[i],
      bytes: this.bytes[i],
      packets: this.packets[i],
      share: total > 0 ? values[i] / total : 0,
      bytesMax: bytesMax(i),
      packetsMax: packetsMax(i),
    }));
    const ids = [...this.index.keys()];
    return {
      answer: {
        entries, from: null, to: null,
        totalBytes: this.totalBytes, totalPackets: this.totalPackets,
        exact: this.slackPackets === 0 && this.slackBytes === 0,
        unlistedBytesMax, unlistedPacketsMax,
      },
      ids: chosen.map((i) => ids[i]),
    };
  }
}

/** The open bucket's summary once it closed (the closed bucket answers for it). */
function emptySummary(): DimSummary {
  return { keys: [], packets: new Float64Array(0), bytes: new Float64Array(0), groups: 0, droppedMaxPackets: 0, droppedMaxBytes: 0, droppedPackets: 0, droppedBytes: 0 };
}

/**
 * A bucket summary's key that no closed bucket holds: the open bucket's,
 * built per query and dropped with it.
 */
function transientKey(dim: TopDimension, f: FlowFields): GroupKey {
  const { id, key } = groupKeyOf(dim, f);
  return { id, key, refs: 0, flow: dim === 'flow' ? f : undefined };
}

/**
 * Groups flow ids along one dimension into dense group indexes with exact
 * sums. A group is exactly one answer key: interfaces by name (an interface
 * recreated under its name has a new index), cgroups by path (two ids of one
 * path, e.g. two nodes' nginx.service on a relay, are one group), workloads
 * by label.
 */
class Grouper {
  count = 0;
  packets = new Float64Array(1024);
  bytes = new Float64Array(1024);
  /** one flow id per group, to build the group's key from */
  rep = new Uint32Array(1024);
  private readonly index = new NumberIndex();
  /** per grouping: an interface index or cgroup id -> the number of its name, and names -> numbers */
  private readonly numberOf = new Map<number, number>();
  private readonly names = new Map<string, number>();

  constructor(
    readonly dim: Exclude<TopDimension, 'flow'>,
    private readonly tuples: FlowTupleReaderWithIds,
    private readonly nodes: FlowNodeReader,
    /** the cgroup id of a flow slot in the open bucket, and what it names */
    private readonly cgroupOf: (slot: number) => number,
    private readonly labelOf: (cgroupId: number) => { path: string; workload: string } | undefined,
    private readonly ifaceName: IfaceNamer,
  ) {}

  /**
   * Starts a new grouping, keeping the memory. `expected` groups (about one
   * per flow for pairs) fit without growing: growing a big index would hold
   * the event loop.
   */
  reset(expected: number): void {
    this.count = 0;
    this.index.clear(expected);
    this.numberOf.clear();
    this.names.clear();
    if (expected > this.packets.length) {
      this.packets = new Float64Array(expected);
      this.bytes = new Float64Array(expected);
      this.rep = new Uint32Array(expected);
    }
  }

  private intern(name: string): number {
    let n = this.names.get(name);
    if (n === undefined) this.names.set(name, (n = this.names.size + 1));
    return n;
  }

  /** The number of what `id` names, computed once per grouping. */
  private named(id: number, name: (id: number) => string | undefined): number {
    let n = this.numberOf.get(id);
    if (n === undefined) {
      const text = name(id);
      this.numberOf.set(id, (n = text === undefined ? NO_GROUP : this.intern(text)));
    }
    return n;
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
        return this.named(t.ifindex(slot), this.ifaceName);
      case 'node':
        return this.nodes.nodeId(slot);
      case 'cgroup': {
        const id = this.cgroupOf(slot);
        // A cgroup whose path can't be read is a group of its own, never "none".
        return id === 0 ? NO_GROUP : this.named(id, (c) => { const path = this.labelOf(c)?.path; return path !== undefined ? `p${path}` : `#${c}`; });
      }
      case 'workload': {
        const id = this.cgroupOf(slot);
        return id === 0 ? NO_GROUP : this.named(id, (c) => this.labelOf(c)?.workload);
      }
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
    case 'cgroup':
      // A cgroup whose path could not be read is its id, never "none" (that is for flows without a local socket).
      if (f.cgroup !== null) return { id: `c${f.cgroup}`, key: { cgroup: f.cgroup } };
      return f.cgroupId === 0 ? { id: 'c', key: { cgroup: null } } : { id: `c#${f.cgroupId}`, key: { cgroup: null, cgroupId: f.cgroupId } };
    case 'workload':
      return { id: `w${f.workload ?? ''}`, key: { workload: f.workload } };
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
    f.cgroup ?? '',
    f.workload ?? '',
  ].join('\u0000');
}
