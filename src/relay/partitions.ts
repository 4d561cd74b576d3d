/**
 * Scale-out, part 2: a relay that reads only the partitions it owns
 * (membership.ts), each partition in a view of its own, and answers by
 * merging its partitions' answers (the same merge serves peers' answers).
 *
 * Why a view per partition: a partition's whole history lives in its current
 * owner. When a relay gains a partition it reads the partition's streams
 * from the start of the top-talkers horizon (replay) and then follows them,
 * through a consumer group of its own (`GROUP:RELAY`, so another relay's
 * reading never takes entries from it); when it loses the partition (a relay
 * joined and the partition moved there) it drops the partition's view
 * whole. The stream is the source of truth: what a dead relay held is read
 * again by the partition's next owner, and no relay's answer counts an entry
 * of a partition it does not own. Every entry is thus counted once in the
 * fleet's answer (the sum over the live relays of their partitions), once
 * the owners agree on the live set (within a heartbeat) and the new owner
 * has replayed.
 */
import type { FlowQueryService, InterfaceQueryService, TopQueryService } from '../api/queries.js';
import type { FlowFilter } from '../flow/filter.js';
import type { FlowRecord } from '../flow/record.js';
import type { FlowPage } from '../engine/record-store.js';
import type { TopAnswer, TopEntry, TopQuery } from '../engine/top/top-windows.js';
import type { RedisClient } from '../redis/connection.js';
import type { SinkLog } from '../redis/stream-sink.js';
import { FleetView, mergeFlowPages, type FleetViewOptions, type NodeInterfaceReport } from './fleet-view.js';

export { mergeFlowPages };
import { partitionOf, type Membership } from './membership.js';
import { StreamConsumer, type ConsumerOptions } from './stream-consumer.js';

export interface PartitionedFleetOptions {
  client: RedisClient;
  membership: Membership;
  /** the fleet's group name; this relay reads through `GROUP:ID` */
  group: string;
  view: FleetViewOptions;
  consumer?: Partial<Omit<ConsumerOptions, 'client' | 'view' | 'group' | 'consumer' | 'owns'>>;
  log?: SinkLog;
}

/** One partition's answer from the relay holding it. */
export interface PartitionAnswer<T> {
  partition: number;
  /** the holder has read the partition's history */
  caughtUp: boolean;
  answer: T;
}

interface Partition {
  index: number;
  view: FleetView;
  consumer: StreamConsumer;
}

export class PartitionedFleet implements FlowQueryService, TopQueryService, InterfaceQueryService {
  private readonly parts = new Map<number, Partition>();
  private syncing: Promise<void> = Promise.resolve();
  /** partitions gained and lost since start */
  gained = 0;
  lost = 0;
  readonly horizonMs: number;
  readonly bucketMs: number;
  readonly maxK: number;

  constructor(private readonly options: PartitionedFleetOptions) {
    // A throwaway view only for the resolved defaults the API reads.
    const probe = new FleetView(options.view);
    this.horizonMs = probe.horizonMs;
    this.bucketMs = probe.bucketMs;
    this.maxK = probe.maxK;
    options.membership.onChange = () => void this.sync();
    // a partition that moved is kept until its new owner says it has replayed it (checked at every heartbeat)
    options.membership.onBeat = () => void this.sync();
    options.membership.readyPartitions = () => [...this.parts.values()].filter((p) => p.consumer.caughtUp).map((p) => p.index);
  }

  get group(): string {
    return `${this.options.group}:${this.options.membership.id}`;
  }

  /** Partitions held (owned, or handed over and kept until the new owner has replayed them), ascending. */
  get owned(): number[] {
    return [...this.parts.keys()].sort((a, b) => a - b);
  }

  /** Partitions this relay owns in the live set, ascending. */
  get owns(): number[] {
    return this.options.membership.owned();
  }

  /** Every owned partition has read its history. */
  get caughtUp(): boolean {
    for (const p of this.parts.values()) if (!p.consumer.caughtUp) return false;
    return true;
  }

  /** Entries counted in the owned partitions' views. */
  get entries(): number {
    let n = 0;
    for (const p of this.parts.values()) n += p.view.entries;
    return n;
  }

