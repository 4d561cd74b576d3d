/**
 * The relay's flow identities: one slot per (node, interface, 5-tuple) seen in
 * the streams, so that the service's TopWindows can group the fleet's records
 * exactly as an agent's TopWindows groups its own (it reads flows by slot).
 *
 * Interfaces are numbered per (node, ifindex) as "virtual" indexes: two nodes
 * both have an ifindex 2, and they are two interfaces. Slots not used for
 * `idleMs` are released when a top-talkers bucket closes (the only reader of
 * slots is the open bucket, and it is empty at that moment).
 *
 * A flow is found by its numbers (interface, packed meta and ports, address
 * ids) through a chained hash index with a keyed hash: no string per entry,
 * and keys from outside cannot be chosen to collide.
 */
import type { AddressTable } from '../flow/address-table.js';
import { hashWord, randomHashSeed } from '../flow/flow-hash.js';
import type { FlowNodeReader, FlowTupleReaderWithIds } from '../flow/tuple-reader.js';
import { growFloat64, growUint32, growUint8 } from '../lib/typed-arrays.js';

export class RelayFlowTable implements FlowTupleReaderWithIds, FlowNodeReader {
  readonly many = true;
  private vifCol = new Uint32Array(1024);
  private metaCol = new Uint32Array(1024);
  private portsCol = new Uint32Array(1024);
  private srcCol = new Uint32Array(1024);
  private dstCol = new Uint32Array(1024);
  private nodeCol = new Uint32Array(1024);
  private usedCol = new Float64Array(1024);
  private liveCol = new Uint8Array(1024);
  /** chained hash index: first slot of each bucket and next slot in the chain (-1: none), each slot's hash */
  private heads = new Int32Array(1024).fill(-1);
  private nextCol = new Int32Array(1024);
  private hashCol = new Uint32Array(1024);
  private readonly freeSlots: number[] = [];
  private highWater = 0;
  private live = 0;
  /** the index's hash is keyed: entries come from outside, their keys must not be able to collide on purpose */
  private readonly k0: number;
  private readonly k1: number;

  constructor(
    private readonly addresses: AddressTable,
    /** name of a node by its id */
    private readonly nodeNames: string[],
  ) {
    const seed = randomHashSeed();
    this.k0 = seed.k0;
    this.k1 = seed.k1;
  }

  get size(): number {
    return this.live;
  }

  private hash(vif: number, meta: number, ports: number, src: number, dst: number): number {
    const { k0, k1 } = this;
    return hashWord(vif ^ hashWord(meta ^ hashWord(ports ^ hashWord(src ^ hashWord(dst, k0, k1), k0, k1), k0, k1), k0, k1), k0, k1);
  }

  /**
   * The slot of a flow (its interface is fleet-wide, so it names the node
   * too; addresses are ids in the table's AddressTable), created on first
   * sight: a new slot takes a reference on both addresses.
   */
  slot(nodeId: number, vif: number, meta: number, ports: number, src: number, dst: number, nowMs: number): number {
    const h = this.hash(vif, meta, ports, src, dst);
    const mask = this.heads.length - 1;
    for (let s = this.heads[h & mask]; s >= 0; s = this.nextCol[s]) {
      if (this.hashCol[s] === h && this.vifCol[s] === vif && this.metaCol[s] === meta && this.portsCol[s] === ports && this.srcCol[s] === src && this.dstCol[s] === dst) {
        this.usedCol[s] = nowMs;
        return s;
      }
    }
    const slot = this.freeSlots.pop() ?? this.highWater++;
    if (slot >= this.vifCol.length) this.grow(slot + 1);
    this.vifCol[slot] = vif;
    this.metaCol[slot] = meta;
    this.portsCol[slot] = ports;
    this.srcCol[slot] = src;
    this.dstCol[slot] = dst;
    this.addresses.retain(src);
    this.addresses.retain(dst);
    this.nodeCol[slot] = nodeId;
    this.usedCol[slot] = nowMs;
    this.liveCol[slot] = 1;
    this.hashCol[slot] = h;
    this.link(slot);
    if (++this.live > this.heads.length) this.rehash(this.heads.length * 2);
    return slot;
  }

  private link(slot: number): void {
    const b = this.hashCol[slot] & (this.heads.length - 1);
    this.nextCol[slot] = this.heads[b];
    this.heads[b] = slot;
  }

  private unlink(slot: number): void {
    const b = this.hashCol[slot] & (this.heads.length - 1);
    if (this.heads[b] === slot) {
      this.heads[b] = this.nextCol[slot];
      return;
    }
    for (let s = this.heads[b]; s >= 0; s = this.nextCol[s]) {
      if (this.nextCol[s] === slot) {
        this.nextCol[s] = this.nextCol[slot];
        return;
      }
    }
  }

  private rehash(buckets: number): void {
    this.heads = new Int32Array(buckets).fill(-1);
    for (let s = 0; s < this.highWater; s++) if (this.liveCol[s] === 1) this.link(s);
  }

  private grow(min: number): void {
    this.vifCol = growUint32(this.vifCol, min);
    this.metaCol = growUint32(this.metaCol, min);
    this.portsCol = growUint32(this.portsCol, min);
    this.srcCol = growUint32(this.srcCol, min);
    this.dstCol = growUint32(this.dstCol, min);
    this.nodeCol = growUint32(this.nodeCol, min);
    this.usedCol = growFloat64(this.usedCol, min);
    this.liveCol = growUint8(this.liveCol, min);
    const next = new Int32Array(this.vifCol.length);
    next.set(this.nextCol);
    this.nextCol = next;
    this.hashCol = growUint32(this.hashCol, min);
  }

  /** Releases the slots not used since `beforeMs`. */
  releaseIdle(beforeMs: number): number {
    let released = 0;
    for (let slot = 0; slot < this.highWater; slot++) {
      if (this.liveCol[slot] === 0 || this.usedCol[slot] >= beforeMs) continue;
      this.unlink(slot);
      this.liveCol[slot] = 0;
      this.live--;
      this.addresses.release(this.srcCol[slot]);
      this.addresses.release(this.dstCol[slot]);
      this.freeSlots.push(slot);
      released++;
    }
    return released;
  }

  ifindex(slot: number): number {
    return this.vifCol[slot];
  }
  meta(slot: number): number {
    return this.metaCol[slot];
  }
  ports(slot: number): number {
    return this.portsCol[slot];
  }
  srcId(slot: number): number {
    return this.srcCol[slot];
  }
  dstId(slot: number): number {
    return this.dstCol[slot];
  }
  srcText(slot: number): string {
    return this.addresses.text(this.srcCol[slot]);
  }
  dstText(slot: number): string {
    return this.addresses.text(this.dstCol[slot]);
  }
  nodeId(slot: number): number {
    return this.nodeCol[slot];
  }
  nodeName(slot: number): string {
    return this.nodeNames[this.nodeCol[slot]];
  }
}
