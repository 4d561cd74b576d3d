/** The longest a 1 ms timer waited since the last reset(): how long something held the event loop. */
export class EventLoopGap {
  /** ms */
  max = 0;
  private last = performance.now();
  private readonly timer = setInterval(() => {
    const t = performance.now();
    this.max = Math.max(this.max, t - this.last);
    this.last = t;
  }, 1);

  reset(): void {
    this.max = 0;
    this.last = performance.now();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
