/**
 * Gate for tests that need the real kernel (root, bpf, netns). In CI
 * (CI=true) they must run: a missing privilege fails the test. Elsewhere they
 * skip with the reason printed.
 */
import { existsSync } from 'node:fs';

export function kernelTestBlocker(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (BPF programs, network namespaces)';
  if (!existsSync('/sys/fs/bpf')) return 'needs /sys/fs/bpf';
  return undefined;
}

/** true when kernel tests should be skipped; prints why. Throws in CI instead of skipping. */
export function skipKernelTests(suite: string): boolean {
  const blocker = kernelTestBlocker();
  if (!blocker) return false;
  if (process.env.CI === 'true') throw new Error(`${suite}: kernel tests may not skip in CI, but: ${blocker}`);
  console.warn(`[skip] ${suite}: ${blocker}`);
  return true;
}
