/** Counts the clients following a stream (flowscope_stream_clients). */
export class Followers {
  private live = 0;

  get count(): number {
    return this.live;
  }

  /** Counts one follower until the returned stop is called; calling it again is a no-op. */
  track(unsubscribe: () => void): () => void {
    this.live++;
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      this.live--;
      unsubscribe();
    };
  }
}
