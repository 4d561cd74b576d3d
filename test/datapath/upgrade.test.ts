/**
 * Upgrades that change struct flow_value (issue 9: counts cross upgrades).
 * An earlier version's flow maps, pinned with a shorter value, are set aside
 * by the new datapath, which loads with new maps and drains the old ones
 * generation by generation into its own records, then removes them. The
 * earlier maps are made here with bpftool in the layout flowscope had before
 * attribution (a 40-byte value without cgroup_id), filled with known counts.
 * Real traffic on a veth pair runs through the new programs meanwhile.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import { kernelCounters } from '../../src/datapath/interfaces.js';
import { possibleCpus } from '../../src/engine/memory-budget.js';
import type { DrainResult } from '../../src/datapath/types.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, quietLink, type VethPair } from '../helpers/netns.js';
import { removePins, uniquePinPath } from '../helpers/pins.js';
import { startHostSink, stop as stopChild, TRAFFIC } from '../helpers/processes.js';

const skip = skipKernelTests('upgrades of the pinned flow maps');
const SINK_PORT = 41_877;
const EARLIER_VALUE_BYTES = 40;
const KEY_BYTES = 48;

interface EarlierFlow {
  src: string;
  sport: number;
  packets: number;
  bytes: number;
}

function keyHex(ifindex: number, f: EarlierFlow): string[] {
  const key = Buffer.alloc(KEY_BYTES);
  key.writeUInt32LE(ifindex, 0);
  key.writeUInt16LE(f.sport, 4);
  key.writeUInt16LE(5353, 6);
  Buffer.from(f.src.split('.').map(Number)).copy(key, 8);
  Buffer.from([10, 98, 0, 1]).copy(key, 24);
  key[40] = 4; // family
  key[41] = 0; // ingress
  key[42] = 17; // UDP
  return [...key].map((b) => b.toString(16).padStart(2, '0'));
}

/** struct flow_value before cgroup_id: packets, bytes, first_seen_ns, last_seen_ns, tcp_flags, pad[3]. */
function earlierValueHex(f: EarlierFlow, seenNs: bigint): string[] {
  const v = Buffer.alloc(EARLIER_VALUE_BYTES);
  v.writeBigUInt64LE(BigInt(f.packets), 0);
  v.writeBigUInt64LE(BigInt(f.bytes), 8);
  v.writeBigUInt64LE(seenNs, 16);
  v.writeBigUInt64LE(seenNs, 24);
  return [...v].map((b) => b.toString(16).padStart(2, '0'));
}

/** The earlier version's pinned flow maps, as its agent left them: two generations and the outer map. */
function pinEarlierMaps(dir: string, entries: number, ifindex: number, gens: EarlierFlow[][]): void {
  for (const sub of ['maps', 'links', 'filters']) mkdirSync(path.join(dir, sub), { recursive: true });
  const seenNs = process.hrtime.bigint() - 1_000_000_000n;
  gens.forEach((flows, gen) => {
    const pin = path.join(dir, 'maps', `flows_gen${gen}`);
    execFileSync('bpftool', ['map', 'create', pin, 'type', 'percpu_hash', 'key', String(KEY_BYTES), 'value', String(EARLIER_VALUE_BYTES),
      'entries', String(entries), 'name', `flows_gen${gen}`]);
    // bpftool writes the value to every CPU's slot.
    for (const f of flows) execFileSync('bpftool', ['map', 'update', 'pinned', pin, 'key', 'hex', ...keyHex(ifindex, f), 'value', 'hex', ...earlierValueHex(f, seenNs)]);
  });
  execFileSync('bpftool', ['map', 'create', path.join(dir, 'maps', 'flow_gens'), 'type', 'array_of_maps', 'key', '4', 'value', '4', 'entries', '2',
    'name', 'flow_gens', 'inner_map', 'pinned', path.join(dir, 'maps', 'flows_gen0')]);
}

function earlierFlows(gen: number, n: number): EarlierFlow[] {
  return Array.from({ length: n }, (_, i) => ({ src: `10.97.${gen}.${i + 1}`, sport: 20_000 + gen * 1000 + i, packets: 3 + i, bytes: (3 + i) * 142 }));
}

