/**
 * Scans the record store's columns for a filter a chunk of rows at a time,
 * one condition after the other over the rows still in (column at a time):
 * each condition's loop is small and the same whatever the query, which
 * keeps a scan of the whole ring near the cost of reading the columns
 * (a per-record test of every condition costs several times more once
 * queries of many shapes have run).
 */
import type { AddressTable } from '../flow/address-table.js';
import type { FlowFilter } from '../flow/filter.js';
import type { CgroupLabeler, IfaceNamer } from '../flow/record-batch.js';
import { AddressMatch, CgroupMatch, IfaceMatch } from './record-match.js';

/** The store's columns, as they are now (a growing store replaces them). */
export interface RingColumns {
  readonly ifindex: Uint32Array;
  readonly meta: Uint32Array;
  readonly ports: Uint32Array;
  readonly srcId: Uint32Array;
  readonly dstId: Uint32Array;
  readonly cgroup: Float64Array;
}

/** What a scan needs of the store. */
export interface ScannableRing {
  readonly capacity: number;
  columns(): RingColumns;
  readonly addresses: AddressTable;
  readonly ifaceName: IfaceNamer;
  readonly labels?: CgroupLabeler;
}

/** Rows a chunk holds. */
export const CHUNK_ROWS = 1024;

/** One condition: keeps the rows of `rows[0..n)` that meet it, in order; returns how many. */
interface ColumnTest {
  keep(c: RingColumns, rows: Int32Array, n: number): number;
}

class MetaTest implements ColumnTest {
  constructor(
    private readonly mask: number,
    private readonly want: number,
  ) {}

  keep(c: RingColumns, rows: Int32Array, n: number): number {
    const meta = c.meta;
    let m = 0;
    for (let i = 0; i < n; i++) if ((meta[rows[i]] & this.mask) === this.want) rows[m++] = rows[i];
    return m;
  }
}

/** sport (side 1), dport (side 2) or either (side 3) equal to a port. */
class PortTest implements ColumnTest {
  constructor(
    private readonly port: number,
    private readonly sides: 1 | 2 | 3,
  ) {}

  keep(c: RingColumns, rows: Int32Array, n: number): number {
    const ports = c.ports;
    const p = this.port;
    const sport = (this.sides & 1) !== 0;
    const dport = (this.sides & 2) !== 0;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const v = ports[rows[i]];
      if ((sport && v >>> 16 === p) || (dport && (v & 0xffff) === p)) rows[m++] = rows[i];
    }
    return m;
  }
}

/** Source (side 1), destination (side 2) or either (side 3) address in a prefix. */
class AddressTest implements ColumnTest {
  constructor(
    private readonly match: AddressMatch,
    private readonly sides: 1 | 2 | 3,
  ) {}

  keep(c: RingColumns, rows: Int32Array, n: number): number {
    const match = this.match;
    const src = c.srcId;
    const dst = c.dstId;
    let m = 0;
    if (this.sides === 1) {
      for (let i = 0; i < n; i++) if (match.has(src[rows[i]])) rows[m++] = rows[i];
    } else if (this.sides === 2) {
      for (let i = 0; i < n; i++) if (match.has(dst[rows[i]])) rows[m++] = rows[i];
    } else {
      for (let i = 0; i < n; i++) if (match.has(src[rows[i]]) || match.has(dst[rows[i]])) rows[m++] = rows[i];
    }
    return m;
  }
}

class IfaceTest implements ColumnTest {
  constructor(private readonly match: IfaceMatch) {}

  keep(c: RingColumns, rows: Int32Array, n: number): number {
    const ifindex = c.ifindex;
    let m = 0;
    for (let i = 0; i < n; i++) if (this.match.has(ifindex[rows[i]])) rows[m++] = rows[i];
    return m;
  }
}

class CgroupTest implements ColumnTest {
  constructor(private readonly match: CgroupMatch) {}

  keep(c: RingColumns, rows: Int32Array, n: number): number {
    const cgroup = c.cgroup;
    let m = 0;
    for (let i = 0; i < n; i++) if (this.match.has(cgroup[rows[i]])) rows[m++] = rows[i];
    return m;
  }
}

/** One buffer for every scanner: a chunk is scanned and read in one go, no pause in between. */
const chunkRows = new Int32Array(CHUNK_ROWS);

export class ChunkScanner {
  private readonly tests: ColumnTest[] = [];
  /** the rows of the last chunk that met the filter, newest first (valid until the next chunk of any scanner) */
  readonly rows = chunkRows;

  /** The filter's key conditions except node (a store is one node's: the caller decides it). */
  constructor(
    private readonly ring: ScannableRing,
    filter: FlowFilter,
  ) {
    let mask = 0;
    let want = 0;
    if (filter.direction !== undefined) {
      mask |= 1;
      want |= filter.direction;
    }
    if (filter.proto !== undefined) {
      mask |= 0xff << 2;
      want |= filter.proto << 2;
    }
    // the likely most selective first: fewer rows for the next
    if (filter.src) this.tests.push(new AddressTest(new AddressMatch(filter.src, ring.addresses), 1));
    if (filter.dst) this.tests.push(new AddressTest(new AddressMatch(filter.dst, ring.addresses), 2));
    if (filter.ip) this.tests.push(new AddressTest(new AddressMatch(filter.ip, ring.addresses), 3));
    if (filter.sport !== undefined) this.tests.push(new PortTest(filter.sport, 1));
    if (filter.dport !== undefined) this.tests.push(new PortTest(filter.dport, 2));
    if (filter.port !== undefined) this.tests.push(new PortTest(filter.port, 3));
    if (mask !== 0) this.tests.push(new MetaTest(mask, want));
    if (filter.iface !== undefined) this.tests.push(new IfaceTest(new IfaceMatch(filter.iface, ring.ifaceName)));
    if (filter.cgroup !== undefined || filter.workload !== undefined) this.tests.push(new CgroupTest(new CgroupMatch(filter.cgroup, filter.workload, ring.labels)));
  }

  /**
   * The records `hi` down to `lo` (sequence numbers, at most CHUNK_ROWS of
   * them) that meet the filter: their rows in `rows`, newest first; returns
   * how many.
   */
  chunk(hi: number, lo: number): number {
    const cap = this.ring.capacity;
    const rows = this.rows;
    let n = 0;
    for (let at = hi % cap, seq = hi; seq >= lo; seq--, at = at === 0 ? cap - 1 : at - 1) rows[n++] = at;
    const columns = this.ring.columns();
    for (const test of this.tests) {
      if (n === 0) break;
      n = test.keep(columns, rows, n);
    }
    return n;
  }
}
