/** flowscope top: bounds and certain ranks of an answer that is not exact, and why a table is empty. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { certainRanks, keyText, topText, type TopAnswer } from '../../src/cli/top.js';
import { makeAgent, makeApp, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { cli, listen } from './run-cli.js';

const answer = (entries: [string, number, number][], extra: Partial<TopAnswer> = {}): TopAnswer => ({
  by: 'src', metric: 'bytes', window: '1m', windowSeconds: 60, from: '2026-11-29T23:09:00.000Z', to: '2026-11-29T23:10:00.000Z',
  totalBytes: 10_000, totalPackets: 100, exact: false, unlistedBytesMax: 150, unlistedPacketsMax: 2,
  entries: entries.map(([src, bytes, bytesMax]) => ({ key: { src }, bytes, packets: 1, share: bytes / 10_000, bytesMax, packetsMax: 1 })),
  ...extra,
});

describe('certain ranks', () => {
  it('are those whose lower bound beats every upper bound below and whose upper bound stays under every entry above', () => {
    // 1: 1000 >= everything below (max 900); 2 and 3 overlap (800..900 vs 700..850); 4: 600 >= 150 unlisted and 600 <= 700
    const a = answer([['10.0.0.1', 1000, 1000], ['10.0.0.2', 800, 900], ['10.0.0.3', 700, 850], ['10.0.0.4', 600, 640]]);
    expect(certainRanks(a, 'bytes')).toEqual([1, 4]);
    // a group not listed might reach 700: rank 4 (600) is no longer certain
    expect(certainRanks({ ...a, unlistedBytesMax: 700 }, 'bytes')).toEqual([1]);
    // no bound for the unlisted groups: nothing is certain against them
    expect(certainRanks({ ...a, unlistedBytesMax: undefined }, 'bytes')).toEqual([]);
  });

  it('are every rank when the bounds equal the values and the unlisted groups are smaller', () => {
    expect(certainRanks(answer([['a', 30, 30], ['b', 20, 20], ['c', 10, 10]], { unlistedBytesMax: 5 }), 'bytes')).toEqual([1, 2, 3]);
  });
});

describe('top table', () => {
  it('marks the ranks that may move, shows the upper bounds and says which ranks are certain', () => {
    const text = topText(answer([['10.0.0.1', 1000, 1000], ['10.0.0.2', 800, 900], ['10.0.0.3', 700, 850], ['10.0.0.4', 600, 640]]));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('top src by bytes, window 1m (2026-11-29 23:09:00Z .. 2026-11-29 23:10:00Z), approximate');
    expect(lines[1]).toMatch(/^ #\s+SRC\s+BYTES\s+BYTES_MAX\s+PACKETS\s+SHARE$/);
    expect(lines[2]).toMatch(/^ 1\s+10\.0\.0\.1\s+1000\s+≤ 1000\s+1\s+10\.0%$/);
    expect(lines[3]).toMatch(/^~2\s+10\.0\.0\.2\s+800\s+≤ 900\s/);
    expect(lines[4]).toMatch(/^~3\s+10\.0\.0\.3\s+700\s+≤ 850\s/);
    expect(lines[5]).toMatch(/^ 4\s+10\.0\.0\.4\s+600\s+≤ 640\s/);
    expect(lines[6]).toBe('approximate: ranks 1, 4 are certain (~: may move); each true bytes count lies between BYTES and BYTES_MAX; a group not listed has at most 150 B');
  });

  it('puts the packets bound by PACKETS when ranking by packets', () => {
    const a: TopAnswer = { ...answer([]), metric: 'packets', entries: [{ key: { src: 'a' }, bytes: 5, packets: 9, share: 1, bytesMax: 5, packetsMax: 9 }], unlistedPacketsMax: 2 };
    const lines = topText(a).trimEnd().split('\n');
    expect(lines[1]).toMatch(/^#\s+SRC\s+BYTES\s+PACKETS\s+PACKETS_MAX\s+SHARE$/);
    expect(lines[3]).toBe('approximate: every rank is certain; each true packets count lies between PACKETS and PACKETS_MAX; a group not listed has at most 2 packets');
  });

  it('still reads an approximate answer without bounds (a server before them)', () => {
    const a: TopAnswer = { by: 'src', metric: 'bytes', window: '1m', from: null, to: null, exact: false, entries: [{ key: { src: 'a' }, bytes: 5, packets: 1, share: 1 }] };
    const lines = topText(a).trimEnd().split('\n');
    expect(lines[0]).toBe('top src by bytes, window 1m (no data yet), approximate');
    expect(lines[1]).toMatch(/^#\s+SRC\s+BYTES\s+PACKETS\s+SHARE$/);
    expect(lines[3]).toMatch(/^approximate: the counts are lower bounds/);
  });

  it('writes a cgroup or workload key, and - for flows without a local socket', () => {
    expect(keyText({ cgroup: '/system.slice/nginx.service' })).toBe('/system.slice/nginx.service');
    expect(keyText({ workload: null })).toBe('-');
    const text = topText({ ...answer([]), exact: true, by: 'workload', entries: [{ key: { workload: 'shop/cart-7d9f' }, bytes: 9, packets: 1, share: 0.9 }, { key: { workload: null }, bytes: 1, packets: 1, share: 0.1 }] });
    expect(text).toMatch(/^#\s+WORKLOAD\s+BYTES/m);
    expect(text).toMatch(/^1\s+shop\/cart-7d9f\s+9\s/m);
    expect(text).toMatch(/^2\s+-\s+1\s/m);
  });
});

describe('flowscope top against an agent', () => {
  let busy: TestAgent;
  let quiet: TestAgent;
  let bare: TestAgent;
  let crowded: TestAgent;
  const apps: FastifyInstance[] = [];
  const servers: Record<string, string> = {};

  beforeAll(async () => {
    const labels = (id: number) => (id === 7 ? { path: '/system.slice/nginx.service', workload: 'nginx.service' } : undefined);
    busy = await makeAgent({ clock: Date.now, labels, top: { bucketMs: 100, horizonMs: 60_000, capacity: 100 } });
    busy.source.push([{ ...udp('10.0.0.1', '10.0.0.9', 1000, 53, 3, 3000), cgroupId: 7 }, udp('10.0.0.2', '10.0.0.9', 1001, 53, 2, 1000), { ...udp('10.0.0.3', '10.0.0.9', 1002, 53, 1, 500), cgroupId: 8 }]);
    await busy.agent.collector.pollOnce();
    await new Promise((r) => setTimeout(r, 250));
    await busy.agent.collector.pollOnce();
    quiet = await makeAgent({ clock: Date.now, top: { bucketMs: 100, horizonMs: 60_000, capacity: 100 } });
    await quiet.agent.collector.pollOnce();
    bare = await makeAgent({ clock: Date.now, top: { bucketMs: 100, horizonMs: 60_000, capacity: 100 } }, []);
    // five sources in buckets that keep two groups each: the answer is not exact
    crowded = await makeAgent({ clock: Date.now, top: { bucketMs: 100, horizonMs: 60_000, capacity: 2 } });
    crowded.source.push([1, 2, 3, 4, 5].map((i) => udp(`10.0.0.${i}`, '10.0.0.9', 1000 + i, 53, i, i * 100)));
    await crowded.agent.collector.pollOnce();
    await new Promise((r) => setTimeout(r, 250));
    crowded.source.push([1, 2, 3, 4, 5].map((i) => udp(`10.0.0.${i}`, '10.0.0.9', 1000 + i, 53, 6 - i, (6 - i) * 90)));
    await crowded.agent.collector.pollOnce();
    for (const [name, t] of Object.entries({ busy, quiet, bare, crowded })) {
      const app = await makeApp(t);
      apps.push(app);
      servers[name] = await listen(app);
    }
  });
  afterAll(() => Promise.all(apps.map((a) => a.close())));

  it('says, on stderr, that a fresh agent has seen no traffic yet, and exits 0', async () => {
    const r = await cli(['top', '--server', servers.quiet]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^#\s+SRC\s+BYTES\s+PACKETS\s+SHARE$/m);
    expect(r.stderr).toMatch(/^no traffic in the last 1m yet \(the agent started \d+s ago\)\n$/);
  });

  it('says that the filters matched nothing, and how much the window holds', async () => {
    const r = await cli(['top', '--server', servers.busy, '--from-ip', '192.168.0.0/16', '--protocol', 'udp']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('no flows matched --from-ip 192.168.0.0/16 --protocol udp in the last 1m; 4.39 KiB (6 packets) in the window in total\n');
  });

  it('says that no interface is attached', async () => {
    const r = await cli(['top', '--server', servers.bare, '--window', '30s']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('no traffic in the last 30s: no interface is attached\n');
  });

  it('ranks by workload, - for the flows without one', async () => {
    const r = await cli(['top', '--server', servers.busy, '--by', 'workload']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = r.stdout.trimEnd().split('\n').slice(2);
    expect(rows[0]).toMatch(/^1\s+nginx\.service\s+3000\s+3\s/);
    // no local socket (10.0.0.2) and a cgroup that could not be named (10.0.0.3): no workload
    expect(rows[1]).toMatch(/^2\s+-\s+1500\s+3\s/);
  });

  it("shows an approximate answer's bounds as the agent gives them", async () => {
    const r = await cli(['top', '--server', servers.crowded, '-k', '5']);
    expect(r.code).toBe(0);
    const truth = (await (await fetch(`${servers.crowded}/api/v1/top?k=5`)).json()) as TopAnswer;
    expect(truth.exact).toBe(false);
    const certain = certainRanks(truth, 'bytes');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/, approximate$/);
    expect(lines[1]).toMatch(/^ {0,2}#\s+SRC\s+BYTES\s+BYTES_MAX\s+PACKETS\s+SHARE$/);
    const rows = lines.slice(2, -1);
    expect(rows).toHaveLength(truth.entries.length);
    rows.forEach((row, i) => {
      const e = truth.entries[i];
      const rank = certain.includes(i + 1) ? ` ${i + 1}` : `~${i + 1}`;
      expect(row).toMatch(new RegExp(`^${rank}\\s+${e.key.src}\\s+${e.bytes}\\s+≤ ${e.bytesMax}\\s+${e.packets}\\s`));
    });
    expect(lines.at(-1)).toMatch(new RegExp(`^approximate: .*; each true bytes count lies between BYTES and BYTES_MAX; a group not listed has at most ${truth.unlistedBytesMax} B$`));
  });
});