/** The earlier flows (10.97.x.x) a drain returned, by source and port. */
function earlierIn(d: DrainResult): Map<string, { packets: number; bytes: number; cgroupId: number }> {
  const out = new Map<string, { packets: number; bytes: number; cgroupId: number }>();
  const f = d.flows;
  for (let i = 0; i < f.count; i++) {
    if (!f.src(i).startsWith('10.97.')) continue;
    const k = `${f.src(i)}:${f.sport(i)}`;
    expect(out.has(k), `${k} twice in one drain`).toBe(false);
    out.set(k, { packets: f.packets(i), bytes: f.bytes(i), cgroupId: f.cgroupId?.(i) ?? 0 });
  }
  return out;
}

type EarlierCounts = ReturnType<typeof earlierIn>;

/** Adds a drain's earlier flows to those seen so far; none may come twice. */
function addOnce(seen: EarlierCounts, found: EarlierCounts): void {
  for (const [k, v] of found) {
    expect(seen.has(k), `${k} drained twice`).toBe(false);
    seen.set(k, v);
  }
}

function hostIfindex(pair: VethPair): number {
  return Number(readFileSync(`/sys/class/net/${pair.hostIf}/ifindex`, 'utf8'));
}

function ingressPackets(d: DrainResult, ifindex: number): number {
  return d.interfaces.filter((i) => i.ifindex === ifindex && i.direction === 'ingress').reduce((n, i) => n + i.packets, 0);
}

function udpPackets(d: DrainResult, pair: VethPair, sport: number): number {
  let n = 0;
  for (let i = 0; i < d.flows.count; i++) if (d.flows.src(i) === pair.peerV4 && d.flows.sport(i) === sport) n += d.flows.packets(i);
  return n;
}

