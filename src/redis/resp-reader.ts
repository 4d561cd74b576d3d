/**
 * Reading RESP replies without ioredis's per-element strings and arrays: the
 * bytes a socket delivers are scanned incrementally until a whole reply is
 * there, and stream replies (XREADGROUP, XRANGE) are then indexed in place:
 * an EntryList holds, per entry, where its ID and its fields are in the
 * reply's bytes. The relay's decoder (entry-decoder.ts) reads the fields from
 * there; nothing is copied or turned into a string unless it must be.
 *
 * A reply's bytes stay valid while anyone holds them: the receive buffer is
 * only ever appended to, and a full one is replaced by another. A replaced
 * buffer is used again (fresh memory costs page faults: measured, a third of
 * the relay's reading) only once every reply in it was released; a reply
 * that is never released leaves its buffer to the garbage collector.
 */

/** A receive buffer and how many of the replies in it are still held. */
interface Segment {
  owner: RespScanner;
  buf: Buffer;
  held: number;
  /** replaced by another: no more bytes go into it */
  retired: boolean;
}

/** A whole reply: bytes [start, end) of buf. */
export interface RawReply {
  buf: Buffer;
  start: number;
  end: number;
  /** the buffer it is in; releaseReply() when done with the bytes */
  segment?: Segment;
}

/** The bytes of a reply are no longer needed (its buffer may be used again once all of its replies are). */
export function releaseReply(reply: RawReply): void {
  reply.segment?.owner.release(reply);
}

const CR = 13;
/** receive buffers are this large (or a power of two times it, for a larger reply): one size, so that they can be reused */
const BUFFER_BYTES = 2 * 1024 * 1024;

/** Splits the bytes of a connection into whole replies, in order. */
/** retired buffers kept for reuse */
const POOL = 8;

export class RespScanner {
  private segment: Segment = { owner: this, buf: Buffer.allocUnsafe(BUFFER_BYTES), held: 0, retired: false };
  private readonly pool: Segment[] = [];
  private buf = this.segment.buf;
  /** bytes [start, end) are received and not yet part of a whole reply */
  private start = 0;
  private end = 0;
  /** scan position inside the reply in progress */
  private pos = 0;
  /** elements still expected at each open array level; depth -1: no array open */
  private remaining = new Int32Array(16);
  private depth = -1;

  /**
   * Takes received bytes; calls onReply for every reply they complete. Returns
   * false when the bytes are not RESP (the connection must be dropped).
   */
  push(chunk: Buffer, onReply: (r: RawReply) => void): boolean {
    if (this.end + chunk.length > this.buf.length) this.renew(chunk.length);
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
    for (;;) {
      const done = this.scan();
      if (done < 0) return false;
      if (done === 0) return true;
      const reply: RawReply = { buf: this.buf, start: this.start, end: this.pos, segment: this.segment };
      this.segment.held++;
      this.start = this.pos;
      onReply(reply);
    }
  }

  /** See releaseReply(). */
  release(reply: RawReply): void {
    const s = reply.segment;
    if (!s) return;
    reply.segment = undefined;
    if (--s.held === 0 && s.retired) this.recycle(s);
  }

  private recycle(s: Segment): void {
    if (this.pool.length < POOL) this.pool.push(s);
  }

  /** Another buffer with the reply in progress at its start (replies handed out keep the old one). */
  private renew(incoming: number): void {
    const partial = this.end - this.start;
    let size = BUFFER_BYTES;
    while (size < 2 * (partial + incoming)) size *= 2;
    const old = this.segment;
    old.retired = true;
    const k = this.pool.findIndex((s) => s.buf.length >= size);
    // a pooled buffer too small for what comes is dropped for a larger one
    if (k < 0 && this.pool.length === POOL) this.pool.shift();
    const next: Segment = k >= 0 ? this.pool.splice(k, 1)[0] : { owner: this, buf: Buffer.allocUnsafe(size), held: 0, retired: false };
    next.retired = false;
    next.held = 0;
    old.buf.copy(next.buf, 0, this.start, this.end);
    this.segment = next;
    this.buf = next.buf;
    this.pos -= this.start;
    this.start = 0;
    this.end = partial;
    if (old.held === 0) this.recycle(old);
  }

