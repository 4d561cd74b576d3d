/**
 * Bounds you can trust: when buckets kept only their largest groups, every
 * listed entry's true sum lies between its value and its upper bound, and
 * every group not listed is at most the answer's unlisted bound. Checked
 * against the true sums for distributions whose top-k is known.
 */
import { describe, expect, it } from 'vitest';
import { parseFlowFilter, type FlowFilterParams } from '../../../src/flow/filter.js';
import type { TopDimension, TopMetric } from '../../../src/flow/top-dimensions.js';
import type { SyntheticFlow } from '../../../src/datapath/synthetic-source.js';
import { makeAgent, udp } from '../../helpers/agent-fixture.js';
import { prng } from '../../helpers/random.js';


interface Case {
  name: string;
  /** the flows of each poll (one bucket per poll) */
  polls: SyntheticFlow[][];
}

const src = (i: number) => `10.${(i >> 8) & 255}.${i & 255}.1`;

/** Zipf: group i has weight 1/(i+1); each bucket draws its flows from it. */
function zipf(seed: number, groups: number, perBucket: number, buckets: number): Case {
  const r = prng(seed);
  const weights = Array.from({ length: groups }, (_, i) => 1 / (i + 1));
  const sum = weights.reduce((a, b) => a + b, 0);
  const pick = () => {
    let x = r() * sum;
    for (let i = 0; i < groups; i++) if ((x -= weights[i]) <= 0) return i;
    return groups - 1;
  };
  const polls = Array.from({ length: buckets }, () =>
    Array.from({ length: perBucket }, () => {
      const g = pick();
      return udp(src(g), '10.0.0.9', 1000 + Math.floor(r() * 4), r() < 0.5 ? 53 : 443, 1 + Math.floor(r() * 5), 60 + Math.floor(r() * 1400));
    }),
  );
  return { name: `zipf seed ${seed}`, polls };
}

/**
 * Near-ties that move: 3x the capacity of groups within 1% of each other,
 * each bucket favouring a different third, so every group is dropped by
 * some buckets and kept by others.
 */
function nearTies(capacity: number, buckets: number): Case {
  const groups = 3 * capacity;
  const polls = Array.from({ length: buckets }, (_, b) =>
    Array.from({ length: groups }, (_, g) => {
      const favoured = Math.floor(g / capacity) === b % 3;
      return udp(src(g), '10.0.0.9', 2000, 53, 10, 10_000 + (favoured ? 100 : 0) + (g % 7));
    }),
  );
  return { name: 'near ties', polls };
}

/** Many small groups and a few big ones: more groups than capacity in every bucket. */
function manySmall(buckets: number): Case {
  const polls = Array.from({ length: buckets }, (_, b) => [
    ...Array.from({ length: 400 }, (_, g) => udp(src(100 + g), '10.0.0.8', 3000 + g, 80, 1, 64 + ((g * 31 + b) % 50))),
    ...Array.from({ length: 3 }, (_, g) => udp(src(g), '10.0.0.8', 4000, 80, 50, 50_000 * (g + 1))),
  ]);
  return { name: 'many small', polls };
}

/** The group id of a flow along a dimension, for the brute-force truth. */
function groupOf(by: TopDimension, f: SyntheticFlow): string {
  switch (by) {
    case 'src': return f.src;
    case 'dst': return f.dst;
    case 'pair': return `${f.src} ${f.dst}`;
    case 'dport': return String(f.dport);
    case 'flow': return `${f.src} ${f.dst} ${f.sport} ${f.dport} ${f.iface} ${f.direction}`;
    default: throw new Error(`no truth for ${by}`);
  }
}

function keyId(by: TopDimension, key: Record<string, unknown>): string {
  switch (by) {
    case 'src': return String(key.src);
    case 'dst': return String(key.dst);
    case 'pair': return `${key.src} ${key.dst}`;
    case 'dport': return String(key.dport);
    case 'flow': return `${key.src} ${key.dst} ${key.sport} ${key.dport} ${key.iface} ${key.direction}`;
    default: throw new Error(`no key for ${by}`);
  }
}

function matches(params: FlowFilterParams, f: SyntheticFlow): boolean {
  if (params.dport !== undefined && f.dport !== Number(params.dport)) return false;
  return true;
}

