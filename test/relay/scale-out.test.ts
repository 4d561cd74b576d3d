/**
 * Scale-out: two relays share the fleet's streams through Redis (leases,
 * rendezvous hashing of partitions); every entry is counted once in the sum
 * of their answers, also while entries keep coming; a kill -9 of one moves its
 * partitions to the other within seconds, which then answers for the whole
 * fleet exactly (its totals and top talkers equal what was written).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { parseFlowFilter } from '../../src/flow/filter.js';
import { connectClient, createRedisClient, type RedisClient } from '../../src/redis/connection.js';
import { flowsKey, NODES_KEY } from '../../src/redis/keys.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { Membership, ownerOf, partitionOf } from '../../src/relay/membership.js';
import { PartitionedFleet } from '../../src/relay/partitions.js';
import { Relay } from '../../src/relay/relay.js';
import { createApp } from '../../src/api/app.js';
import { destroyRedis, startRedis, type RedisServer } from '../redis/redis-server.js';

const PARTITIONS = 8;
const LEASE_MS = 1500;
const NODES = Array.from({ length: 16 }, (_, i) => `so-${i}`);

let server: RedisServer;
let writer: Redis;
let client: RedisClient;
let peer: ChildProcess | undefined;
let membership: Membership | undefined;
let fleet: PartitionedFleet | undefined;

beforeAll(async () => {
  server = await startRedis({ extra: ['--appendonly', 'no'] });
  writer = new Redis(server.port, '127.0.0.1');
  client = createRedisClient(parseRedisUrl(server.url), { connectionName: 'relay-a' });
  await connectClient(client, 5000);
});
afterAll(async () => {
  if (peer && peer.exitCode === null && peer.signalCode === null) peer.kill('SIGKILL');
  await fleet?.stop();
  await membership?.stop();
  client?.disconnect();
  writer?.disconnect();
  await destroyRedis(server);
});

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - t0;
}

/** What was written, per node. */
const written = new Map<string, { entries: number; packets: number; bytes: number }>();
let seq = 0;

async function write(rounds: number): Promise<void> {
  const iso = (ms: number) => new Date(ms).toISOString();
  for (let r = 0; r < rounds; r++) {
    const p = writer.pipeline();
    const end = Date.now() - 1000 + (seq++ % 1000);
    for (const [n, node] of NODES.entries()) {
      p.sadd(NODES_KEY, node);
      for (let f = 0; f < 3; f++) {
        const packets = 1 + ((seq + n + f) % 7);
        const bytes = packets * (60 + f);
        p.xadd(flowsKey(node), '*', 'node', node, 'iface', 'eth0', 'ifindex', '2', 'direction', 'ingress', 'family', '4', 'src', `10.${n}.0.${f + 1}`, 'dst', '10.99.0.1',
          'proto', 'udp', 'sport', String(1000 + f), 'dport', '53', 'packets', String(packets), 'bytes', String(bytes), 'tcpFlags', '',
          'start', iso(end - 1000), 'end', iso(end), 'firstSeen', iso(end - 900), 'lastSeen', iso(end - 100));
        const w = written.get(node) ?? { entries: 0, packets: 0, bytes: 0 };
        w.entries++;
        w.packets += packets;
        w.bytes += bytes;
        written.set(node, w);
      }
    }
    await p.exec();
  }
}

const sum = (nodes: string[], k: 'entries' | 'packets' | 'bytes'): number => nodes.reduce((a, n) => a + (written.get(n)?.[k] ?? 0), 0);