  /** 1: a reply completed at pos; 0: more bytes needed; -1: not RESP. */
  private scan(): number {
    const b = this.buf;
    const end = this.end;
    let pos = this.pos;
    for (;;) {
      if (pos >= end) break;
      const type = b[pos];
      let k = pos + 1;
      let n = 0;
      let negative = false;
      if (type === 36 || type === 42) {
        // $<len> or *<count>: the number up to CR
        if (k < end && b[k] === 45) {
          negative = true;
          k++;
        }
        while (k < end && b[k] !== CR) {
          const d = b[k] - 48;
          if (d < 0 || d > 9) return -1;
          n = n * 10 + d;
          k++;
        }
      } else if (type === 43 || type === 45 || type === 58) {
        while (k < end && b[k] !== CR) k++;
      } else return -1;
      if (k + 1 >= end) break; // the line's CR LF has not all arrived
      let next = k + 2;
      if (type === 36 && !negative) {
        next += n + 2;
        if (next > end) break;
      } else if (type === 42 && !negative && n > 0) {
        if (++this.depth === this.remaining.length) {
          const deeper = new Int32Array(this.remaining.length * 2);
          deeper.set(this.remaining);
          this.remaining = deeper;
        }
        this.remaining[this.depth] = n;
        pos = next;
        continue;
      }
      pos = next;
      // an element is complete: close the arrays it completes
      while (this.depth >= 0 && --this.remaining[this.depth] === 0) this.depth--;
      if (this.depth < 0) {
        this.pos = pos;
        return 1;
      }
    }
    this.pos = pos;
    return 0;
  }
}

/** The number written between pos + 1 and the next CR (a `$`, `*` or `:` line). */
export function lineNumber(buf: Buffer, pos: number): number {
  let k = pos + 1;
  let negative = false;
  if (buf[k] === 45) {
    negative = true;
    k++;
  }
  let n = 0;
  while (buf[k] !== CR) n = n * 10 + buf[k++] - 48;
  return negative ? -n : n;
}

/** Position after the CR LF of the line at pos. */
export function afterLine(buf: Buffer, pos: number): number {
  let k = pos + 1;
  while (buf[k] !== CR) k++;
  return k + 2;
}

/** Position after the element (of any type) that starts at pos. */
export function skipElement(buf: Buffer, pos: number): number {
  const type = buf[pos];
  if (type === 36) {
    const n = lineNumber(buf, pos);
    const body = afterLine(buf, pos);
    return n < 0 ? body : body + n + 2;
  }
  if (type === 42) {
    const n = lineNumber(buf, pos);
    let p = afterLine(buf, pos);
    for (let i = 0; i < n; i++) p = skipElement(buf, p);
    return p;
  }
  return afterLine(buf, pos);
}

/** The text of an error reply (`-ERR ...`), or undefined when the reply is not one. */
export function errorText(r: RawReply): string | undefined {
  return r.buf[r.start] === 45 ? r.buf.toString('utf8', r.start + 1, afterLine(r.buf, r.start) - 2) : undefined;
}

/** The stream entries of a reply, as places in its bytes. */
export class EntryList {
  count = 0;
  buf: Buffer = Buffer.alloc(0);
  /** where each entry's ID text starts and ends */
  idStart = new Int32Array(1024);
  idEnd = new Int32Array(1024);
  /** where its first field's `$` is */
  fields = new Int32Array(1024);
  /** fields and values (twice the pairs); -1 for an entry without fields (deleted while pending) */
  items = new Int32Array(1024);

  private room(n: number): void {
    if (n <= this.idStart.length) return;
    const size = Math.max(n, 2 * this.idStart.length);
    const grow = (a: Int32Array) => {
      const b = new Int32Array(size);
      b.set(a);
      return b;
    };
    this.idStart = grow(this.idStart);
    this.idEnd = grow(this.idEnd);
    this.fields = grow(this.fields);
    this.items = grow(this.items);
  }