  views(): FleetView[] {
    return [...this.parts.values()].map((p) => p.view);
  }

  consumers(): StreamConsumer[] {
    return [...this.parts.values()].map((p) => p.consumer);
  }

  /** Starts or drops partition readers to match the membership's ownership; resolves when done. */
  sync(): Promise<void> {
    this.syncing = this.syncing.then(() => this.apply());
    return this.syncing;
  }

  private async apply(): Promise<void> {
    const m = this.options.membership;
    const want = new Set(m.owned());
    for (const [index, p] of this.parts) {
      if (want.has(index)) continue;
      // Handover: kept (and answering, see peers.ts) until the new owner has replayed it; dropped at once when no one owns it.
      const owner = m.owner(index);
      if (owner !== undefined && !m.ready.get(owner)?.has(index)) continue;
      this.parts.delete(index);
      this.lost++;
      await p.consumer.stop();
      this.options.log?.info({ relay: m.id, partition: index, owner: m.owner(index) }, 'relay: partition moved to another relay; its view is dropped');
    }
    for (const index of want) {
      if (this.parts.has(index)) continue;
      const view = new FleetView(this.options.view);
      const consumer = new StreamConsumer({
        replayWindowMs: view.horizonMs,
        ...this.options.consumer,
        client: this.options.client,
        view,
        group: this.group,
        consumer: m.id,
        owns: (node) => partitionOf(node, m.partitions) === index,
        // the group is this relay's alone: nothing to keep pending (a restart replays from the stream)
        noAck: true,
        log: this.options.log,
      });
      this.parts.set(index, { index, view, consumer });
      this.gained++;
      consumer.start();
    }
  }

  async stop(): Promise<void> {
    await this.syncing;
    for (const p of this.parts.values()) await p.consumer.stop();
    this.parts.clear();
  }

  /** Each owned partition's answer, with whether it has read its history yet. */
  flowsByPartition(filter: FlowFilter, limit: number): PartitionAnswer<FlowPage>[] {
    return [...this.parts.values()].map((p) => ({ partition: p.index, caughtUp: p.consumer.caughtUp, answer: p.view.flows(filter, limit) }));
  }

  async topByPartition(q: TopQuery): Promise<PartitionAnswer<TopAnswer>[]> {
    const parts = [...this.parts.values()];
    const answers = await Promise.all(parts.map((p) => p.view.top({ ...q, k: this.maxK })));
    return parts.map((p, i) => ({ partition: p.index, caughtUp: p.consumer.caughtUp, answer: answers[i] }));
  }

  interfacesByPartition(): PartitionAnswer<NodeInterfaceReport[]>[] {
    return [...this.parts.values()].map((p) => ({ partition: p.index, caughtUp: p.consumer.caughtUp, answer: p.view.interfaces() }));
  }

  flows(filter: FlowFilter, limit: number): FlowPage {
    return mergeFlowPages(
      this.views().map((v) => v.flows(filter, limit)),
      limit,
    );
  }

  follow(filter: FlowFilter, onRecords: (records: FlowRecord[]) => void): () => void {
    // Follows the partitions owned now (a partition gained later is not followed by this client).
    const stops = this.views().map((v) => v.follow(filter, onRecords));
    return () => stops.forEach((s) => s());
  }

  async top(q: TopQuery): Promise<TopAnswer> {
    // Each partition is asked for as many entries as a query may have: a key spread over partitions is then summed whole unless a partition cut its list.
    const answers = await Promise.all(this.views().map((v) => v.top({ ...q, k: this.maxK })));
    return mergeTopAnswers(answers, q, this.maxK);
  }

  interfaces(): NodeInterfaceReport[] {
    return this.views()
      .flatMap((v) => v.interfaces())
      .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.ifindex - b.ifindex));
  }
}

/**
 * Top-talkers answers of disjoint sets of nodes as one: entries with the same
 * key summed, totals summed, shares of the merged totals, largest first, k
 * kept. Exact when every answer was exact and none was cut at `askedK` (a key
 * missing from a cut list may have been counted short). Bounds add up: a
 * key's upper bound is, per answer, its listed bound there or that answer's
 * bound for what it did not list; a key listed nowhere is at most the sum of
 * the answers' unlisted bounds.
 */
