/**
 * Interns address strings as small integer ids with reference counts.
 *
 * Flows and stored records refer to addresses by id (4 bytes) instead of
 * holding their own strings: one copy per distinct address however many flows
 * and records use it, and filters can remember a per-id answer instead of
 * parsing the text again for every record.
 *
 * IPv4 addresses are kept as numbers only, in a typed hash table (no string,
 * no Map entry: about 30 bytes each instead of about 100), and their text is
 * formatted when asked for: a flood from random sources brings one new address
 * per flow. The table's hash is keyed with a random key (HalfSipHash), so
 * sources cannot be chosen to collide in it.
 */
import { hashWord, randomHashSeed } from './flow-hash.js';
import { growFloat64, growUint32 } from '../lib/typed-arrays.js';

export class AddressTable {
  /** ids of IPv6 (not dotted-quad) texts */
  private readonly idOf = new Map<string, number>();
  /** text per id: undefined for a live IPv4 id (formatted from v4[]), '' for a free id */
  private readonly texts: (string | undefined)[] = [];
  private refs = new Uint32Array(1024);
  /** IPv4 address as a number, or -1 for IPv6: prefix tests without parsing text */
  private v4 = new Float64Array(1024);
  private readonly freeIds: number[] = [];
  /** IPv4 index: open addressing, linear probing, load <= 1/2: (address, id + 1) */
  private v4Keys = new Uint32Array(1024);
  private v4Ids = new Uint32Array(1024);
  private v4Mask = 1023;
  private v4Count = 0;
  private readonly k0: number;
  private readonly k1: number;

  constructor() {
    const seed = randomHashSeed();
    this.k0 = seed.k0;
    this.k1 = seed.k1;
  }

  /** Number of distinct addresses currently referenced. */
  get size(): number {
    return this.idOf.size + this.v4Count;
  }

  /** Upper bound (exclusive) of the ids handed out so far: size per-id memo arrays by it. */
  get idLimit(): number {
    return this.texts.length;
  }

  /** Returns the id of `text`, taking one reference. */
  intern(text: string): number {
    const n = ipv4Number(text);
    if (n >= 0) return this.internV4(n);
    let id = this.idOf.get(text);
    if (id === undefined) {
      id = this.newId(text);
      this.v4[id] = -1;
      this.idOf.set(text, id);
    }
    this.refs[id]++;
    return id;
  }

  /** Returns the id of the IPv4 address `n` (a.b.c.d as a*2^24 + ... + d), taking one reference. No allocation for a known address. */
  internV4(n: number): number {
    const keys = this.v4Keys;
    const ids = this.v4Ids;
    const mask = this.v4Mask;
    let pos = hashWord(n, this.k0, this.k1) & mask;
    for (;;) {
      const id1 = ids[pos];
      if (id1 === 0) break;
      if (keys[pos] === n) {
        this.refs[id1 - 1]++;
        return id1 - 1;
      }
      pos = (pos + 1) & mask;
    }
    const id = this.newId(undefined);
    this.v4[id] = n;
    this.refs[id] = 1;
    keys[pos] = n;
    ids[pos] = id + 1;
    if (++this.v4Count * 2 > mask + 1) this.growV4();
    return id;
  }

  /** The id of `text` while some flow or record holds it, else -1; takes no reference (queries). */
  find(text: string): number {
    const n = ipv4Number(text);
    return n >= 0 ? this.findV4(n) : (this.idOf.get(text) ?? -1);
  }

  /** The id of the IPv4 address `n` while held, else -1; takes no reference. */
  findV4(n: number): number {
    const keys = this.v4Keys;
    const ids = this.v4Ids;
    const mask = this.v4Mask;
    for (let pos = hashWord(n, this.k0, this.k1) & mask; ids[pos] !== 0; pos = (pos + 1) & mask) {
      if (keys[pos] === n) return ids[pos] - 1;
    }
    return -1;
  }

  private newId(text: string | undefined): number {
    const id = this.freeIds.pop() ?? this.texts.length;
    if (id === this.texts.length) this.texts.push(text);
    else this.texts[id] = text;
    if (id >= this.refs.length) {
      this.refs = growUint32(this.refs, id + 1);
      this.v4 = growFloat64(this.v4, id + 1);
    }
    return id;
  }

  private growV4(): void {
    const oldKeys = this.v4Keys;
    const oldIds = this.v4Ids;
    const size = (this.v4Mask + 1) * 2;
    this.v4Keys = new Uint32Array(size);
    this.v4Ids = new Uint32Array(size);
    this.v4Mask = size - 1;
    for (let i = 0; i < oldIds.length; i++) {
      if (oldIds[i] === 0) continue;
      let pos = hashWord(oldKeys[i], this.k0, this.k1) & this.v4Mask;
      while (this.v4Ids[pos] !== 0) pos = (pos + 1) & this.v4Mask;
      this.v4Keys[pos] = oldKeys[i];
      this.v4Ids[pos] = oldIds[i];
    }
  }

  /** Removes an IPv4 id from the index (backward-shift deletion: no tombstones). */
  private unindexV4(id: number): void {
    const keys = this.v4Keys;
    const ids = this.v4Ids;
    const mask = this.v4Mask;
    let i = hashWord(this.v4[id], this.k0, this.k1) & mask;
    while (ids[i] !== id + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (ids[j] === 0) break;
      const home = hashWord(keys[j], this.k0, this.k1) & mask;
      const inRange = i <= j ? i < home && home <= j : i < home || home <= j;
      if (inRange) continue;
      keys[i] = keys[j];
      ids[i] = ids[j];
      i = j;
    }
    keys[i] = 0;
    ids[i] = 0;
    this.v4Count--;
  }

  /** Takes one more reference on an id obtained from intern(). */
  retain(id: number): void {
    this.refs[id]++;
  }

  /** Drops one reference; the id is reused once no reference is left. */
  release(id: number): void {
    if (--this.refs[id] === 0) {
      if (this.v4[id] >= 0) this.unindexV4(id);
      else this.idOf.delete(this.texts[id]!);
      this.texts[id] = '';
      this.freeIds.push(id);
    }
  }

  text(id: number): string {
    const t = this.texts[id];
    if (t !== undefined) return t;
    const n = this.v4[id];
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }

  /** The IPv4 address of an id as a 32-bit number, or -1 if it is IPv6. */
  ipv4(id: number): number {
    return this.v4[id];
  }

  refCount(id: number): number {
    return this.refs[id];
  }
}

/** Dotted-quad text to its 32-bit value, or -1 if it is not one (IPv6). No allocation. */
export function ipv4Number(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  return dots === 3 && digits > 0 ? value * 256 + part : -1;
}
