/**
 * The heads of a record index's chains, one per key value of a column: the
 * newest record holding the key and how many records in the ring hold it.
 * Two kinds behind one read interface:
 * - BucketHeads, an array of buckets for integer keys with many values
 *   (address ids, ports): a few array accesses per record, keys sharing a
 *   bucket share its chain;
 * - HashedHeads, an open-addressing hash table, one chain per key, for the
 *   keys with few values (the class key, cgroup ids), remembering the last
 *   key it looked up (the records of a batch mostly repeat it).
 *
 * Heads are kept modulo 2^32: a key with records in the ring has its newest
 * one less than the ring's capacity (at most 2^26) behind the ring's end,
 * so the full sequence number is recovered from the end (headSeq).
 */
import { hashNumber } from '../lib/number-index.js';
const EMPTY_COUNT = 0;

/** Read side of the heads, for queries: a slot per key; a slot with count 0 holds no key. */
export interface Heads {
  readonly slots: number;
  keyAt(slot: number): number;
  countAt(slot: number): number;
  /** The newest record of the key in `slot` (count > 0), given the ring's end sequence number. */
  headSeq(slot: number, endSeq: number): number;
  /** The slot of `key`'s chain, or -1 when no stored record is on it. */
  find(key: number): number;
  /** Starts a pass that visits slots once each (mark()). */
  newPass(): void;
  /** Marks a slot in this pass; false if it already was. */
  mark(slot: number): boolean;
  /** Bytes held. */
  readonly bytes: number;
}

/** Per-slot marks of a pass, by pass number (a byte per slot, cleared every 255 passes). */
class Marks {
  private passes = new Uint8Array(0);
  private pass = 0;

  newPass(slots: number): void {
    if (this.passes.length !== slots) {
      this.passes = new Uint8Array(slots);
      this.pass = 0;
    } else if (this.pass === 255) {
      this.passes.fill(0);
      this.pass = 0;
    }
    this.pass++;
  }

  mark(slot: number): boolean {
    if (this.passes[slot] === this.pass) return false;
    this.passes[slot] = this.pass;
    return true;
  }
}

/** The sequence number a head kept modulo 2^32 stands for, the ring ending at `endSeq`. */
function fullSeq(head: number, endSeq: number): number {
  return endSeq - (((endSeq >>> 0) - head) >>> 0);
}

/**
 * Heads of chains per bucket: a key's chain is its bucket's, key & mask, so
 * keys that share a bucket share a chain and a count (a walk tests each
 * record it reaches). The table is sized by the store, not by the keys:
 * address ids of a million flows cost no more than a few. A bucket's head
 * and count sit side by side: one cache line per record written.
 */
export class BucketHeads implements Heads {
  /** [head, count] per bucket */
  private readonly cells: Uint32Array;
  readonly mask: number;
  private readonly marks = new Marks();

  /** `buckets`: a power of two */
  constructor(buckets: number) {
    this.cells = new Uint32Array(buckets * 2);
    this.mask = buckets - 1;
  }

  get slots(): number {
    return this.mask + 1;
  }

  keyAt(slot: number): number {
    return slot;
  }

  countAt(slot: number): number {
    return this.cells[2 * slot + 1];
  }

  headSeq(slot: number, endSeq: number): number {
    return fullSeq(this.cells[2 * slot], endSeq);
  }

  newPass(): void {
    this.marks.newPass(this.slots);
  }

  mark(slot: number): boolean {
    return this.marks.mark(slot);
  }

  /** The bucket of `key` when some stored record is in it, else -1. */
  find(key: number): number {
    const bucket = key & this.mask;
    return this.cells[2 * bucket + 1] !== EMPTY_COUNT ? bucket : -1;
  }

  /** Record `seq` holding `key` enters the ring; returns its chain link (how far back its bucket's previous record is, 0: none). */
  push(key: number, seq: number): number {
    const at = 2 * (key & this.mask);
    const cells = this.cells;
    const count = cells[at + 1];
    const link = count === EMPTY_COUNT ? 0 : ((seq >>> 0) - cells[at]) >>> 0;
    cells[at] = seq >>> 0;
    cells[at + 1] = count + 1;
    return link;
  }

  /** A record holding `key` leaves the ring. */
  drop(key: number): void {
    this.cells[2 * (key & this.mask) + 1]--;
  }