export function mergeTopAnswers(answers: TopAnswer[], q: TopQuery, askedK: number): TopAnswer {
  interface Merged { key: TopEntry['key']; bytes: number; packets: number; bytesMax: number; packetsMax: number; listedBy: Set<number> }
  const byKey = new Map<string, Merged>();
  let totalBytes = 0;
  let totalPackets = 0;
  let unlistedBytes = 0;
  let unlistedPackets = 0;
  let exact = true;
  let from: string | null = null;
  let to: string | null = null;
  const unlistedOf = answers.map((a) => unlistedBounds(a, q, askedK));
  answers.forEach((a, index) => {
    totalBytes += a.totalBytes;
    totalPackets += a.totalPackets;
    unlistedBytes += unlistedOf[index].bytes;
    unlistedPackets += unlistedOf[index].packets;
    if (!a.exact || a.entries.length >= askedK) exact = false;
    if (a.from !== null && (from === null || a.from < from)) from = a.from;
    if (a.to !== null && (to === null || a.to > to)) to = a.to;
    for (const e of a.entries) {
      const id = JSON.stringify(e.key, Object.keys(e.key).sort());
      let m = byKey.get(id);
      if (!m) byKey.set(id, (m = { key: e.key, bytes: 0, packets: 0, bytesMax: 0, packetsMax: 0, listedBy: new Set() }));
      m.bytes += e.bytes;
      m.packets += e.packets;
      m.bytesMax += e.bytesMax ?? e.bytes;
      m.packetsMax += e.packetsMax ?? e.packets;
      m.listedBy.add(index);
    }
  });
  // What each answer did not list may still belong to a key it did not list.
  for (const m of byKey.values()) {
    answers.forEach((a, index) => {
      if (m.listedBy.has(index)) return;
      m.bytesMax += unlistedOf[index].bytes;
      m.packetsMax += unlistedOf[index].packets;
    });
  }
  const metric = q.metric;
  const total = metric === 'bytes' ? totalBytes : totalPackets;
  const sorted = [...byKey.values()].sort((a, b) => b[metric] - a[metric] || (metric === 'bytes' ? b.packets - a.packets : b.bytes - a.bytes));
  let unlistedBytesMax = unlistedBytes;
  let unlistedPacketsMax = unlistedPackets;
  for (const m of sorted.slice(q.k)) {
    unlistedBytesMax = Math.max(unlistedBytesMax, m.bytesMax);
    unlistedPacketsMax = Math.max(unlistedPacketsMax, m.packetsMax);
  }
  const entries: TopEntry[] = sorted.slice(0, q.k).map((m) => ({
    key: m.key, bytes: m.bytes, packets: m.packets, share: total > 0 ? m[metric] / total : 0,
    bytesMax: finiteOr(m.bytesMax), packetsMax: finiteOr(m.packetsMax),
  }));
  return {
    entries, from, to, totalBytes, totalPackets, exact,
    unlistedBytesMax: finiteOr(unlistedBytesMax), unlistedPacketsMax: finiteOr(unlistedPacketsMax),
  };
}

/**
 * The most a key an answer did not list can have there. An answer from a
 * relay of an older version carries no bounds: when exact and not cut at
 * `askedK` nothing is missing; exact but cut, a missing key is at most its
 * smallest listed value of the ranked metric (the other metric is unbounded);
 * otherwise nothing is known.
 */
function unlistedBounds(a: TopAnswer, q: TopQuery, askedK: number): { bytes: number; packets: number } {
  if (a.unlistedBytesMax !== undefined && a.unlistedPacketsMax !== undefined) return { bytes: a.unlistedBytesMax, packets: a.unlistedPacketsMax };
  if (a.exact && a.entries.length < askedK) return { bytes: 0, packets: 0 };
  if (!a.exact) return { bytes: Infinity, packets: Infinity };
  const smallest = Math.min(...a.entries.map((e) => e[q.metric]));
  return q.metric === 'bytes' ? { bytes: smallest, packets: Infinity } : { bytes: Infinity, packets: smallest };
}

/** JSON has no Infinity: an unknown bound is reported as the largest number. */
const finiteOr = (v: number) => (Number.isFinite(v) ? v : Number.MAX_VALUE);
