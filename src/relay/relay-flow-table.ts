/**
 * The relay's flow identities: one slot per (node, interface, 5-tuple) seen in
 * the streams, so that the service's TopWindows can group the fleet's records
 * exactly as an agent's TopWindows groups its own (it reads flows by slot).
 *
 * Interfaces are numbered per (node, ifindex) as "virtual" indexes: two nodes
 * both have an ifindex 2, and they are two interfaces. Slots not used for
 * `idleMs` are released when a top-talkers bucket closes (the only reader of
 * slots is the open bucket, and it is empty at that moment).
 */
import type { AddressTable } from '../flow/address-table.js';
import type { FlowNodeReader, FlowTupleReaderWithIds } from '../flow/tuple-reader.js';
import { growFloat64, growUint32 } from '../lib/typed-arrays.js';

export class RelayFlowTable implements FlowTupleReaderWithIds, FlowNodeReader {
  readonly many = true;
  private readonly slotOf = new Map<string, number>();
  private keys: (string | undefined)[] = [];
  private vifCol = new Uint32Array(1024);
  private metaCol = new Uint32Array(1024);
  private portsCol = new Uint32Array(1024);
  private srcCol = new Uint32Array(1024);
  private dstCol = new Uint32Array(1024);
  private nodeCol = new Uint32Array(1024);
  private usedCol = new Float64Array(1024);
  private readonly freeSlots: number[] = [];
  private highWater = 0;

  constructor(
    private readonly addresses: AddressTable,
    /** name of a node by its id */
    private readonly nodeNames: string[],
  ) {}

  get size(): number {
    return this.slotOf.size;
  }

  /** The slot of a flow, created on first sight; takes address references for new slots. */
  slot(nodeId: number, vif: number, meta: number, ports: number, src: string, dst: string, nowMs: number): number {
    const key = `${nodeId} ${vif} ${meta} ${ports} ${src} ${dst}`;
    let slot = this.slotOf.get(key);
    if (slot === undefined) {
      slot = this.freeSlots.pop() ?? this.highWater++;
      if (slot >= this.vifCol.length) this.grow(slot + 1);
      this.slotOf.set(key, slot);
      this.keys[slot] = key;
      this.vifCol[slot] = vif;
      this.metaCol[slot] = meta;
      this.portsCol[slot] = ports;
      this.srcCol[slot] = this.addresses.intern(src);
      this.dstCol[slot] = this.addresses.intern(dst);
      this.nodeCol[slot] = nodeId;
    }
    this.usedCol[slot] = nowMs;
    return slot;
  }

  private grow(min: number): void {
    this.vifCol = growUint32(this.vifCol, min);
    this.metaCol = growUint32(this.metaCol, min);
    this.portsCol = growUint32(this.portsCol, min);
    this.srcCol = growUint32(this.srcCol, min);
    this.dstCol = growUint32(this.dstCol, min);
    this.nodeCol = growUint32(this.nodeCol, min);
    this.usedCol = growFloat64(this.usedCol, min);
  }

  /** Releases the slots not used since `beforeMs`. */
  releaseIdle(beforeMs: number): number {
    let released = 0;
    for (let slot = 0; slot < this.highWater; slot++) {
      const key = this.keys[slot];
      if (key === undefined || this.usedCol[slot] >= beforeMs) continue;
      this.slotOf.delete(key);
      this.keys[slot] = undefined;
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
