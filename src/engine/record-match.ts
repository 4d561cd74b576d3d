/**
 * Per-query matchers of the record store's filters on interned values
 * (address ids, ifindexes, cgroup ids), each deciding a value once and
 * remembering it. Classes rather than closures: a record test calls the same
 * method whatever the query, so the scan loop stays monomorphic and inlined.
 */
import type { AddressTable } from '../flow/address-table.js';
import { cgroupUnder } from '../flow/filter.js';
import { prefixContains, type IpPrefix } from '../lib/ip.js';
import type { CgroupLabeler, IfaceNamer } from '../flow/record-batch.js';

/** Whether an address id lies in a prefix. */
export class AddressMatch {
  private readonly v4: boolean;
  private readonly net: number;
  private readonly end: number;
  /** IPv6: the answer per id (IPv6 ids are the few; no array the size of the table per query) */
  private readonly memo = new Map<number, boolean>();

  constructor(
    private readonly prefix: IpPrefix,
    private readonly addresses: AddressTable,
  ) {
    this.v4 = prefix.family === 4;
    const b = prefix.bytes;
    this.net = this.v4 ? ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0 : 0;
    this.end = this.v4 ? this.net + 2 ** (32 - prefix.bits) : 0;
  }

  /** An address of the other family never matches (prefixContains). */
  has(id: number): boolean {
    const v = this.addresses.ipv4(id);
    if (this.v4) return v >= this.net && v < this.end;
    if (v >= 0) return false;
    let known = this.memo.get(id);
    if (known === undefined) this.memo.set(id, (known = prefixContains(this.prefix, this.addresses.text(id))));
    return known;
  }
}

/** Whether an ifindex has a name. */
export class IfaceMatch {
  private lastIndex = -1;
  private lastOk = false;
  private readonly known = new Map<number, boolean>();

  constructor(
    private readonly name: string,
    private readonly ifaceName: IfaceNamer,
  ) {}

  has(ifindex: number): boolean {
    if (ifindex === this.lastIndex) return this.lastOk;
    let ok = this.known.get(ifindex);
    if (ok === undefined) this.known.set(ifindex, (ok = this.ifaceName(ifindex) === this.name));
    this.lastIndex = ifindex;
    this.lastOk = ok;
    return ok;
  }
}

/** Whether a cgroup id meets a cgroup path prefix and a workload label (either may be absent). */
export class CgroupMatch {
  private lastId = -1;
  private lastOk = false;
  private readonly known = new Map<number, boolean>();

  constructor(
    private readonly cgroup: string | undefined,
    private readonly workload: string | undefined,
    private readonly labels: CgroupLabeler | undefined,
  ) {}

  has(id: number): boolean {
    if (id === this.lastId) return this.lastOk;
    let ok = this.known.get(id);
    if (ok === undefined) {
      const label = id ? this.labels?.(id) : undefined;
      ok = label !== undefined && (this.cgroup === undefined || cgroupUnder(label.path, this.cgroup)) && (this.workload === undefined || label.workload === this.workload);
      this.known.set(id, ok);
    }
    this.lastId = id;
    this.lastOk = ok;
    return ok;
  }
}
