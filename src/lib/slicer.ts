/**
 * Time slices for long computations on the one JS thread: work in small
 * chunks, ask `due` after each, and `await next()` when it says so. The event
 * loop then runs (HTTP requests, timers) before the work goes on, so no
 * request waits more than about one slice behind a poll.
 */
const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Default slice: what a request may wait behind a poll, ms. */
export const DEFAULT_SLICE_MS = 2;

export class Slicer {
  private sliceStart = performance.now();
  /** yields so far */
  yields = 0;

  constructor(readonly sliceMs: number = DEFAULT_SLICE_MS) {}

  /** True when the current slice is used up: then `await next()`. */
  get due(): boolean {
    return performance.now() - this.sliceStart >= this.sliceMs;
  }

  /** Yields to the event loop and starts a new slice. */
  async next(): Promise<void> {
    this.yields++;
    await yieldNow();
    this.sliceStart = performance.now();
  }

  /** Yields only if the slice is used up. */
  async check(): Promise<void> {
    if (this.due) await this.next();
  }
}
