/**
 * The sink's bounded FIFO of encoded stream entries, waiting to be written.
 *
 * Each entry is the RESP bytes of its field/value pairs (entry-encoding.ts),
 * written straight into a chunked byte arena: chunks of CHUNK_BYTES, an entry
 * never spans two, a chunk is released once the head has passed it. Next to
 * the bytes, a ring of parallel columns: the entry's place in the arena, its
 * field-pair count, its export time and, once it has been sent at least
 * once, its stream ID. The ID is kept across retries so that re-sending an
 * entry Redis already has is recognised (see stream-sink.ts): that is what
 * makes the retries exact.
 *
 * A buffered entry thus costs its RESP bytes (~450-500) plus 41 bytes of
 * columns, with no JS object per entry for the garbage collector to trace.
 *
 * Entries are only removed from the head, once delivered; pushing onto a
 * full queue refuses the entry (the caller counts it as dropped), so the
 * entries that are kept stay contiguous and in order.
 */

/** Stream ID parts; ms = 0 means "not assigned yet". */
export interface EntryId {
  ms: number;
  seq: number;
}

/** Arena chunk size: many entries each (an entry is < 2 KB unless names are huge). */
const CHUNK_BYTES = 256 * 1024;

export class EntryQueue {
  /** arena chunks, chunks[k] has number firstChunk + k */
  private chunks: Buffer[] = [];
  private firstChunk = 0;
  /** write position in the last chunk */
  private tailPos = 0;
  private readonly chunkOf: Float64Array;
  private readonly offset: Uint32Array;
  private readonly size: Uint32Array;
  private readonly pairs: Uint8Array;
  private readonly exportMs: Float64Array;
  private readonly idMs: Float64Array;
  private readonly idSeq: Float64Array;
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
    this.chunkOf = new Float64Array(capacity);
    this.offset = new Uint32Array(capacity);
    this.size = new Uint32Array(capacity);
    this.pairs = new Uint8Array(capacity);
    this.exportMs = new Float64Array(capacity);
    this.idMs = new Float64Array(capacity);
    this.idSeq = new Float64Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  /** Bytes of arena held (for tests and the memory bench). */
  get arenaBytes(): number {
    return this.chunks.reduce((a, c) => a + c.length, 0);
  }

  /**
   * Room for an entry of at most maxBytes: the buffer and position to write
   * it at, then commit() its length. Undefined when the queue is full.
   */
  reserve(maxBytes: number): { buf: Buffer; pos: number } | undefined {
    if (this.count === this.capacity) return undefined;
    let tail = this.chunks[this.chunks.length - 1];
    if (!tail || this.tailPos + maxBytes > tail.length) {
      tail = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, maxBytes));
      this.chunks.push(tail);
      this.tailPos = 0;
    }
    return { buf: tail, pos: this.tailPos };
  }

  /** Appends the entry written at the reserved position: `bytes` long, `pairs` field/value pairs. */
  commit(bytes: number, pairs: number, exportMs: number): void {
    const at = (this.head + this.count) % this.capacity;
    this.chunkOf[at] = this.firstChunk + this.chunks.length - 1;
    this.offset[at] = this.tailPos;
    this.size[at] = bytes;
    this.pairs[at] = pairs;
    this.exportMs[at] = exportMs;
    this.idMs[at] = 0;
    this.idSeq[at] = 0;
    this.tailPos += bytes;
    this.count++;
  }

  /** Appends an entry given as bytes (tests, tools); false (and nothing kept) when full. */
  push(fields: Uint8Array, pairs: number, exportMs: number): boolean {
    const r = this.reserve(fields.length);
    if (!r) return false;
    r.buf.set(fields, r.pos);
    this.commit(fields.length, pairs, exportMs);
    return true;
  }

  private at(i: number): number {
    if (i < 0 || i >= this.count) throw new RangeError(`queue index ${i} out of range 0..${this.count - 1}`);
    return (this.head + i) % this.capacity;
  }

  /** Copies entry i's field bytes into out at pos; returns the position after them. */
  copyFields(i: number, out: Buffer, pos: number): number {
    const at = this.at(i);
    const chunk = this.chunks[this.chunkOf[at] - this.firstChunk];
    const off = this.offset[at];
    return pos + chunk.copy(out, pos, off, off + this.size[at]);
  }

  /** Entry i's field bytes (a view into the arena, valid until the entry is removed). */
  fieldsAt(i: number): Buffer {
    const at = this.at(i);
    const off = this.offset[at];
    return this.chunks[this.chunkOf[at] - this.firstChunk].subarray(off, off + this.size[at]);
  }

  sizeAt(i: number): number {
    return this.size[this.at(i)];
  }

  pairsAt(i: number): number {
    return this.pairs[this.at(i)];
  }

  exportMsAt(i: number): number {
    return this.exportMs[this.at(i)];
  }

  idAt(i: number): EntryId {
    const at = this.at(i);
    return { ms: this.idMs[at], seq: this.idSeq[at] };
  }

  idMsAt(i: number): number {
    return this.idMs[this.at(i)];
  }

  idSeqAt(i: number): number {
    return this.idSeq[this.at(i)];
  }

  hasId(i: number): boolean {
    return this.idMs[this.at(i)] !== 0;
  }

  setId(i: number, ms: number, seq: number): void {
    const at = this.at(i);
    this.idMs[at] = ms;
    this.idSeq[at] = seq;
  }

  clearId(i: number): void {
    this.setId(i, 0, 0);
  }

  /** Removes the n oldest entries, releasing the arena chunks nothing uses any more. */
  shift(n: number): void {
    if (n > this.count) throw new RangeError(`cannot remove ${n} of ${this.count} entries`);
    this.head = (this.head + n) % this.capacity;
    this.count -= n;
    if (this.count === 0) {
      // keep one chunk for what comes next, from its start
      if (this.chunks.length > 1) {
        this.firstChunk += this.chunks.length - 1;
        this.chunks = [this.chunks[this.chunks.length - 1]];
      }
      this.tailPos = 0;
      return;
    }
    const first = this.chunkOf[this.head];
    if (first > this.firstChunk) {
      this.chunks.splice(0, first - this.firstChunk);
      this.firstChunk = first;
    }
  }
}
