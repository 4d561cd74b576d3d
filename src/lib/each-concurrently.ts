/**
 * Runs `fn` for every item, at most `width` calls in flight, started in the
 * items' order. Sequential awaits of one round trip per item made a relay's
 * per-node Redis work (groups, interfaces) take items × round-trip time: with
 * a thousand nodes and a busy Redis, tens of seconds in which no entry was
 * read. The first error is thrown once every started call has settled, so
 * nothing is left running unobserved; no call starts after an error.
 */
export async function eachConcurrently<T>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  let error: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await fn(items[i], i);
      } catch (err) {
        if (!failed) error = err;
        failed = true;
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(width, items.length); w++) workers.push(worker());
  await Promise.all(workers);
  if (failed) throw error;
}
