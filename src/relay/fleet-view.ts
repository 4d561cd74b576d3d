/**
 * The fleet as the relay sees it: the records of every node read from Redis,
 * kept in the service's own structures so that the HTTP API is answered by
 * the same code as on an agent:
 *
 * - one RecordStore per node (a store is one node's ring; /flows merges the
 *   stores' answers newest first, `node=` picks stores);
 * - one TopWindows over all nodes, fed by slot through a RelayFlowTable, with
 *   the `node` dimension and filter;
 * - each node's per-interface counters, as its agent published them.
 *
 * Entries arrive as decoded stream entries; consecutive entries of one node
 * and one export interval become one RecordBatch, which is what the store
 * and the top windows take.
 */
import { AddressTable } from '../flow/address-table.js';
import type { FlowFilter } from '../flow/filter.js';
import type { InterfaceReport } from '../engine/interface-accounting.js';
import type { FlowQueryService, InterfaceQueryService, TopQueryService } from '../api/queries.js';
import type { FlowRecord } from '../flow/record.js';
import { RecordBatch } from '../flow/record-batch.js';
import { RecordStore, type FlowPage } from '../engine/record-store.js';
import { DEFAULT_TOP, monotonicNow, TopWindows, type TopAnswer, type TopConfig, type TopQuery, type TopSeries } from '../engine/top/top-windows.js';
import type { DecodedEntry } from '../redis/entry-encoding.js';
import { DecodedRows } from '../redis/entry-decoder.js';
import { RelayFlowTable } from './relay-flow-table.js';
import { FleetCgroupIds, NodeCgroupLabels } from './cgroup-labels.js';

export interface FleetViewOptions {
  /** records kept per node for /api/v1/flows */
  storeSize: number;
  top?: Partial<TopConfig>;
  maxTopK?: number;
  /** flow slots unused this long are forgotten */
  flowIdleMs?: number;
  /** wall clock (default Date.now) */
  clock?: () => number;
  /**
   * monotonic clock (ms) for the top-talkers buckets and slot expiry; default
   * a real one, or `clock` when only that is given (tests drive one clock)
   */
  monoClock?: () => number;
}

/** A node's interface counters as its agent published them, with the node name. */
export type NodeInterfaceReport = InterfaceReport & { node: string; at?: string };

export class NodeView {
  readonly store: RecordStore;
  readonly ifaceNames = new Map<number, string>();
  /** virtual interface index (fleet-wide) by this node's ifindex */
  readonly vifOf = new Map<number, number>();
  /** what the node's cgroup ids stand for, as its entries said (attribution) */
  readonly labels: NodeCgroupLabels;
  /** the fleet numbers of this node's cgroup ids (FleetCgroupIds) */
  readonly cgroupNumbers = new Map<number, number>();
  interfaces: NodeInterfaceReport[] = [];
  entries = 0;
  lastId: string | null = null;
  lastRecordEndMs: number | null = null;
  /** the latest end of any record written (entries may come out of time order): bounds what the store holds */
  newestEndMs = -Infinity;

  constructor(
    readonly name: string,
    readonly id: number,
    addresses: AddressTable,
    storeSize: number,
  ) {
    const namer = (ifindex: number): string => this.ifaceNames.get(ifindex) ?? `if${ifindex}`;
    // The store's columns grow with the node's records (up to storeSize): an idle node costs a few kB, not MBs.
    this.store = new RecordStore(storeSize, addresses, namer, name, STORE_INITIAL_ROWS);
    this.labels = new NodeCgroupLabels(() => this.store.oldestSeq);
    this.store.labels = this.labels.lookup;
  }
}

const BATCH_CAPACITY = 4096;
/** rows a node's store starts with; it doubles as records come */
const STORE_INITIAL_ROWS = 16;

interface Follower {
  filter: FlowFilter;
  onRecords: (records: FlowRecord[]) => void;
  stops: (() => void)[];
}

export class FleetView implements FlowQueryService, TopQueryService, InterfaceQueryService {
  readonly addresses = new AddressTable();
  readonly nodes = new Map<string, NodeView>();
  private readonly nodeNames: string[] = [];
  private readonly vifNames: string[] = [];
  readonly flows_: RelayFlowTable;
  readonly topWindows: TopWindows;
  readonly maxK: number;
  private readonly clock: () => number;
  private readonly followers = new Set<Follower>();
  /** record batches not in use (ingest() of several nodes may overlap) */
  private readonly batches: RecordBatch[] = [];
  /** (node, cgroup id) as fleet-wide numbers, for the top-talkers windows */
  readonly cgroupIds = new FleetCgroupIds();
  entries = 0;

