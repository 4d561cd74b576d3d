/**
 * Dense ids for non-negative integer keys below 2^53 (address ids, ports,
 * packed pairs): an open-addressing hash table (linear probing) over typed
 * arrays, for grouping a million flows without a Map entry or a heap number
 * per key. Ids are handed out 0, 1, 2, ... in order of first sight. No removal.
 */
const EMPTY = 0;

/**
 * A 32-bit mix of an integer key below 2^53, for open-addressing tables.
 * Not keyed: for keys the table hands out or counts, not for keys traffic
 * chooses (those go through flow/flow-hash.ts).
 */
export function hashNumber(key: number): number {
  const lo = key >>> 0;
  const hi = (key / 4294967296) >>> 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

export class NumberIndex {
  private keys: Float64Array;
  /** id + 1 per entry; 0 = empty */
  private ids: Int32Array;
  private mask: number;
  /** keys held (= the next id) */
  size = 0;

  constructor(expected = 1024) {
    const n = NumberIndex.sizeFor(expected);
    this.keys = new Float64Array(n);
    this.ids = new Int32Array(n);
    this.mask = n - 1;
  }

  private static sizeFor(expected: number): number {
    let n = 16;
    while (n < expected * 2) n *= 2;
    return n;
  }

  /** Forgets every key, keeping the memory (sized for `expected` keys without growing). */
  clear(expected = 0): void {
    const n = NumberIndex.sizeFor(expected);
    if (n > this.ids.length) {
      this.keys = new Float64Array(n);
      this.ids = new Int32Array(n);
      this.mask = n - 1;
    } else {
      this.ids.fill(EMPTY);
    }
    this.size = 0;
  }

  /** The id of `key`, or -1 if it has none. */
  get(key: number): number {
    const { keys, ids, mask } = this;
    for (let pos = hashNumber(key) & mask; ; pos = (pos + 1) & mask) {
      const id1 = ids[pos];
      if (id1 === EMPTY) return -1;
      if (keys[pos] === key) return id1 - 1;
    }
  }

  /** The id of `key`, given the next id (the old `size`) if it is new. */
  idOf(key: number): number {
    const { keys, ids, mask } = this;
    let pos = hashNumber(key) & mask;
    for (;;) {
      const id1 = ids[pos];
      if (id1 === EMPTY) break;
      if (keys[pos] === key) return id1 - 1;
      pos = (pos + 1) & mask;
    }
    const id = this.size++;
    keys[pos] = key;
    ids[pos] = id + 1;
    if (this.size * 2 > ids.length) this.grow();
    return id;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldIds = this.ids;
    const n = oldIds.length * 2;
    const keys = new Float64Array(n);
    const ids = new Int32Array(n);
    const mask = n - 1;
    for (let i = 0; i < oldIds.length; i++) {
      if (oldIds[i] === EMPTY) continue;
      let pos = hashNumber(oldKeys[i]) & mask;
      while (ids[pos] !== EMPTY) pos = (pos + 1) & mask;
      keys[pos] = oldKeys[i];
      ids[pos] = oldIds[i];
    }
    this.keys = keys;
    this.ids = ids;
    this.mask = mask;
  }
}
