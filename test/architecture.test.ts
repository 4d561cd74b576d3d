/**
 * The module map of docs/architecture.md, checked: no import cycle between
 * files (madge), and every folder of src/ imports only the folders below it.
 */
import path from 'node:path';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../src/', import.meta.url).pathname;

/** What each folder of src/ may import, besides itself (docs/architecture.md, "Module map"). */
export const MAY_IMPORT: Record<string, readonly string[]> = {
  lib: [],
  datapath: ['lib'],
  flow: ['lib', 'datapath'],
  engine: ['lib', 'datapath', 'flow'],
  metrics: ['lib', 'datapath', 'flow', 'engine'],
  redis: ['lib', 'flow', 'engine'],
  web: ['flow'], // web/client shares the flow model's names and duration syntax with the server
  api: ['lib', 'flow', 'engine', 'web'],
  relay: ['lib', 'flow', 'engine', 'redis', 'api'],
  agent: ['lib', 'datapath', 'flow', 'engine', 'metrics', 'redis', 'api'],
  config: ['lib', 'flow', 'engine', 'redis'],
  cli: ['(root)', 'lib', 'datapath', 'flow', 'engine', 'metrics', 'redis', 'api', 'relay', 'agent', 'config', 'web'],
  '(root)': [],
};

const folderOf = (file: string): string => (file.includes('/') ? file.split('/')[0] : '(root)');

describe('module map', async () => {
  const graph = await madge(SRC, { fileExtensions: ['ts'], excludeRegExp: [/\.d\.ts$/] });

  it('has no import cycle', () => {
    expect(graph.circular()).toEqual([]);
  });

  it('every folder imports only what docs/architecture.md allows', () => {
    const files = Object.entries(graph.obj());
    expect(files.length).toBeGreaterThan(50);
    const wrong: string[] = [];
    for (const [file, deps] of files) {
      const from = folderOf(file);
      const allowed = MAY_IMPORT[from];
      if (!allowed) {
        wrong.push(`${file}: folder ${from} is not in the module map`);
        continue;
      }
      for (const dep of deps) {
        const to = folderOf(path.normalize(dep));
        if (to !== from && !allowed.includes(to)) wrong.push(`${file} -> ${dep}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
