/**
 * The flow table's keyed hash (HalfSipHash-1-3, random key): the published
 * vectors, and the attack it stops: 32,768 (sport, dport) pairs crafted so that
 * the old fixed murmur3-style hash put them all in one 64-entry window of the
 * index. Reproduced here, the old hash makes them cost hundreds of times more
 * probes than random ports; through the new table they cost what random ports
 * cost.
 */
import { describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/flow/address-table.js';
import { Agent } from '../../src/agent/agent.js';
import { DEFAULT_EXPIRY } from '../../src/engine/expiry.js';
import { halfSipHash, hashFlowKey, randomHashSeed } from '../../src/flow/flow-hash.js';
import { FlowTable } from '../../src/engine/flow-table.js';
import { RecordBatch } from '../../src/flow/record-batch.js';
import { ColumnarFlowBatch, SyntheticFlowSource, type SyntheticFlow } from '../../src/datapath/synthetic-source.js';

const T = 1_700_000_000_000;
const N = 32_768;
/** the old table's index for N flows: 65,536 entries (load <= 1/2) */
const OLD_MASK = 0xffff;
const WINDOW = 64;

/** The flow table's hash before issue 10, verbatim: fixed seed, every step invertible. */
function oldHash(w: Uint32Array, b: number): number {
  let h = 0x9e3779b9;
  h = Math.imul(h ^ w[b], 0x85ebca6b);
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 1];
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ w[b + 2];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 3];
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) ^ w[b + 4];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 5];
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ w[b + 6];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 7];
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) ^ w[b + 8];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 9];
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ w[b + 10];
  h = Math.imul((h << 13) | (h >>> 19), 5) ^ w[b + 11];
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const template = (sport: number, dport: number): SyntheticFlow => ({
  iface: 'eth0',
  direction: 'ingress',
  src: '198.51.100.7',
  dst: '192.0.2.1',
  proto: 6,
  sport,
  dport,
  packets: 1,
  bytes: 60,
  tcpFlags: 16,
});

/** The key words of the template flow; word 1 holds sport | dport << 16 (struct flow_key). */
function templateWords(): Uint32Array {
  const b = new ColumnarFlowBatch();
  b.add(2, template(0x1234, 0x5678), T);
  const w = Uint32Array.from(b.keyWords);
  expect(w[1]).toBe(0x1234 | (0x5678 << 16));
  return w;
}

/** N (sport, dport) pairs whose old-hash home lies in [0, WINDOW) of a 65,536-entry index (and so of every smaller one). */
function craftPorts(): [number, number][] {
  const w = templateWords();
  const out: [number, number][] = [];
  for (let x = 0x0400_0400; out.length < N; x++) {
    w[1] = x;
    if ((oldHash(w, 0) & OLD_MASK) < WINDOW) out.push([x & 0xffff, x >>> 16]);
  }
  return out;
}

function randomPorts(): [number, number][] {
  const seen = new Set<number>();
  const out: [number, number][] = [];
  while (out.length < N) {
    const sport = 1024 + Math.floor(Math.random() * 64_512);
    const dport = 1 + Math.floor(Math.random() * 65_535);
    const k = sport * 65_536 + dport;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push([sport, dport]);
  }
  return out;
}

/** Index entries a linear-probing insert of every key examines under the old hash (the old table's index, load 1/2). */
function oldProbes(ports: [number, number][], count: number): number {
  const w = templateWords();
  const used = new Uint8Array(OLD_MASK + 1);
  let probes = 0;
  for (let i = 0; i < count; i++) {
    w[1] = ports[i][0] | (ports[i][1] << 16);
    let pos = oldHash(w, 0) & OLD_MASK;
    probes++;
    while (used[pos]) {
      pos = (pos + 1) & OLD_MASK;
      probes++;
    }
    used[pos] = 1;
  }
  return probes;
}