describe.skipIf(skip)('an upgrade that changes the flow value layout', () => {
  let pair: VethPair;
  let sink: ChildProcess | undefined;
  const pinPaths: string[] = [];
  const cpus = possibleCpus();
  /** A node directory of its own holding the earlier version's flow maps with these flows. */
  const pinEarlierState = (entries: number, gens: EarlierFlow[][]): string => {
    const p = uniquePinPath();
    pinPaths.push(p);
    const dir = path.join(p, 'node-u');
    pinEarlierMaps(dir, entries, hostIfindex(pair), gens);
    return dir;
  };

  beforeAll(async () => {
    pair = createVethPair(64);
    quietLink(pair);
    sink = await startHostSink('udp-sink', SINK_PORT, 600);
  });
  afterAll(() => {
    stopChild(sink);
    for (const p of pinPaths) removePins(p);
    pair?.destroy();
  });

  it('sets the earlier maps aside, drains each with its generation exactly once, counts new traffic, then removes them', async () => {
    const ifindex = hostIfindex(pair);
    const gens = [earlierFlows(0, 3), earlierFlows(1, 2)];
    const dir = pinEarlierState(256, gens);

    const before = kernelCounters(pair.hostIf);
    const source = new KernelFlowSource({ flowMapEntries: 256, pinDir: dir });
    try {
      expect(source.stats().pinned?.previousLayout).toEqual({ valueBytes: EARLIER_VALUE_BYTES, flowsDrained: 0, mapsLeft: 2 });
      expect(readdirSync(path.join(dir, 'maps')).sort()).toEqual(expect.arrayContaining(['previous-flows_gen0', 'previous-flows_gen1', 'flows_gen0', 'flows_gen1', 'flow_gens']));
      await source.attach(pair.hostIf, 'tc');
      pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, String(SINK_PORT), '40', '100', '41877']);
      await new Promise((r) => setTimeout(r, 100));

      const seen: EarlierCounts = new Map();
      let rx = 0;
      let udp = 0;
      const drains: DrainResult[] = [];
      for (let i = 0; i < 3; i++) {
        const d = await source.drain();
        drains.push(d);
        addOnce(seen, earlierIn(d));
        rx += ingressPackets(d, ifindex);
        udp += udpPackets(d, pair, 41_877);
      }
      // Generation by generation: the first drain closes generation 0, the second generation 1.
      expect(earlierIn(drains[0]).size).toBe(3);
      expect(earlierIn(drains[1]).size).toBe(2);
      expect(earlierIn(drains[2]).size).toBe(0);
      const want = new Map(gens.flat().map((f) => [`${f.src}:${f.sport}`, { packets: f.packets * cpus, bytes: f.bytes * cpus, cgroupId: 0 }]));
      expect(seen).toEqual(want);

      // The earlier counts are in the interface's totals too, next to the real traffic, which is exact.
      const after = kernelCounters(pair.hostIf);
      const earlierPackets = gens.flat().reduce((n, f) => n + f.packets * cpus, 0);
      expect(udp).toBe(40);
      expect(rx).toBe(after.rxPackets - before.rxPackets + earlierPackets);

      expect(source.stats().pinned?.previousLayout).toEqual({ valueBytes: EARLIER_VALUE_BYTES, flowsDrained: 5, mapsLeft: 0 });
      expect(readdirSync(path.join(dir, 'maps')).filter((n) => n.startsWith('previous-'))).toEqual([]);
    } finally {
      await source.close();
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('an earlier map with more flows than the new one holds drains over several polls, each flow once', async () => {
    const gens = [earlierFlows(0, 40), earlierFlows(1, 0)];
    const dir = pinEarlierState(64, gens);
    // 16 slots per drain: the earlier generation-0 map needs three drains of generation 0.
    const source = new KernelFlowSource({ flowMapEntries: 16, pinDir: dir, drainBatch: 4 });
    try {
      const seen: EarlierCounts = new Map();
      for (let i = 0; i < 8; i++) {
        const d = await source.drain();
        expect(d.flows.count).toBeLessThanOrEqual(16);
        addOnce(seen, earlierIn(d));
      }
      expect(seen.size).toBe(40);
      expect([...seen.values()].reduce((n, v) => n + v.packets, 0)).toBe(gens[0].reduce((n, f) => n + f.packets * cpus, 0));
      expect(source.stats().pinned?.previousLayout).toMatchObject({ flowsDrained: 40, mapsLeft: 0 });
    } finally {
      await source.close();
    }
  });

  it('a start killed after moving the maps aside but before unpinning the earlier outer map: the next start makes a new one', async () => {
    const gens = [earlierFlows(0, 2), earlierFlows(1, 2)];
    const dir = pinEarlierState(64, gens);
    for (const gen of [0, 1]) execFileSync('mv', [path.join(dir, 'maps', `flows_gen${gen}`), path.join(dir, 'maps', `previous-flows_gen${gen}`)]);
    const source = new KernelFlowSource({ flowMapEntries: 64, pinDir: dir });
    try {
      const seen = new Set<string>();
      // Reusing the earlier outer map would make every generation flip fail (its inner maps are 40-byte ones).
      for (let i = 0; i < 3; i++) for (const k of earlierIn(await source.drain()).keys()) seen.add(k);
      expect(seen.size).toBe(4);
      expect(source.stats().partialDrains).toBe(0);
    } finally {
      await source.close();
    }
  });

  it('what a stop leaves undrained stays set aside for the next start', async () => {
    const gens = [earlierFlows(0, 2), earlierFlows(1, 4)];
    const dir = pinEarlierState(64, gens);
    const first = new KernelFlowSource({ flowMapEntries: 64, pinDir: dir });
    const seen: EarlierCounts = new Map();
    // One drain (generation 0), then a keep-attached stop: generation 1's earlier map is still pinned.
    addOnce(seen, earlierIn(await first.drain()));
    await first.close({ keepAttached: true });
    expect(readdirSync(path.join(dir, 'maps')).filter((n) => n.startsWith('previous-'))).toEqual(['previous-flows_gen1']);

    const second = new KernelFlowSource({ flowMapEntries: 64, pinDir: dir });
    try {
      expect(second.stats().pinned).toMatchObject({ adopted: true, previousLayout: { valueBytes: EARLIER_VALUE_BYTES, mapsLeft: 1 } });
      for (let i = 0; i < 2; i++) addOnce(seen, earlierIn(await second.drain()));
      expect(seen.size).toBe(6);
      expect(second.stats().pinned?.previousLayout?.mapsLeft).toBe(0);
    } finally {
      await second.close();
    }
  });
});
