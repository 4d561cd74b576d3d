/**
 * Inverted indexes over the record store's ring, kept as records enter and
 * leave it, so that a filtered /api/v1/flows walks the records of its most
 * selective condition instead of the whole ring, and counts many answers
 * from the heads alone (record-query.ts).
 *
 * One chain per key of each indexed column: source and destination address
 * id and port by bucket (BucketHeads: keys that share a bucket share a
 * chain; a walk tests what it reaches), class (interface + direction +
 * protocol) and cgroup id by key (HashedHeads, exact). Each record links to
 * the previous (older) record of its chain, as a distance back in sequence
 * numbers; the column's heads keep each chain's newest record and count. A
 * chain is never unlinked: the ring evicts oldest first, so a walk newest
 * first ends where a link points below the ring's oldest record.
 *
 * Cost per ring row: 24 bytes of links (six columns), plus buckets: one per
 * two rows for each address column and up to 65,536 per port column, 8
 * bytes each; 36 bytes per row for the default 262,144 rows. The class and
 * cgroup tables hold the keys in the ring, 16 to 64 bytes each (a few
 * hundred classes and cgroups: well under a byte per row). Per record
 * indexed: a few array updates, and a hash probe for a class or cgroup that
 * differs from the previous record's.
 */
import { BucketHeads, HashedHeads, type Heads } from './chain-heads.js';

/** The indexed columns, in the order of RecordIndex.heads and .links. */
export const IndexColumn = { src: 0, dst: 1, sport: 2, dport: 3, class: 4, cgroup: 5 } as const;
export type IndexColumn = (typeof IndexColumn)[keyof typeof IndexColumn];
const COLUMNS = 6;
const PORTS = 65536;
/** bytes per ring row the index holds at the default store size, with room for the class and cgroup tables (memory-budget.ts) */
export const INDEX_BYTES_PER_ROW = 40;

/**
 * The class key of a record: interface, direction and protocol, the
 * conditions with few values, as one chain (filters on any of them walk
 * the classes that match).
 */
export function classKey(ifindex: number, meta: number): number {
  return ifindex * 512 + (((meta >>> 2) & 0xff) << 1) + (meta & 1);
}
export const classIfindex = (key: number): number => Math.floor(key / 512);
export const classProto = (key: number): number => (key >>> 1) & 0xff;
export const classDirection = (key: number): 0 | 1 => (key & 1) as 0 | 1;

/** The power of two nearest above n, at least 16. */
function bucketsFor(n: number): number {
  let b = 16;
  while (b < n) b *= 2;
  return b;
}

export class RecordIndex {
  private readonly src: BucketHeads;
  private readonly dst: BucketHeads;
  private readonly sport: BucketHeads;
  private readonly dport: BucketHeads;
  private readonly cls = new HashedHeads();
  private readonly cgroup = new HashedHeads();
  /** per column (IndexColumn), for queries */
  readonly heads: readonly Heads[];
  /** per column, per ring row: distance back to the previous record of the same chain, 0 for none */
  readonly links: Uint32Array[] = [];

  /** An index for `rows` ring rows; a store that grows gets a new index (its buckets follow the rows). */
  constructor(rows: number) {
    const addressBuckets = bucketsFor(rows / 2);
    const portBuckets = Math.min(PORTS, bucketsFor(rows / 2));
    this.src = new BucketHeads(addressBuckets);
    this.dst = new BucketHeads(addressBuckets);
    this.sport = new BucketHeads(portBuckets);
    this.dport = new BucketHeads(portBuckets);
    this.heads = [this.src, this.dst, this.sport, this.dport, this.cls, this.cgroup];
    for (let c = 0; c < COLUMNS; c++) this.links.push(new Uint32Array(rows));
  }

  /** Whether a chain of the column holds one key only (else a walk must test each record's key). */
  exact(column: IndexColumn): boolean {
    if (column === IndexColumn.class || column === IndexColumn.cgroup) return true;
    return (column === IndexColumn.sport || column === IndexColumn.dport) && this.sport.slots >= PORTS;
  }

  /** Record `seq` enters ring row `at` (call leave() first for the record the row held). Cgroup 0: none, not indexed. */
  enter(seq: number, at: number, src: number, dst: number, ports: number, cls: number, cgroup: number): void {
    const links = this.links;
    links[IndexColumn.src][at] = this.src.push(src, seq);
    links[IndexColumn.dst][at] = this.dst.push(dst, seq);
    links[IndexColumn.sport][at] = this.sport.push(ports >>> 16, seq);
    links[IndexColumn.dport][at] = this.dport.push(ports & 0xffff, seq);
    links[IndexColumn.class][at] = this.cls.push(cls, seq);
    // Records without a cgroup (forwarded traffic, attribution off) are not in the cgroup column: no filter selects them by it.
    links[IndexColumn.cgroup][at] = cgroup === 0 ? 0 : this.cgroup.push(cgroup, seq);
  }

  /** The record with these keys leaves the ring (overwritten). */
  leave(src: number, dst: number, ports: number, cls: number, cgroup: number): void {
    this.src.drop(src);
    this.dst.drop(dst);
    this.sport.drop(ports >>> 16);
    this.dport.drop(ports & 0xffff);
    this.cls.drop(cls);
    if (cgroup !== 0) this.cgroup.drop(cgroup);
  }

  /** Bytes held: the links of every row and the heads. */
  get bytes(): number {
    let n = 0;
    for (let c = 0; c < COLUMNS; c++) n += this.links[c].byteLength + this.heads[c].bytes;
    return n;
  }
}