describe('hashFlowKey (HalfSipHash-1-3)', () => {
  it('is HalfSipHash: the reference vectors (2-4, key 00..07, message 00..len-1)', () => {
    const vectors = [0x5b9f35a9, 0xb85a4727, 0x03a662fa, 0x04e7fe8a, 0x89466e2a, 0x69b6fac5, 0x23fc6358, 0xc563cf8b];
    const msg = Uint8Array.from({ length: 8 }, (_, i) => i);
    for (let len = 0; len < 8; len++) expect(halfSipHash(msg.subarray(0, len), 0x03020100, 0x07060504, 2, 4)).toBe(vectors[len]);
  });

  it('hashes the 12 key words as HalfSipHash-1-3 of their 48 bytes, and depends on the key', () => {
    const words = Uint32Array.from({ length: 120 }, (_, i) => Math.imul(i + 1, 0x9e3779b9) >>> 0);
    for (let k = 0; k < 10; k++) {
      const { k0, k1 } = randomHashSeed();
      const at = k * 12;
      expect(hashFlowKey(words, at, k0, k1)).toBe(halfSipHash(new Uint8Array(words.buffer, at * 4, 48), k0, k1, 1, 3));
    }
    const a = randomHashSeed();
    const b = { k0: a.k0 ^ 1, k1: a.k1 };
    let same = 0;
    for (let k = 0; k < 10; k++) if (hashFlowKey(words, k * 12, a.k0, a.k1) === hashFlowKey(words, k * 12, b.k0, b.k1)) same++;
    expect(same).toBe(0);
  });

  it('gives two tables different keys', () => {
    const words = templateWords();
    const seeds = new Set(Array.from({ length: 8 }, () => {
      const s = randomHashSeed();
      return hashFlowKey(words, 0, s.k0, s.k1);
    }));
    expect(seeds.size).toBeGreaterThan(6);
  });
});

describe('FlowTable with ports crafted against the old hash', () => {
  const crafted = craftPorts();
  const random = randomPorts();

  it('the crafted ports really are an attack on the old hash', () => {
    // 4,096 of them already cost the old index hundreds of times more probes than random ports.
    const c = oldProbes(crafted, 4096);
    const r = oldProbes(random, 4096);
    expect(c / r).toBeGreaterThan(200);
  });

  it('costs the keyed table no more probes than random ports (within 2x), and no longer probes', () => {
    const run = (ports: [number, number][]) => {
      const addresses = new AddressTable();
      const table = new FlowTable(addresses, { ...DEFAULT_EXPIRY });
      const out = new RecordBatch(4096, addresses, () => 'eth0', 'n');
      for (let poll = 0; poll < 2; poll++) {
        const b = new ColumnarFlowBatch();
        for (const [sport, dport] of ports) b.add(2, { ...template(sport, dport), firstSeenMs: T + poll * 1000, lastSeenMs: T + poll * 1000 }, T + poll * 1000);
        table.accumulate(b, 0, b.count);
        while (table.exportPending(out) > 0);
        table.finishExport();
      }
      expect(table.size).toBe(N);
      return { perLookup: table.probes / table.lookups, longest: table.longestProbe, rekeys: table.rekeys };
    };
    const c = run(crafted);
    const r = run(random);
    expect(c.perLookup).toBeLessThan(2 * r.perLookup);
    expect(c.perLookup).toBeLessThan(3);
    expect(c.longest).toBeLessThan(64);
    expect(c.rekeys).toBe(0);
  });

  it('polls crafted ports within 2x the time of random ports (same run, agent poll)', async () => {
    const pollTimes = async (ports: [number, number][]) => {
      let now = T;
      const clock = () => now;
      const source = new SyntheticFlowSource({ clock, ifindexes: { eth0: 2 } });
      const agent = new Agent(source, { node: 'n', version: 't', storeSize: 1024, clock });
      await agent.attach('eth0', 'tc');
      const flows = ports.map(([sport, dport]) => template(sport, dport));
      const times: number[] = [];
      for (let poll = 0; poll < 5; poll++) {
        now += 1000;
        source.push(flows);
        const report = await agent.collector.pollOnce();
        if (poll > 0) times.push(report.durationMs - report.drainMs); // re-polls: every flow known
      }
      expect(agent.table.size).toBe(N);
      await agent.close();
      return Math.min(...times);
    };
    await pollTimes(random); // warm-up (JIT)
    const r = await pollTimes(random);
    const c = await pollTimes(crafted);
    // The old hash: 1,447 ms vs 21 ms (issue 10).
    expect(c).toBeLessThan(2 * r);
  });
});