  /** The ms part of entry i's ID. */
  idMs(i: number): number {
    let v = 0;
    const b = this.buf;
    for (let k = this.idStart[i]; k < this.idEnd[i] && b[k] !== 45; k++) v = v * 10 + b[k] - 48;
    return v;
  }

  /** The sequence part of entry i's ID (exact below 2^53). */
  idSeq(i: number): number {
    const b = this.buf;
    let k = this.idStart[i];
    while (k < this.idEnd[i] && b[k] !== 45) k++;
    let v = 0;
    for (k++; k < this.idEnd[i]; k++) v = v * 10 + b[k] - 48;
    return v;
  }

  /** Entry i's ID as text. */
  id(i: number): string {
    return this.buf.toString('latin1', this.idStart[i], this.idEnd[i]);
  }

  /** Entry i's fields as strings (the slow path's input), or null for an entry without fields. */
  fieldStrings(i: number): string[] | null {
    const items = this.items[i];
    if (items < 0) return null;
    const out: string[] = [];
    let p = this.fields[i];
    const b = this.buf;
    for (let k = 0; k < items; k++) {
      const n = lineNumber(b, p);
      const body = afterLine(b, p);
      out.push(n < 0 ? '' : b.toString('utf8', body, body + n));
      p = n < 0 ? body : body + n + 2;
    }
    return out;
  }

  /**
   * Indexes an array of entries (`*N` of `*2 [$id, *2k fields]`) at pos, as
   * XRANGE answers; returns the position after it.
   */
  readEntries(buf: Buffer, pos: number): number {
    this.buf = buf;
    this.count = 0;
    if (buf[pos] !== 42) throw new Error('stream reply: not an array');
    const n = lineNumber(buf, pos);
    pos = afterLine(buf, pos);
    if (n <= 0) return pos;
    this.room(n);
    for (let i = 0; i < n; i++) {
      // *2
      if (buf[pos] !== 42 || lineNumber(buf, pos) !== 2) throw new Error('stream reply: an entry is not [id, fields]');
      pos = afterLine(buf, pos);
      if (buf[pos] !== 36) throw new Error('stream reply: an entry ID is not a string');
      const idLen = lineNumber(buf, pos);
      const idStart = afterLine(buf, pos);
      this.idStart[i] = idStart;
      this.idEnd[i] = idStart + idLen;
      pos = idStart + idLen + 2;
      if (buf[pos] !== 42) throw new Error('stream reply: entry fields are not an array');
      const items = lineNumber(buf, pos);
      pos = afterLine(buf, pos);
      this.fields[i] = pos;
      this.items[i] = items < 0 ? -1 : items;
      for (let k = 0; k < items; k++) {
        if (buf[pos] !== 36 || buf[pos + 1] === 45) {
          pos = skipElement(buf, pos);
          continue;
        }
        // a bulk string, inline: $<len>\r\n<bytes>\r\n
        let q = pos + 1;
        let n = 0;
        while (buf[q] !== CR) n = n * 10 + buf[q++] - 48;
        pos = q + 2 + n + 2;
      }
      this.count++;
    }
    return pos;
  }

  /**
   * Indexes an XREADGROUP reply of one stream (`*1 [*2 [$key, entries]]`, or
   * a null when nothing is new).
   */
  readGroupReply(r: RawReply): void {
    const buf = r.buf;
    let pos = r.start;
    this.buf = buf;
    this.count = 0;
    if (buf[pos] !== 42) throw new Error('XREADGROUP reply: not an array');
    if (lineNumber(buf, pos) <= 0) return;
    pos = afterLine(buf, pos); // *1
    pos = afterLine(buf, pos); // *2
    pos = skipElement(buf, pos); // the key
    this.readEntries(buf, pos);
  }

  /** Indexes an XRANGE reply. */
  readRangeReply(r: RawReply): void {
    this.readEntries(r.buf, r.start);
  }
}
