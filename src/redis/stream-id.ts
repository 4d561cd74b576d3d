/**
 * Stream IDs chosen by the sink rather than by Redis (`*`).
 *
 * The ID of an entry is fixed the first time it is sent and kept across
 * retries. Redis refuses an XADD whose ID is not above the stream's last one,
 * so re-sending an entry that did arrive (its reply was lost with the
 * connection) is refused instead of stored twice: the retry is idempotent.
 * IDs follow the export time (ms part) so that XRANGE by time works, and
 * always increase.
 */

/** The refusal Redis gives to an XADD with an ID at or below the stream's last ID. */
export const ID_TOO_SMALL = /equal or smaller than the target stream top item/;

export function parseStreamId(id: string): { ms: number; seq: number } | undefined {
  const m = /^(\d+)-(\d+)$/.exec(id);
  return m ? { ms: Number(m[1]), seq: Number(m[2]) } : undefined;
}

export function compareIds(a: string, b: string): number {
  const x = parseStreamId(a);
  const y = parseStreamId(b);
  if (!x || !y) return a < b ? -1 : a > b ? 1 : 0;
  return x.ms - y.ms || x.seq - y.seq;
}

/** Hands out increasing IDs, never at or below a floor (the stream's last ID). */
export class StreamIdClock {
  private lastMs = 0;
  private lastSeq = 0;

  /** Raises the floor to the stream's last ID (read at each (re)connect). */
  raiseFloor(ms: number, seq: number): void {
    if (ms > this.lastMs || (ms === this.lastMs && seq > this.lastSeq)) {
      this.lastMs = ms;
      this.lastSeq = seq;
    }
  }

  /** The next ID for an entry exported at exportMs. */
  next(exportMs: number): { ms: number; seq: number } {
    const ms = Math.max(Math.floor(exportMs), this.lastMs, 1);
    const seq = ms === this.lastMs ? this.lastSeq + 1 : 0;
    this.lastMs = ms;
    this.lastSeq = seq;
    return { ms, seq };
  }
}
