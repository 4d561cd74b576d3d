/**
 * Interns address strings as small integer ids with reference counts.
 *
 * Flows and stored records refer to addresses by id (4 bytes) instead of
 * holding their own strings: one copy per distinct address however many flows
 * and records use it, and filters can remember a per-id answer instead of
 * parsing the text again for every record.
 */
import { growFloat64, growUint32 } from './typed-arrays.js';

export class AddressTable {
  private readonly idOf = new Map<string, number>();
  private readonly texts: string[] = [];
  private refs = new Uint32Array(1024);
  /** IPv4 address as a number, or -1 for IPv6: prefix tests without parsing text */
  private v4 = new Float64Array(1024);
  private readonly freeIds: number[] = [];

  /** Number of distinct addresses currently referenced. */
  get size(): number {
    return this.idOf.size;
  }

  /** Upper bound (exclusive) of the ids handed out so far: size per-id memo arrays by it. */
  get idLimit(): number {
    return this.texts.length;
  }

  /** Returns the id of `text`, taking one reference. */
  intern(text: string): number {
    let id = this.idOf.get(text);
    if (id === undefined) {
      id = this.freeIds.pop() ?? this.texts.length;
      if (id === this.texts.length) this.texts.push(text);
      else this.texts[id] = text;
      if (id >= this.refs.length) {
        this.refs = growUint32(this.refs, id + 1);
        this.v4 = growFloat64(this.v4, id + 1);
      }
      this.v4[id] = ipv4Number(text);
      this.idOf.set(text, id);
    }
    this.refs[id]++;
    return id;
  }

  /** Takes one more reference on an id obtained from intern(). */
  retain(id: number): void {
    this.refs[id]++;
  }

  /** Drops one reference; the id is reused once no reference is left. */
  release(id: number): void {
    if (--this.refs[id] === 0) {
      this.idOf.delete(this.texts[id]);
      this.texts[id] = '';
      this.freeIds.push(id);
    }
  }

  text(id: number): string {
    return this.texts[id];
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
