/**
 * One filtered query over the record store, planned on its index
 * (record-index.ts) and run in steps so that a long one can be time-sliced.
 *
 * The index lags the ring: records are indexed in the background after a
 * burst of writes (RecordStore.catchUp), so the newest records, those not
 * indexed yet, are scanned first, and the plan covers the indexed ones.
 *
 * Plan: a condition of the filter is a set of index chains (an address or a
 * small prefix: its addresses' chains; a port: its chain; `ip` and `port`:
 * chains of both columns; interface, direction and protocol: the classes
 * that match; cgroup and workload: the cgroups that match), and the heads'
 * counts bound how many records it matches. A condition that every stored
 * record meets is dropped; when none is left, the answer is the time range
 * itself. Otherwise the condition with the fewest records drives: its
 * chains are merged newest first and every record they reach is tested for
 * the rest of the filter, unless they are about as long as the range, which
 * is then scanned. When the driver alone decides (one exact condition, the
 * whole ring) its count is the total and the walk stops at `limit`.
 *
 * Bounded count: once the page is full, the walk goes on only to count, and
 * only for COUNT_WORK_LIMIT more records; past that the total is the count
 * so far, a lower bound (`totalExact: false`). A query that pauses
 * (querySliced) while the ring overwrites records it has not reached yet
 * counts only what it reached, also reported as a lower bound.
 */
import { hasKeyConditions, type FlowFilter } from '../flow/filter.js';
import type { IpPrefix } from '../lib/ip.js';
import { classDirection, classIfindex, classProto, IndexColumn, type RecordIndex } from './record-index.js';
import { CHUNK_ROWS, type ChunkScanner } from './record-scan.js';

/** A test on a ring row. */
export type RowTest = (at: number) => boolean;

/** What a query reads of the store; read again after every pause (the ring moves on, columns may grow). */
export interface QueryableRing {
  readonly capacity: number;
  readonly size: number;
  readonly oldestSeq: number;
  readonly endSeq: number;
  readonly index: RecordIndex;
  /** records below this sequence number (and in the ring) are in the index */
  readonly indexedTo: number;
  readonly node: string;
  /** the sequence range [from, to) of the records in the filter's time bounds */
  timeRange(filter: FlowFilter): [number, number];
  /** the filter's key conditions as one test on a ring row (for the records chains reach) */
  compile(filter: FlowFilter): RowTest;
  /** the filter's key conditions as a scanner of chunks of rows (for ranges) */
  scanner(filter: FlowFilter): ChunkScanner;
  /**
   * The addresses held now that lie in a prefix: `each` visits their ids
   * in about `cost` steps and returns whether every address held lies in it
   */
  addressesIn(prefix: IpPrefix, lookups: number): { cost: number; each: (visit: (id: number) => void) => boolean };
  ifaceName(ifindex: number): string;
  /** whether a cgroup id meets the filter's cgroup and workload conditions */
  cgroupTest(filter: FlowFilter): (cgroupId: number) => boolean;
}

/**
 * Records a query examines after its page is full, only to count them,
 * before it reports the total as a lower bound: a whole default store
 * (262,144 records) four times over, so the default store's totals are
 * exact and a 64M-record store's answer is not held for seconds.
 */
export const COUNT_WORK_LIMIT = 1 << 20;
/** A chain step (a jump through the links) costs about as much as scanning this many records. */
const CHAIN_STEP_COST = 4;
/** Building one answer record costs about as much as scanning this many records (for the slicing). */
const COLLECT_COST = 64;
/** An IPv4 prefix of at most this many addresses is looked up address by address; a larger one through the address table, or record by record. */
const LOOKUP_LIMIT = 4096;
/** Finding an address's chain (a lookup, or a step through the address table) costs about as much as scanning this many records. */
const ADDRESS_STEP_COST = 4;

/**
 * The chains of one column a condition selects: those of the keys `each`
 * visits (about `cost` steps; it returns whether the keys are all the keys
 * held), or of every key in the heads that passes `match`.
 */
interface Side {
  column: IndexColumn;
  each?: (visit: (key: number) => void) => boolean;
  cost?: number;
  match?: (key: number) => boolean;
}

interface Condition {
  /** the filter fields the condition stands for */
  fields: readonly (keyof FlowFilter)[];
  /** one side, or two for `ip` and `port` (source and destination columns); none: the index cannot select it */
  sides: Side[];
  /** each chain holds only records that meet the condition (no shared buckets) */
  exact: boolean;
  /** chains selected */
  chains: number;
  /** records on the chains, at least the records that meet the condition; -1: not counted */
  size: number;
  /** every stored record meets it */
  always?: boolean;
}