  /** with the marks a query's planning uses (a byte per bucket) */
  get bytes(): number {
    return this.cells.byteLength + this.slots;
  }
}

/**
 * Heads in an open-addressing hash table over typed arrays (no Map entry,
 * no heap number per key), keys non-negative integers below 2^53. A key
 * leaves the table with its last record (backward-shift deletion, no
 * tombstones) and the table shrinks after a burst of keys, so it holds
 * only keys of stored records.
 */
export class HashedHeads implements Heads {
  private keys: Float64Array;
  private heads: Uint32Array;
  /** 0 marks an empty slot */
  private counts: Uint32Array;
  private mask: number;
  /** keys held */
  size = 0;
  /** the last key looked up and its slot; a removal or resize moves slots and forgets it */
  private lastKey = -1;
  private lastSlot = -1;
  private readonly marks = new Marks();

  constructor(expected = 8) {
    let n = 16;
    while (n < expected * 2) n *= 2;
    this.keys = new Float64Array(n);
    this.heads = new Uint32Array(n);
    this.counts = new Uint32Array(n);
    this.mask = n - 1;
  }

  get slots(): number {
    return this.counts.length;
  }

  keyAt(slot: number): number {
    return this.keys[slot];
  }

  countAt(slot: number): number {
    return this.counts[slot];
  }

  headSeq(slot: number, endSeq: number): number {
    return fullSeq(this.heads[slot], endSeq);
  }

  newPass(): void {
    this.marks.newPass(this.slots);
  }

  mark(slot: number): boolean {
    return this.marks.mark(slot);
  }

  find(key: number): number {
    if (key === this.lastKey) return this.lastSlot;
    const { keys, counts, mask } = this;
    for (let pos = hashNumber(key) & mask; ; pos = (pos + 1) & mask) {
      if (counts[pos] === EMPTY_COUNT) return -1;
      if (keys[pos] === key) {
        this.lastKey = key;
        this.lastSlot = pos;
        return pos;
      }
    }
  }

  /** Record `seq` holding `key` enters the ring; returns its chain link (how far back the key's previous record is, 0: none). */
  push(key: number, seq: number): number {
    const slot = this.find(key);
    if (slot >= 0) {
      const link = ((seq >>> 0) - this.heads[slot]) >>> 0;
      this.heads[slot] = seq >>> 0;
      this.counts[slot]++;
      return link;
    }
    const { keys, counts, mask } = this;
    let pos = hashNumber(key) & mask;
    while (counts[pos] !== EMPTY_COUNT) pos = (pos + 1) & mask;
    keys[pos] = key;
    this.heads[pos] = seq >>> 0;
    counts[pos] = 1;
    this.lastKey = key;
    this.lastSlot = pos;
    if (++this.size * 2 > counts.length) this.resize(counts.length * 2);
    return 0;
  }

  /** A record holding `key` leaves the ring; the key goes with its last record. */
  drop(key: number): void {
    const slot = this.find(key);
    if (--this.counts[slot] === EMPTY_COUNT) this.remove(slot);
  }

  private remove(slot: number): void {
    this.lastKey = -1;
    const { keys, heads, counts, mask } = this;
    let i = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      if (counts[j] === EMPTY_COUNT) break;
      const home = hashNumber(keys[j]) & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      keys[i] = keys[j];
      heads[i] = heads[j];
      counts[i] = counts[j];
      i = j;
    }
    counts[i] = EMPTY_COUNT;
    // A burst of keys gone: the table shrinks with them (queries go through its slots).
    if (--this.size * 8 < counts.length && counts.length > 16) this.resize(counts.length / 2);
  }

  private resize(n: number): void {
    this.lastKey = -1;
    const { keys: oldKeys, heads: oldHeads, counts: oldCounts } = this;
    this.keys = new Float64Array(n);
    this.heads = new Uint32Array(n);
    this.counts = new Uint32Array(n);
    this.mask = n - 1;
    for (let i = 0; i < oldCounts.length; i++) {
      if (oldCounts[i] === EMPTY_COUNT) continue;
      let pos = hashNumber(oldKeys[i]) & this.mask;
      while (this.counts[pos] !== EMPTY_COUNT) pos = (pos + 1) & this.mask;
      this.keys[pos] = oldKeys[i];
      this.heads[pos] = oldHeads[i];
      this.counts[pos] = oldCounts[i];
    }
  }

  get bytes(): number {
    return this.counts.length * 17;
  }
}