  constructor(readonly options: FleetViewOptions) {
    this.clock = options.clock ?? Date.now;
    this.maxK = options.maxTopK ?? 1000;
    this.flows_ = new RelayFlowTable(this.addresses, this.nodeNames);
    const mono = options.monoClock ?? (options.clock ? undefined : monotonicNow);
    this.topWindows = new TopWindows({ ...DEFAULT_TOP, ...options.top }, this.flows_, (vif) => this.vifNames[vif] ?? `if${vif}`, this.clock, this.flows_, mono);
    const idleMs = options.flowIdleMs ?? 2 * this.topWindows.config.bucketMs;
    // Slot use is stamped on the monotonic timeline: a wall-clock step neither frees nor pins slots.
    this.topWindows.onBucketClosed = () => {
      this.flows_.releaseIdle(this.topWindows.timelineNow() - idleMs);
      this.cgroupIds.bucketClosed();
    };
  }

  /** The view of a node, created on first use. */
  node(name: string): NodeView {
    let view = this.nodes.get(name);
    if (!view) {
      view = new NodeView(name, this.nodeNames.length, this.addresses, this.options.storeSize);
      this.nodeNames.push(name);
      this.nodes.set(name, view);
      for (const f of this.followers) this.followNode(f, view);
    }
    return view;
  }

  private vif(node: NodeView, ifindex: number, iface: string): number {
    let vif = node.vifOf.get(ifindex);
    if (vif === undefined) {
      vif = this.vifNames.length;
      this.vifNames.push(iface);
      node.vifOf.set(ifindex, vif);
    }
    if (node.ifaceNames.get(ifindex) !== iface) {
      // first sight, or the interface was renamed on the node
      node.ifaceNames.set(ifindex, iface);
      this.vifNames[vif] = iface;
    }
    return vif;
  }

  /**
   * Adds decoded entries of one node, in stream order. `lastId` is the stream
   * ID of the last one (remembered for the status).
   */
  async ingest(nodeName: string, entries: DecodedEntry[], lastId: string): Promise<void> {
    const rows = new DecodedRows(this.addresses);
    for (const e of entries) rows.push(e);
    try {
      await this.ingestRows(nodeName, rows, lastId);
    } finally {
      rows.clear();
    }
  }

  /** Adds decoded rows of one node (entry-decoder.ts), in stream order; the rows stay the caller's. */
  async ingestRows(nodeName: string, rows: DecodedRows, lastId: string): Promise<void> {
    const node = this.node(nodeName);
    // Batches are the fleet's, not a node's: neither the store nor the top windows read a batch's node or namer.
    const batch = this.batches.pop() ?? this.newBatch();
    try {
      await this.ingestInto(node, batch, rows, lastId);
    } finally {
      batch.count = 0;
      this.batches.push(batch);
    }
  }

  private newBatch(): RecordBatch {
    const batch = new RecordBatch(BATCH_CAPACITY, this.addresses, (i) => `if${i}`, '');
    // the top windows name the fleet numbers that writeBatch puts in place of the nodes' cgroup ids
    batch.labels = this.cgroupIds.labeler;
    return batch;
  }

  private async ingestInto(node: NodeView, batch: RecordBatch, rows: DecodedRows, lastId: string): Promise<void> {
    const now = this.topWindows.timelineNow();
    const flows = this.flows_;
    let lastIfindex = -1;
    let lastIface = '';
    let lastVif = 0;
    batch.count = 0;
    for (let r = 0; r < rows.count; r++) {
      const startMs = rows.startMs[r];
      const endMs = rows.endMs[r];
      if (batch.count > 0 && (batch.count === batch.capacity || startMs !== batch.startMs || endMs !== batch.endMs)) await this.writeBatch(node, batch);
      if (batch.count === 0) {
        batch.startMs = startMs;
        batch.endMs = endMs;
      }
      const ifindex = rows.ifindex[r];
      // a node's entries come in runs of one interface
      if (ifindex !== lastIfindex || rows.iface[r] !== lastIface) {
        lastIfindex = ifindex;
        lastIface = rows.iface[r];
        lastVif = this.vif(node, ifindex, lastIface);
      }
      const vif = lastVif;
      const src = rows.srcId[r];
      const dst = rows.dstId[r];
      const slot = flows.slot(node.id, vif, rows.meta[r], rows.ports[r], src, dst, now);
      const i = batch.count++;
      batch.flowId[i] = slot;
      batch.ifindex[i] = ifindex;
      batch.meta[i] = rows.meta[r];
      batch.ports[i] = rows.ports[r];
      batch.srcId[i] = src;
      batch.dstId[i] = dst;
      batch.packets[i] = rows.packets[r];
      batch.bytes[i] = rows.bytes[r];
      batch.tcpFlags[i] = rows.tcpFlags[r];
      batch.firstSeen[i] = rows.firstSeen[r];
      batch.lastSeen[i] = rows.lastSeen[r];
      const cgroupId = rows.cgroupId[r];
      batch.cgroup[i] = cgroupId;
      // row i becomes the store's record seen + i at the next writeBatch
      if (cgroupId !== 0) node.labels.note(cgroupId, rows.label[r], node.store.seen + i);
    }
    if (batch.count > 0) await this.writeBatch(node, batch);
    node.entries += rows.count;
    this.entries += rows.count;
    node.lastId = lastId;
  }

