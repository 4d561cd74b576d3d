/**
 * Indices of the k largest values among n, largest first, with a bounded
 * min-heap: O(n log k) time, O(k) memory, no copy of the values.
 * Ties keep the lower index first, so answers are deterministic.
 */
export function topK(n: number, k: number, value: (i: number) => number): number[] {
  if (k <= 0 || n <= 0) return [];
  const heap: number[] = [];
  // "less" = would be evicted first: smaller value, or equal value and higher index.
  const less = (a: number, b: number): boolean => {
    const va = value(a);
    const vb = value(b);
    return va < vb || (va === vb && a > b);
  };
  const siftDown = (at: number): void => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let smallest = at;
      if (l < heap.length && less(heap[l], heap[smallest])) smallest = l;
      if (r < heap.length && less(heap[r], heap[smallest])) smallest = r;
      if (smallest === at) return;
      [heap[at], heap[smallest]] = [heap[smallest], heap[at]];
      at = smallest;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let at = heap.length - 1; at > 0; ) {
        const parent = (at - 1) >> 1;
        if (!less(heap[at], heap[parent])) break;
        [heap[at], heap[parent]] = [heap[parent], heap[at]];
        at = parent;
      }
    } else if (less(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (less(a, b) ? 1 : less(b, a) ? -1 : 0));
}