const enum Mode {
  Done,
  /** no key condition left: the time range is the answer */
  Range,
  Scan,
  /** merging the driver's chains newest first (to the end for a two-sided driver, whose copies it drops) */
  Merge,
  /** walking the rest of each chain, in any order, to count */
  Count,
}

/** Collects the answer's records as the run finds them (newest first). */
export type Collect = (seq: number) => void;

export class FlowQueryRun {
  /** matching records counted */
  count = 0;
  /** matches among the records not indexed yet (scanned first) */
  private tailCount = 0;
  /** the matches among the indexed records, known from the index without counting (the driver decides alone) */
  private knownIndexed: number | undefined;
  /** the count stopped at COUNT_WORK_LIMIT */
  bounded = false;
  /** records the run had not reached were overwritten while it paused */
  cut = false;
  private mode = Mode.Done;
  // Tail: the records not indexed yet, [tailStop, tailPos], scanned for the whole filter before `mode`.
  private tailPos = -1;
  private tailStop = 0;
  private tailScanner: ChunkScanner | null = null;
  private collected = 0;
  private work = 0;
  private from = 0;
  private to = 0;
  private readonly oldestAtStart: number;
  /** the index the plan was made on (a store that grows starts a new one) */
  private readonly index: RecordIndex;
  /** Merge and Count: the rest of the filter, on each record a chain reaches (null: nothing to test) */
  private residual: RowTest | null = null;
  /** Scan: the rest of the filter */
  private scanner: ChunkScanner | null = null;
  /** Merge: merge to the end (the driver has two sides, a record may be on both) */
  private mergeAll = false;
  // Scan and Range: the next sequence number to look at, going down.
  private pos = 0;
  // Merge and Count: one cursor per chain (a max-heap on the cursor in Merge).
  private cursors = new Float64Array(0);
  private cursorColumn = new Uint8Array(0);
  private cursorCount = 0;
  private last = -1;
  /** Count: the cursor being walked */
  private counting = 0;

  constructor(
    private readonly ring: QueryableRing,
    filter: FlowFilter,
    private readonly limit: number,
    private readonly collect: Collect,
    /** records examined, once the page is full, before the count stops */
    private readonly countLimit = COUNT_WORK_LIMIT,
  ) {
    this.oldestAtStart = ring.oldestSeq;
    this.index = ring.index;
    this.plan(filter);
  }

  /** The matching records in the store: exact unless `totalExact` is false, then a lower bound. */
  get total(): number {
    return this.knownIndexed === undefined ? this.count : this.tailCount + this.knownIndexed;
  }

  get totalExact(): boolean {
    return !this.bounded && !this.cut;
  }

  private plan(filter: FlowFilter): void {
    const ring = this.ring;
    if (filter.node !== undefined && filter.node !== ring.node) return;
    const [from, to] = ring.timeRange(filter);
    if (to <= from) return;
    // The records not indexed yet are the newest: scanned first, for the whole filter.
    const indexed = Math.min(to, Math.max(from, ring.indexedTo));
    if (indexed < to) {
      this.tailPos = to - 1;
      this.tailStop = indexed;
      this.tailScanner = ring.scanner(filter);
    }
    this.from = from;
    this.to = indexed;
    const range = indexed - from;
    if (range <= 0) return;
    const indexedSize = ring.indexedTo - this.oldestAtStart;
    const sized: Condition[] = [];
    const dropped = new Set<keyof FlowFilter>(['node']);
    let unsized = false;
    for (const c of this.conditions(filter, range)) {
      if (c.always) for (const f of c.fields) dropped.add(f);
      else if (c.size < 0) unsized = true;
      else if (c.size === 0) return; // nothing stored meets it
      else if (c.exact && c.sides.length === 1 && c.size === indexedSize) for (const f of c.fields) dropped.add(f); // every indexed record meets it
      else sized.push(c);
    }
    const rest = (fields: Iterable<keyof FlowFilter>): FlowFilter => {
      const left: FlowFilter = { ...filter };
      for (const f of fields) delete left[f];
      return left;
    };
    if (sized.length === 0 && !unsized) {
      this.knownIndexed = range;
      this.pos = this.to - 1;
      this.mode = Mode.Range;
      return;
    }
    // Chains reach back to the oldest record; only the part at or after `from` is walked.
    const reach = (ring.indexedTo - this.from) / indexedSize;
    const driver = sized.length === 0 ? undefined : sized.reduce((a, b) => (b.size < a.size ? b : a));
    if (driver === undefined || driver.size * reach * CHAIN_STEP_COST >= range) {
      this.scanner = ring.scanner(rest(dropped));
      this.pos = this.to - 1;
      this.mode = Mode.Scan;
      return;
    }
    // An exact driver's chains hold only its matches; a bucketed one's are tested like the rest.
    const residual = rest(driver.exact ? [...dropped, ...driver.fields] : dropped);
    this.residual = hasKeyConditions(residual) ? ring.compile(residual) : null;
    this.mergeAll = driver.sides.length > 1;
    const allIndexed = this.from === this.oldestAtStart && this.to === ring.indexedTo;
    if (this.residual === null && driver.exact && !this.mergeAll && allIndexed) this.knownIndexed = driver.size;
    this.startMerge(driver);
  }