const CAPACITY = 16;
const cases = [zipf(1, 500, 300, 6), zipf(7, 2000, 600, 4), nearTies(CAPACITY, 6), manySmall(5)];
const queries: { by: TopDimension; params: FlowFilterParams }[] = [
  { by: 'src', params: {} },
  { by: 'flow', params: {} },
  { by: 'pair', params: {} },
  { by: 'src', params: { dport: 53 } },
  { by: 'flow', params: { dport: 80 } },
];

describe('top-talker bounds', () => {
  for (const c of cases) {
    it(`${c.name}: true sums lie within [value, max]; unlisted groups are below the unlisted bound`, async () => {
      const t = await makeAgent({ top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: CAPACITY } });
      for (const flows of c.polls) await t.poll(flows);
      let inexact = 0;
      for (const { by, params } of queries) {
        for (const metric of ['bytes', 'packets'] as TopMetric[]) {
          const truth = new Map<string, { bytes: number; packets: number }>();
          for (const f of c.polls.flat()) {
            if (!matches(params, f)) continue;
            const id = groupOf(by, f);
            const v = truth.get(id) ?? { bytes: 0, packets: 0 };
            v.bytes += f.bytes;
            v.packets += f.packets;
            truth.set(id, v);
          }
          const answer = await t.agent.top({ by, metric, windowMs: 3_600_000, k: 10, filter: parseFlowFilter(params, t.now()) });
          const where = `${c.name} by=${by} ${JSON.stringify(params)} metric=${metric}`;
          if (!answer.exact) inexact++;
          const listed = new Set<string>();
          for (const e of answer.entries) {
            const id = keyId(by, e.key);
            listed.add(id);
            const real = truth.get(id)!;
            expect(real, `${where}: listed ${id} exists`).toBeDefined();
            expect(e.bytes, `${where}: ${id} bytes lower bound`).toBeLessThanOrEqual(real.bytes);
            expect(real.bytes, `${where}: ${id} bytes upper bound`).toBeLessThanOrEqual(e.bytesMax);
            expect(e.packets, `${where}: ${id} packets lower bound`).toBeLessThanOrEqual(real.packets);
            expect(real.packets, `${where}: ${id} packets upper bound`).toBeLessThanOrEqual(e.packetsMax);
            if (answer.exact) expect([e.bytes, e.packets]).toEqual([real.bytes, real.packets]);
          }
          for (const [id, real] of truth) {
            if (listed.has(id)) continue;
            expect(real.bytes, `${where}: unlisted ${id} bytes`).toBeLessThanOrEqual(answer.unlistedBytesMax);
            expect(real.packets, `${where}: unlisted ${id} packets`).toBeLessThanOrEqual(answer.unlistedPacketsMax);
          }
          // The ranks the bounds call certain are right: an entry whose value reaches every bound below it is truly above those groups.
          const values = answer.entries.map((e) => e[metric]);
          const maxes = answer.entries.map((e) => (metric === 'bytes' ? e.bytesMax : e.packetsMax));
          const unlisted = metric === 'bytes' ? answer.unlistedBytesMax : answer.unlistedPacketsMax;
          for (let i = 0; i < values.length; i++) {
            const below = Math.max(unlisted, ...maxes.slice(i + 1));
            if (values[i] < below) continue;
            const id = keyId(by, answer.entries[i].key);
            for (const [other, real] of truth) if (!listed.has(other) || answer.entries.slice(i + 1).some((e) => keyId(by, e.key) === other)) {
              expect(real[metric], `${where}: ${id} certainly above ${other}`).toBeLessThanOrEqual(truth.get(id)![metric]);
            }
          }
        }
      }
      // These distributions overflow the capacity: the bounds were exercised, not just exact answers.
      expect(inexact).toBeGreaterThan(0);
    });
  }

  it('the true top-k of a Zipf distribution is certain where the bounds say so', async () => {
    const t = await makeAgent({ top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: CAPACITY } });
    const c = zipf(3, 300, 400, 5);
    for (const flows of c.polls) await t.poll(flows);
    const answer = await t.agent.top({ by: 'src', metric: 'packets', windowMs: 3_600_000, k: 5, filter: {} });
    // Zipf's head is far above its tail: the first ranks are certain.
    expect(answer.entries[0].packets).toBeGreaterThanOrEqual(Math.max(answer.unlistedPacketsMax, ...answer.entries.slice(1).map((e) => e.packetsMax)));
    expect(answer.entries[0].key).toEqual({ src: src(0) });
  });
});
