/** docs/configuration.md lists every option of `flowscope run` (hidden ones aside). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RUN_OPTIONS } from '../../src/config/config.js';

describe('docs/configuration.md', () => {
  it('documents every run option', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]));
    const options = Object.entries(RUN_OPTIONS).filter(([, spec]) => !('hidden' in spec && spec.hidden)).map(([name]) => name);
    expect(options.filter((name) => !documented.has(name))).toEqual([]);
    expect([...documented].filter((name) => !(name in RUN_OPTIONS))).toEqual([]);
  });
});