  /** The filter's conditions as chain sets of the index, with their sizes. */
  private conditions(filter: FlowFilter, range: number): Condition[] {
    const ring = this.ring;
    const out: Condition[] = [];
    const condition = (fields: readonly (keyof FlowFilter)[], sides: Side[]): void => {
      const exact = sides.every((s) => ring.index.exact(s.column));
      out.push({ fields, sides, exact, chains: 0, size: 0 });
    };
    // Going through the address table costs about what scanning the range does: not more.
    const addresses = (fields: readonly (keyof FlowFilter)[], prefix: IpPrefix, columns: IndexColumn[]): void => {
      const found = ring.addressesIn(prefix, LOOKUP_LIMIT);
      const cost = found.cost * ADDRESS_STEP_COST;
      const sides = cost > range ? [] : columns.map((column) => ({ column, each: found.each, cost }));
      condition(fields, sides);
    };
    if (filter.src) addresses(['src'], filter.src, [IndexColumn.src]);
    if (filter.dst) addresses(['dst'], filter.dst, [IndexColumn.dst]);
    if (filter.ip) addresses(['ip'], filter.ip, [IndexColumn.src, IndexColumn.dst]);
    const port = (column: IndexColumn, key: number): Side => ({
      column,
      cost: 1,
      each: (visit) => {
        visit(key);
        return false;
      },
    });
    if (filter.sport !== undefined) condition(['sport'], [port(IndexColumn.sport, filter.sport)]);
    if (filter.dport !== undefined) condition(['dport'], [port(IndexColumn.dport, filter.dport)]);
    if (filter.port !== undefined) condition(['port'], [port(IndexColumn.sport, filter.port), port(IndexColumn.dport, filter.port)]);
    if (filter.iface !== undefined || filter.direction !== undefined || filter.proto !== undefined) {
      const { iface, direction, proto } = filter;
      const names = new Map<number, boolean>();
      const ifaceMatches = (ifindex: number): boolean => {
        let ok = names.get(ifindex);
        if (ok === undefined) names.set(ifindex, (ok = ring.ifaceName(ifindex) === iface));
        return ok;
      };
      const match = (k: number): boolean =>
        (direction === undefined || classDirection(k) === direction) &&
        (proto === undefined || classProto(k) === proto) &&
        (iface === undefined || ifaceMatches(classIfindex(k)));
      condition(['iface', 'direction', 'proto'], [{ column: IndexColumn.class, match }]);
    }
    if (filter.cgroup !== undefined || filter.workload !== undefined) {
      condition(['cgroup', 'workload'], [{ column: IndexColumn.cgroup, match: ring.cgroupTest(filter) }]);
    }
    this.size(out, range);
    return out;
  }

  /**
   * Finds the chains of the conditions and counts their records, cheapest
   * lookup first. A condition whose lookup would cost more than walking the
   * best driver found so far, or than scanning the range (or that the index
   * cannot select), is left unsized: the walk tests its records for it.
   */
  private size(conditions: Condition[], range: number): void {
    const heads = this.ring.index.heads;
    const lookupCost = (c: Condition): number => c.sides.reduce((sum, side) => sum + (side.cost ?? heads[side.column].slots), 0);
    let best = Infinity;
    for (const { c, cost } of conditions.map((c) => ({ c, cost: lookupCost(c) })).sort((a, b) => a.cost - b.cost)) {
      if (c.sides.length === 0 || cost > Math.min(best * CHAIN_STEP_COST, range)) {
        c.size = -1;
        continue;
      }
      for (const side of c.sides) {
        const every = this.eachChain(side, (slot, count) => {
          c.chains++;
          c.size += count;
        });
        // every address held lies in it: so does every stored record's
        if (every) c.always = true;
      }
      best = Math.min(best, c.size);
    }
  }