  private async writeBatch(node: NodeView, batch: RecordBatch): Promise<void> {
    node.store.write(batch);
    // The store keeps the node's own cgroup ids (records show them); the windows, fleet-wide, take numbers unique across nodes.
    const cgroup = batch.cgroup;
    for (let i = 0; i < batch.count; i++) if (cgroup[i] !== 0) cgroup[i] = this.cgroupIds.number(node.labels, node.cgroupNumbers, cgroup[i]);
    await this.topWindows.add(batch);
    node.lastRecordEndMs = batch.endMs;
    if (batch.endMs > node.newestEndMs) node.newestEndMs = batch.endMs;
    batch.count = 0;
  }

  /** Lets wall time close top-talkers buckets even when no entry arrives. */
  advance(): Promise<void> {
    return this.topWindows.advance(this.clock());
  }

  private selected(filter: FlowFilter): NodeView[] {
    if (filter.node === undefined) return [...this.nodes.values()];
    const one = this.nodes.get(filter.node);
    return one ? [one] : [];
  }

  /**
   * The fleet's records newest first, at most `limit`. Every store counts its
   * matches, but only the stores that can hold one of the `limit` newest
   * build records: they are asked newest first (by their newest record's
   * end), and a store whose newest record ends before the `limit`-th newest
   * found so far only counts (with 1,000 nodes, building `limit` records per
   * store was most of a query).
   */
  flows(filter: FlowFilter, limit: number): FlowPage {
    const nodes = this.selected(filter).sort((a, b) => b.newestEndMs - a.newestEndMs);
    const pages: FlowPage[] = [];
    let kept: FlowRecord[] = [];
    /** the end (ms) of the limit-th newest record kept, once there are limit */
    let floorMs = -Infinity;
    for (const node of nodes) {
      if (kept.length >= limit && node.newestEndMs < floorMs) {
        pages.push(node.store.query(filter, 0));
        continue;
      }
      const page = node.store.query(filter, limit);
      pages.push({ ...page, flows: [] });
      if (page.flows.length === 0) continue;
      kept = newestFirst(kept.concat(page.flows)).slice(0, limit);
      if (kept.length >= limit) floorMs = Date.parse(kept[limit - 1].end);
    }
    const merged = mergeFlowPages(pages, limit);
    return { ...merged, flows: kept, truncated: merged.total > kept.length || merged.totalExact === false };
  }

  follow(filter: FlowFilter, onRecords: (records: FlowRecord[]) => void): () => void {
    const f: Follower = { filter, onRecords, stops: [] };
    this.followers.add(f);
    for (const node of this.selected(filter)) this.followNode(f, node);
    return () => {
      if (!this.followers.delete(f)) return;
      for (const stop of f.stops) stop();
    };
  }

  private followNode(f: Follower, node: NodeView): void {
    if (f.filter.node !== undefined && f.filter.node !== node.name) return;
    const matcher = node.store.compile(f.filter);
    f.stops.push(
      node.store.onAppend((from, to) => {
        const seqs = node.store.matching(f.filter, from, to, matcher);
        if (seqs.length > 0) f.onRecords(seqs.map((seq) => node.store.recordAt(seq)));
      }),
    );
  }

  get followerCount(): number {
    return this.followers.size;
  }

  get horizonMs(): number {
    return this.topWindows.config.horizonMs;
  }

  get bucketMs(): number {
    return this.topWindows.config.bucketMs;
  }

  /**
   * The top-talkers bucket a record ending at `wallMs` goes to: records of one
   * bucket may be added in any order (the replay merges nodes by it).
   */
  bucketOf(wallMs: number): number {
    return Math.floor((wallMs - this.topWindows.wallOffset()) / this.topWindows.config.bucketMs);
  }

  top(q: TopQuery): Promise<TopAnswer> {
    return this.topWindows.topSliced(q);
  }

  series(q: TopQuery): Promise<TopSeries> {
    return this.topWindows.series(q);
  }

  interfaces(): NodeInterfaceReport[] {
    const out: NodeInterfaceReport[] = [];
    for (const node of [...this.nodes.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) out.push(...node.interfaces);
    return out;
  }
}

/** ISO times of one format compare as strings; newest first, then by node for a stable order. */
function newestFirst(records: FlowRecord[]): FlowRecord[] {
  return records.sort((a, b) => (a.end < b.end ? 1 : a.end > b.end ? -1 : a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
}

/** Pages of disjoint sets of nodes as one page: newest first, at most limit; the total a lower bound if any page's is. */
export function mergeFlowPages(pages: FlowPage[], limit: number): FlowPage {
  if (pages.length === 1) return pages[0];
  let total = 0;
  let exact = true;
  const all: FlowRecord[] = [];
  for (const p of pages) {
    total += p.total;
    if (p.totalExact === false) exact = false;
    for (const r of p.flows) all.push(r);
  }
  const flows = newestFirst(all).slice(0, limit);
  const page: FlowPage = { flows, total, truncated: total > flows.length || !exact };
  if (!exact) page.totalExact = false;
  return page;
}
