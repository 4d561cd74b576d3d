/**
 * Pinned state made by tests: every agent a test starts pins under
 * TEST_PIN_PATH (vitest.config.ts sets FLOWSCOPE_PIN_PATH to it for every
 * child), never under the production /sys/fs/bpf/flowscope. What a test
 * leaves (a SIGKILLed agent's pins) is removed with removePins(); the global
 * teardown removes the rest.
 */
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { loadNative } from '../../src/datapath/native.js';

export const TEST_PIN_PATH = '/sys/fs/bpf/flowscope-test';

let made = 0;

/** A pin path of its own for one agent: PIN_PATH/<pid>-<n> (the agent adds /NODE). */
export function uniquePinPath(): string {
  return path.join(TEST_PIN_PATH, `${process.pid}-${made++}`);
}

/**
 * Detaches and removes everything pinned below `pinPath` (node directories at
 * any depth). Returns the directories removed; one a running agent owns is
 * left alone (with `problems` told why).
 */
export function removePins(pinPath: string, problems: string[] = []): string[] {
  if (!existsSync(pinPath)) return [];
  const removed: string[] = [];
  const entries = readdirSync(pinPath, { withFileTypes: true }).filter((d) => d.isDirectory());
  if (entries.some((d) => d.name === 'maps' || d.name === 'links' || d.name === 'filters')) {
    try {
      loadNative().removePinned(pinPath);
      return [pinPath];
    } catch (err) {
      problems.push((err as Error).message.split('\n')[0]);
      return [];
    }
  }
  for (const d of entries) removed.push(...removePins(path.join(pinPath, d.name), problems));
  try {
    rmdirSync(pinPath);
  } catch {
    /* not empty: something else is there */
  }
  return removed;
}
