/**
 * The sink's bounded FIFO of encoded stream entries, waiting to be written.
 *
 * A ring of parallel columns: the entry's encoded fields (one string, see
 * entry-encoding.ts), its field-pair count, its export time and, once it has
 * been sent at least once, its stream ID. The ID is kept across retries so
 * that re-sending an entry Redis already has is recognised (see
 * stream-sink.ts): that is what makes the retries exact.
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

export class EntryQueue {
  private readonly fields: (string | undefined)[];
  private readonly pairs: Uint8Array;
  private readonly exportMs: Float64Array;
  private readonly idMs: Float64Array;
  private readonly idSeq: Float64Array;
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
    this.fields = new Array<string | undefined>(capacity);
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

  /** Appends an entry; false (and nothing kept) when the queue is full. */
  push(fields: string, pairs: number, exportMs: number): boolean {
    if (this.count === this.capacity) return false;
    const at = (this.head + this.count) % this.capacity;
    this.fields[at] = fields;
    this.pairs[at] = pairs;
    this.exportMs[at] = exportMs;
    this.idMs[at] = 0;
    this.idSeq[at] = 0;
    this.count++;
    return true;
  }

  private at(i: number): number {
    if (i < 0 || i >= this.count) throw new RangeError(`queue index ${i} out of range 0..${this.count - 1}`);
    return (this.head + i) % this.capacity;
  }

  fieldsAt(i: number): string {
    return this.fields[this.at(i)]!;
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

  /** Removes the n oldest entries. */
  shift(n: number): void {
    if (n > this.count) throw new RangeError(`cannot remove ${n} of ${this.count} entries`);
    for (let k = 0; k < n; k++) this.fields[(this.head + k) % this.capacity] = undefined;
    this.head = (this.head + n) % this.capacity;
    this.count -= n;
  }
}