  /** Calls `visit` once for each chain (heads slot) a side selects that holds records; returns `each`'s answer. */
  private eachChain(side: Side, visit: (slot: number, count: number) => void): boolean {
    const table = this.ring.index.heads[side.column];
    table.newPass(); // keys that share a bucket share its chain: visited once
    if (side.each !== undefined) {
      return side.each((key) => {
        const slot = table.find(key);
        if (slot >= 0 && table.mark(slot)) visit(slot, table.countAt(slot));
      });
    }
    for (let slot = 0, n = table.slots; slot < n; slot++) {
      const count = table.countAt(slot);
      if (count !== 0 && side.match!(table.keyAt(slot))) visit(slot, count);
    }
    return false;
  }

  private startMerge(driver: Condition): void {
    const k = driver.chains;
    this.cursors = new Float64Array(k);
    this.cursorColumn = new Uint8Array(k);
    const end = this.ring.indexedTo;
    let n = 0;
    for (const side of driver.sides) {
      const table = this.ring.index.heads[side.column];
      this.eachChain(side, (slot) => {
        const head = table.headSeq(slot, end);
        if (head < this.from) return; // the whole chain is older than the range
        this.cursors[n] = head;
        this.cursorColumn[n] = side.column;
        n++;
      });
    }
    this.cursorCount = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
    this.mode = Mode.Merge;
  }

  /**
   * Works on the query for about `units` records; returns true when it is
   * done. Between two calls the store may be written (querySliced pauses).
   */
  step(units: number): boolean {
    if (this.ring.index !== this.index) {
      // The store grew during a pause: its chains are gone, and what the run had not reached with them is not counted.
      this.cut = true;
      this.tailPos = -1;
      return this.finish();
    }
    if (this.tailPos >= this.tailStop) {
      units = this.stepTail(units);
      if (units < 0) return false;
    }
    switch (this.mode) {
      case Mode.Range:
        return this.stepRange(units);
      case Mode.Scan:
        return this.stepScan(units);
      case Mode.Merge:
        return this.stepMerge(units);
      case Mode.Count:
        return this.stepCount(units);
      default:
        return true;
    }
  }

  private finish(): boolean {
    this.mode = Mode.Done;
    return true;
  }

  /** The record `pos` (not yet reached) was overwritten while the run paused. */
  private lost(pos: number): boolean {
    if (pos >= this.ring.oldestSeq) return false;
    this.cut = true;
    return true;
  }

  /** Scans the records not indexed yet; returns the units left, negative when it has to go on. */
  private stepTail(units: number): number {
    if (this.lost(this.tailPos)) {
      this.tailPos = -1;
      this.mode = Mode.Done; // everything older is gone too
      return units;
    }
    const before = this.count;
    const [pos, left] = this.scan(this.tailPos, this.tailStop, this.tailScanner!, units);
    this.tailCount += this.count - before;
    this.tailPos = pos;
    if (this.bounded) {
      this.tailPos = -1;
      this.mode = Mode.Done;
      return left;
    }
    return pos >= this.tailStop ? -1 : left;
  }

  /**
   * Scans records `pos` down to `stop` a chunk at a time, counting and
   * collecting; returns where it stopped (below `stop` when done) and the
   * units left.
   */
  private scan(pos: number, stop: number, scanner: ChunkScanner, units: number): [number, number] {
    const cap = this.ring.capacity;
    const rows = scanner.rows;
    while (pos >= stop && units > 0) {
      const lo = Math.max(stop, pos - CHUNK_ROWS + 1);
      const size = pos - lo + 1;
      if (this.collected >= this.limit) {
        if (this.work + size > this.countLimit) {
          this.bounded = true;
          break;
        }
        this.work += size;
      }
      const n = scanner.chunk(pos, lo);
      this.count += n;
      units -= size;
      const top = pos % cap;
      for (let i = 0; i < n && this.collected < this.limit; i++) {
        this.collect(pos - ((top - rows[i] + cap) % cap));
        this.collected++;
        units -= COLLECT_COST;
      }
      pos = lo - 1;
    }
    return [pos, units];
  }

  private stepRange(units: number): boolean {
    if (this.pos >= this.from && this.collected < this.limit && this.lost(this.pos)) return this.finish();
    for (; this.pos >= this.from && this.collected < this.limit; this.pos--) {
      if ((units -= COLLECT_COST) < 0) return false;
      this.collect(this.pos);
      this.collected++;
    }
    return this.finish();
  }

