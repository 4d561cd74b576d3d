import { describe, expect, it } from 'vitest';
import { eachConcurrently } from '../../src/lib/each-concurrently.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('eachConcurrently', () => {
  it('runs every item, never more than `width` at once, started in order', async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const done = new Set<number>();
    await eachConcurrently([...Array(50).keys()], 7, async (item, index) => {
      expect(index).toBe(item);
      started.push(item);
      running++;
      most = Math.max(most, running);
      await tick(item % 3);
      running--;
      done.add(item);
    });
    expect(done.size).toBe(50);
    expect(started).toEqual([...Array(50).keys()]);
    expect(most).toBe(7);
  });

  it('throws the first error once the calls in flight have settled, and starts none after it', async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const run = eachConcurrently([0, 1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      started.push(item);
      await tick(item === 1 ? 1 : 30);
      if (item === 1) throw new Error('one');
      if (item === 2) throw new Error('two');
      settled.push(item);
    });
    await expect(run).rejects.toThrow('one');
    expect(started).toEqual([0, 1, 2]);
    // 0 and 2 were in flight when 1 failed: both had ended before the rejection
    expect(settled).toEqual([0]);
  });

  it('does nothing for no items', async () => {
    let calls = 0;
    await eachConcurrently([], 4, async () => {
      calls++;
    });
    expect(calls).toBe(0);
  });
});
