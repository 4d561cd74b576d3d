/**
 * Polls check() until it is true. A check that throws counts as "not yet";
 * the last error is in the timeout message.
 */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = ` (last error: ${(err as Error).message})`;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}${lastError}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