  private stepScan(units: number): boolean {
    if (this.pos >= this.from && this.lost(this.pos)) return this.finish();
    const [pos] = this.scan(this.pos, this.from, this.scanner!, units);
    this.pos = pos;
    return pos < this.from || this.bounded ? this.finish() : false;
  }

  /** The next record down a chain from record `seq`, or -1 where the chain leaves the range or the ring. */
  private next(seq: number, links: Uint32Array, oldest: number): number {
    const link = links[seq % this.ring.capacity];
    if (link === 0) return -1;
    const prev = seq - link;
    if (prev < this.from) return -1;
    if (prev < oldest) {
      // overwritten since the query started: a record the run could not reach
      if (prev >= this.oldestAtStart) this.cut = true;
      return -1;
    }
    return prev;
  }

  private stepMerge(units: number): boolean {
    const oldest = this.ring.oldestSeq;
    const links = this.index.links;
    // Drop the cursors whose records were overwritten during a pause.
    for (let i = 0; i < this.cursorCount; ) {
      if (this.cursors[i] >= oldest) i++;
      else {
        this.cut = true;
        this.removeAt(i);
      }
    }
    const { residual, limit, to } = this;
    const cap = this.ring.capacity;
    while (this.cursorCount > 0 && (this.collected < limit || this.mergeAll)) {
      if (--units < 0) return false;
      const seq = this.cursors[0];
      this.advanceTop(seq, links[this.cursorColumn[0]], oldest);
      if (seq >= to || seq === this.last) continue; // newer than the range, or a record's copy on the other side
      this.last = seq;
      if (this.collected >= limit && this.work++ >= this.countLimit) {
        this.bounded = true;
        return this.finish();
      }
      if (residual !== null && !residual(seq % cap)) continue;
      this.count++;
      if (this.collected < limit) {
        this.collect(seq);
        this.collected++;
        units -= COLLECT_COST;
      }
    }
    if (this.cursorCount === 0 || this.knownIndexed !== undefined) return this.finish();
    this.mode = Mode.Count;
    this.counting = 0;
    return this.stepCount(units);
  }

  /** Counts the rest of each chain of a one-sided driver (no record is on two of its chains). */
  private stepCount(units: number): boolean {
    const oldest = this.ring.oldestSeq;
    const allLinks = this.index.links;
    const { residual, to } = this;
    const cap = this.ring.capacity;
    for (; this.counting < this.cursorCount; this.counting++) {
      const links = allLinks[this.cursorColumn[this.counting]];
      let seq = this.cursors[this.counting];
      if (this.lost(seq)) continue;
      while (seq >= 0) {
        if (--units < 0) {
          this.cursors[this.counting] = seq;
          return false;
        }
        if (this.work++ >= this.countLimit) {
          this.bounded = true;
          return this.finish();
        }
        if (seq < to && (residual === null || residual(seq % cap))) this.count++;
        seq = this.next(seq, links, oldest);
      }
    }
    return this.finish();
  }

  /** Moves the heap's top cursor down its chain (or drops it at the chain's end). */
  private advanceTop(seq: number, links: Uint32Array, oldest: number): void {
    const prev = this.next(seq, links, oldest);
    if (prev < 0) this.removeAt(0);
    else {
      this.cursors[0] = prev;
      this.siftDown(0);
    }
  }

  private removeAt(i: number): void {
    const last = --this.cursorCount;
    if (i === last) return;
    this.cursors[i] = this.cursors[last];
    this.cursorColumn[i] = this.cursorColumn[last];
    this.siftDown(i);
    this.siftUp(i);
  }

  private siftDown(i: number): void {
    const { cursors, cursorColumn } = this;
    const n = this.cursorCount;
    const seq = cursors[i];
    const column = cursorColumn[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && cursors[child + 1] > cursors[child]) child++;
      if (cursors[child] <= seq) break;
      cursors[i] = cursors[child];
      cursorColumn[i] = cursorColumn[child];
      i = child;
    }
    cursors[i] = seq;
    cursorColumn[i] = column;
  }

  private siftUp(i: number): void {
    const { cursors, cursorColumn } = this;
    const seq = cursors[i];
    const column = cursorColumn[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (cursors[parent] >= seq) break;
      cursors[i] = cursors[parent];
      cursorColumn[i] = cursorColumn[parent];
      i = parent;
    }
    cursors[i] = seq;
    cursorColumn[i] = column;
  }
}
