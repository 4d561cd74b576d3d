/**
 * The live Server-Sent Event streams of one HTTP app: a bound on how many
 * there are at once (`--max-followers`), and the one place that ends them all
 * when the server stops (a hijacked response is invisible to fastify, and an
 * open stream would otherwise keep `server.close()` waiting for ever).
 */

export interface LiveStream {
  /** Ends the stream now: gracefully when nothing is queued for the client, else by destroying the socket. */
  close(): void;
  /** Bytes queued in the process for this client (the socket's writable buffer). */
  readonly buffered: number;
}

/** Replayed records held in memory for all streams together, at most (about 60 MB of records). */
export const DEFAULT_REPLAY_BUDGET = 100_000;

export class StreamRegistry {
  private readonly live = new Set<LiveStream>();
  private closing = false;
  private replayHeld = 0;

  constructor(
    readonly max: number,
    /** records that replays waiting for slow clients may hold at once, all streams together */
    readonly replayBudget: number = DEFAULT_REPLAY_BUDGET,
  ) {
    if (!(Number.isInteger(max) && max >= 0)) throw new RangeError(`max followers must be an integer >= 0, got ${max}`);
  }

  /** Replayed records currently held for clients that have not taken them yet. */
  get replayRecords(): number {
    return this.replayHeld;
  }

  /** Takes up to `wanted` records of the replay budget; returns how many were granted. */
  reserveReplay(wanted: number): number {
    const granted = Math.max(0, Math.min(wanted, this.replayBudget - this.replayHeld));
    this.replayHeld += granted;
    return granted;
  }

  releaseReplay(n: number): void {
    this.replayHeld = Math.max(0, this.replayHeld - n);
  }

  get size(): number {
    return this.live.size;
  }

  /** True once closeAll() ran: no stream is admitted any more. */
  get stopping(): boolean {
    return this.closing;
  }

  /** Whether one more stream fits. */
  get full(): boolean {
    return this.live.size >= this.max;
  }

  add(stream: LiveStream): void {
    this.live.add(stream);
  }

  delete(stream: LiveStream): void {
    this.live.delete(stream);
  }

  /** Bytes queued for all live streams together. */
  get buffered(): number {
    let n = 0;
    for (const s of this.live) n += s.buffered;
    return n;
  }

  /** Ends every live stream and refuses new ones (server stop). */
  closeAll(): void {
    this.closing = true;
    for (const s of [...this.live]) s.close();
    this.live.clear();
  }
}