describe('relay scale-out', () => {
  it('two relays split the partitions, count every entry once, and a kill -9 moves the dead one\'s partitions within seconds', async () => {
    await write(5);
    const ids = ['relay-a', 'relay-b'];
    // the two ids split the partitions (rendezvous hashing is deterministic)
    const mine = Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => ownerOf(p, ids) === 'relay-a');
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.length).toBeLessThan(PARTITIONS);

    membership = new Membership({ client, id: 'relay-a', partitions: PARTITIONS, leaseMs: LEASE_MS });
    fleet = new PartitionedFleet({ client, membership, group: 'fleet', view: { storeSize: 100_000, top: { bucketMs: 500 } }, consumer: { discoverEveryMs: 300, idleSleepMs: 20 } });
    await membership.start();
    await fleet.sync();
    await until('relay-a alone owns every partition and has read everything', () => fleet!.owned.length === PARTITIONS && fleet!.caughtUp && fleet!.entries === sum(NODES, 'entries'));

    // relay-b joins (its own process): the partitions split
    let peerState: { live: string[]; owned: number[]; caughtUp: boolean; entries: number } | undefined;
    peer = spawn(process.execPath, ['--import', 'tsx', 'test/relay/scale-out-peer.ts', String(server.port), 'relay-b', String(PARTITIONS), String(LEASE_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: peer.stdout! }).on('line', (line) => {
      try {
        peerState = JSON.parse(line);
      } catch {
        /* not a state line */
      }
    });
    const splitMs = await until(
      'split between the two',
      () => fleet!.owned.join() === mine.join() && peerState?.owned.length === PARTITIONS - mine.length && peerState.caughtUp && fleet!.caughtUp,
      30_000,
    );
    const nodesOf = (parts: number[]): string[] => NODES.filter((n) => parts.includes(partitionOf(n, PARTITIONS)));
    const aNodes = nodesOf(mine);
    // nothing twice, nothing lost: each relay has exactly its partitions' entries
    await until('both caught up', () => fleet!.entries === sum(aNodes, 'entries') && peerState!.entries === sum(NODES, 'entries') - sum(aNodes, 'entries'));

    // entries keep coming while split
    await write(5);
    await until('new entries read once', () => fleet!.entries === sum(aNodes, 'entries') && peerState!.entries === sum(NODES, 'entries') - sum(aNodes, 'entries'));
    const page = fleet.flows(parseFlowFilter({}, Date.now()), 100_000);
    expect(page.total).toBe(sum(aNodes, 'entries'));
    expect(new Set(page.flows.map((r) => r.node))).toEqual(new Set(aNodes));

    // kill -9 of relay-b: its partitions come to relay-a within seconds, and relay-a answers for the whole fleet
    await write(2);
    peer.kill('SIGKILL');
    const moveMs = await until('partitions moved', () => fleet!.owned.length === PARTITIONS && fleet!.caughtUp, 15_000);
    await write(3);
    await until('all entries once', () => fleet!.entries === sum(NODES, 'entries'));
    const topQuery = { by: 'node' as const, metric: 'bytes' as const, windowMs: 3_600_000, k: 100, filter: parseFlowFilter({}, Date.now()) };
    // top talkers answer from closed buckets (500 ms here)
    await until('top talkers complete', async () => (await fleet!.top(topQuery)).totalBytes === sum(NODES, 'bytes'));
    const top = await fleet.top(topQuery);
    const byNode = Object.fromEntries(top.entries.map((e) => [e.key.node as string, { bytes: e.bytes, packets: e.packets }]));
    expect(byNode).toEqual(Object.fromEntries(NODES.map((n) => [n, { bytes: written.get(n)!.bytes, packets: written.get(n)!.packets }])));
    expect(top.totalBytes).toBe(sum(NODES, 'bytes'));
    expect(fleet.flows(parseFlowFilter({}, Date.now()), 100_000).total).toBe(sum(NODES, 'entries'));
    console.log(`scale-out: split in ${splitMs} ms after relay-b started; partitions moved ${moveMs} ms after its kill -9 (lease ${LEASE_MS} ms)`);
    expect(moveMs).toBeLessThan(10_000);
    await fleet.stop();
    await membership.stop();
    fleet = undefined;
    membership = undefined;
  }, 120_000);

  it('flowscope relay --partitions: each relay answers the API for the whole fleet by asking its peer, exactly', async () => {
    const relays: Relay[] = [];
    try {
      for (const id of ['api-a', 'api-b']) {
        const r = new Relay({
          target: parseRedisUrl(server.url),
          group: 'fleet-api',
          consumer: id,
          version: 'test',
          storeSize: 100_000,
          top: { bucketMs: 500 },
          discoverEveryMs: 300,
          scaleOut: { partitions: PARTITIONS, peerListen: { host: '127.0.0.1', port: 0 }, leaseMs: LEASE_MS, token: 'peer-secret' },
        });
        relays.push(r);
        await r.start();
      }
      const [a, b] = relays;
      await until('split and caught up', () => relays.every((r) => r.readiness().ready && r.membership!.live.join() === 'api-a,api-b') && a.partitions!.owned.length + b.partitions!.owned.length === PARTITIONS && a.partitions!.owned.length > 0 && b.partitions!.owned.length > 0, 30_000);
      await write(3);
      const all = sum(NODES, 'entries');
      await until('both read the new entries', () => a.partitions!.entries + b.partitions!.entries === all);
      for (const r of relays) {
        const app = await createApp({ services: r.services(), version: 'test' });
        try {
          const flowsRes = await app.inject({ url: '/api/v1/flows?limit=10000' });
          if (flowsRes.statusCode !== 200) console.log(flowsRes.statusCode, flowsRes.body.slice(0, 300));
          const flows = flowsRes.json() as { total: number; flows: { node: string }[] };
          expect(flows.total).toBe(all);
          expect(new Set(flows.flows.map((f) => f.node))).toEqual(new Set(NODES));
          await until('top talkers of the fleet', async () => ((await app.inject({ url: '/api/v1/top?by=node&window=1h&k=100' })).json() as { entries: unknown[] }).entries.length === NODES.length);
          const top = (await app.inject({ url: '/api/v1/top?by=node&window=1h&k=100' })).json() as { entries: { key: { node: string }; bytes: number; packets: number }[] };
          await until('top totals', async () => {
            const t = (await app.inject({ url: '/api/v1/top?by=node&window=1h&k=100' })).json() as { entries: { key: { node: string }; bytes: number }[] };
            return t.entries.reduce((x, e) => x + e.bytes, 0) === sum(NODES, 'bytes');
          });
          expect(top.entries.length).toBe(NODES.length);
          const status = r.status();
          expect(status.relay.scaleOut).toMatchObject({ partitions: PARTITIONS, live: ['api-a', 'api-b'] });
          expect(status.relay.scaleOut!.lastFanout).toMatchObject({ peers: 1, missing: [], incomplete: [] });
        } finally {
          await app.close();
        }
      }
      const byNode = async (r: Relay) => {
        const t = await r.services().top.top({ by: 'node', metric: 'bytes', windowMs: 3_600_000, k: 100, filter: parseFlowFilter({}, Date.now()) });
        return Object.fromEntries(t.entries.map((e) => [e.key.node as string, e.bytes]));
      };
      expect(await byNode(a)).toEqual(Object.fromEntries(NODES.map((n) => [n, written.get(n)!.bytes])));
      expect(await byNode(b)).toEqual(await byNode(a));
      // a third relay joins while queries run: no answer counts a partition twice or lacks one
      const truth = sum(NODES, 'bytes');
      const seen: { total: number; exact: boolean }[] = [];
      let querying = true;
      const queries = (async () => {
        while (querying) {
          const t = await a.services().top.top({ by: 'node', metric: 'bytes', windowMs: 3_600_000, k: 100, filter: parseFlowFilter({}, Date.now()) });
          seen.push({ total: t.totalBytes, exact: t.exact });
          await new Promise((r) => setTimeout(r, 30));
        }
      })();
      const c = new Relay({
        target: parseRedisUrl(server.url), group: 'fleet-api', consumer: 'api-c', version: 'test', storeSize: 100_000, top: { bucketMs: 500 }, discoverEveryMs: 300,
        scaleOut: { partitions: PARTITIONS, peerListen: { host: '127.0.0.1', port: 0 }, leaseMs: LEASE_MS, token: 'peer-secret' },
      });
      relays.push(c);
      await c.start();
      await until('three-way split', () => relays.every((r) => r.membership!.live.length === 3) && relays.reduce((x, r) => x + r.partitions!.owned.length, 0) === PARTITIONS && relays.every((r) => r.readiness().ready));
      await until('fleet answer complete again', async () => {
        const t = await a.services().top.top({ by: 'node', metric: 'bytes', windowMs: 3_600_000, k: 100, filter: parseFlowFilter({}, Date.now()) });
        return t.exact && t.totalBytes === truth;
      });
      // (a join that is over quickly has still been queried through a few times)
      await until('queries ran meanwhile', () => seen.length > 5);
      querying = false;
      await queries;
      expect(seen.length).toBeGreaterThan(5);
      // a moving partition stays with its previous owner until the new one has replayed it: every answer is whole
      expect(seen.filter((x) => x.total !== truth || !x.exact)).toEqual([]);
      // the peer endpoint wants the token
      const url = a.membership!.url!;
      const res = await fetch(new URL('/peer/v1/flows', url), { method: 'POST', body: '{}' });
      expect(res.status).toBe(401);
    } finally {
      for (const r of relays) await r.close();
    }
  }, 120_000);
});
