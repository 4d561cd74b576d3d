/** docs/configuration.md lists every option of `flowscope run` and of `flowscope relay` (hidden ones aside). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RUN_OPTIONS } from '../../src/config/config.js';
import { RELAY_OPTIONS } from '../../src/config/relay.js';

const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
// the relay's section runs from its heading to the next one; the rest is the agent's
const relayStart = doc.indexOf('## `flowscope relay`');
const relayEnd = doc.indexOf('\n## ', relayStart + 1);
const relayPart = doc.slice(relayStart, relayEnd);
const runPart = doc.slice(0, relayStart) + doc.slice(relayEnd);
const rows = (text: string) => new Set([...text.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]));

describe('docs/configuration.md', () => {
  it('documents every run option', () => {
    const documented = rows(runPart);
    const options = Object.entries(RUN_OPTIONS).filter(([, spec]) => !('hidden' in spec && spec.hidden)).map(([name]) => name);
    expect(options.filter((name) => !documented.has(name))).toEqual([]);
    expect([...documented].filter((name) => !(name in RUN_OPTIONS))).toEqual([]);
  });

  it('documents every relay option: in its own table, or as shared with run', () => {
    const own = rows(relayPart);
    const shared = new Set([...relayPart.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]));
    const missing = Object.entries(RELAY_OPTIONS)
      .filter(([name, spec]) => !own.has(name) && !(shared.has(name) && name in RUN_OPTIONS && spec === RUN_OPTIONS[name as keyof typeof RUN_OPTIONS]))
      .map(([name]) => name);
    expect(missing).toEqual([]);
    expect([...own].filter((name) => !(name in RELAY_OPTIONS))).toEqual([]);
  });
});
