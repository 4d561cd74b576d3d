/**
 * The k largest of n values, largest first, ties to the lower index (so answers
 * are deterministic), with a bounded min-heap: O(n log k) time, O(k) memory.
 * Over a Float64Array with a typed heap and fed in ranges, so a selection over
 * a million groups can be cut into time slices (offer(from, to) per slice,
 * then result()); topK() below does it in one go.
 */
export class TopKSelector {
  private readonly heap: Int32Array;
  private size = 0;

  constructor(
    readonly k: number,
    private readonly values: Float64Array,
  ) {
    this.heap = new Int32Array(Math.max(0, k));
  }

  /** a would be evicted before b: smaller value, or equal value and higher index */
  private less(a: number, b: number): boolean {
    const va = this.values[a];
    const vb = this.values[b];
    return va < vb || (va === vb && a > b);
  }

  /** Considers the values at indexes [from, to), in increasing order. */
  offer(from: number, to: number): void {
    const heap = this.heap;
    const k = this.k;
    const values = this.values;
    for (let i = from; i < to; i++) {
      if (this.size < k) {
        let at = this.size++;
        heap[at] = i;
        while (at > 0) {
          const parent = (at - 1) >> 1;
          if (!this.less(heap[at], heap[parent])) break;
          const t = heap[at];
          heap[at] = heap[parent];
          heap[parent] = t;
          at = parent;
        }
      } else if (k > 0) {
        // Most values lose against the root: one comparison, inlined.
        const root = heap[0];
        const v = values[i];
        const vr = values[root];
        if (v < vr || (v === vr && i > root)) continue;
        heap[0] = i;
        this.siftDown();
      }
    }
  }

  private siftDown(): void {
    const heap = this.heap;
    const n = this.size;
    let at = 0;
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let smallest = at;
      if (l < n && this.less(heap[l], heap[smallest])) smallest = l;
      if (r < n && this.less(heap[r], heap[smallest])) smallest = r;
      if (smallest === at) return;
      const t = heap[at];
      heap[at] = heap[smallest];
      heap[smallest] = t;
      at = smallest;
    }
  }

  /** The indexes kept, largest value first (ties: lower index first). */
  result(): number[] {
    const out = Array.from(this.heap.subarray(0, this.size));
    return out.sort((a, b) => (this.less(a, b) ? 1 : this.less(b, a) ? -1 : 0));
  }
}

/** Indices of the k largest of n values, largest first (ties: lower index first), in one go. */
export function topK(n: number, k: number, value: (i: number) => number): number[] {
  if (k <= 0 || n <= 0) return [];
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = value(i);
  const selector = new TopKSelector(k, values);
  selector.offer(0, n);
  return selector.result();
}
