/**
 * The Redis sink on a 3-master Redis Cluster (redis+cluster URL): each node's
 * stream goes to the master owning its hash-tag slot, over the sink's own
 * XADD connection; when the slot moves to another master mid-run (MOVED),
 * the sink follows it and the stream still holds every record exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { connectClient, createRedisClient } from '../../src/redis/connection.js';
import { flowsKey } from '../../src/redis/keys.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { keySlot } from '../../src/redis/xadd-connection.js';
import { makeAgent, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { execFileSync } from 'node:child_process';
import { destroyRedis, startCluster, startRedis, type RedisServer } from './redis-server.js';

let servers: RedisServer[] = [];
let url: string;
let reader: Cluster;
const sinks: RedisStreamSink[] = [];

beforeAll(async () => {
  const c = await startCluster();
  servers = c.servers;
  url = c.url;
  reader = new Cluster(servers.map((s) => ({ host: '127.0.0.1', port: s.port })));
}, 60_000);
afterAll(async () => {
  for (const s of sinks) await s.close();
  reader?.disconnect();
  for (const s of servers) await destroyRedis(s);
});

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const nodeId = (s: RedisServer): string => s.cli('cluster', 'myid').trim();
function owner(slot: number): RedisServer {
  for (const s of servers) {
    const line = s.cli('cluster', 'nodes').split('\n').find((l) => l.includes('myself'))!;
    for (const range of line.split(' ').slice(8)) {
      const [a, b] = range.split('-').map(Number);
      if (slot >= a && slot <= (b ?? a)) return s;
    }
  }
  throw new Error(`no owner of slot ${slot}`);
}

/** Moves one slot (and its keys) to another master, as a resharding does. */
function moveSlot(slot: number, from: RedisServer, to: RedisServer): void {
  to.cli('cluster', 'setslot', String(slot), 'importing', nodeId(from));
  from.cli('cluster', 'setslot', String(slot), 'migrating', nodeId(to));
  for (;;) {
    const keys = from.cli('cluster', 'getkeysinslot', String(slot), '100').split('\n').filter(Boolean);
    if (keys.length === 0) break;
    from.cli('migrate', '127.0.0.1', String(to.port), '', '0', '10000', 'keys', ...keys);
  }
  for (const s of servers) s.cli('cluster', 'setslot', String(slot), 'node', nodeId(to));
}

async function streamSums(node: string): Promise<{ entries: number; packets: number; ids: Set<string> }> {
  const list = (await reader.xrange(flowsKey(node), '-', '+')) as [string, string[]][];
  let packets = 0;
  for (const [, f] of list) packets += Number(f[f.indexOf('packets') + 1]);
  return { entries: list.length, packets, ids: new Set(list.map(([id]) => id)) };
}

describe('redis sink on a cluster', () => {
  it('writes each node to its slot owner, follows a slot that moves, nothing lost or twice', async () => {
    const nodes = ['c-alpha', 'c-beta', 'c-gamma'];
    const agents: { node: string; sink: RedisStreamSink; t: TestAgent; packets: number; records: number }[] = [];
    for (const node of nodes) {
      const client = createRedisClient(parseRedisUrl(url), { connectionName: `t-${node}`, maxBackoffMs: 100 });
      await connectClient(client, 10_000);
      const sink = new RedisStreamSink({ node, client, url, maxLen: 100_000, bufferRecords: 100_000, batchSize: 16 });
      sinks.push(sink);
      agents.push({ node, sink, t: await makeAgent({ node, sinks: [sink] }), packets: 0, records: 0 });
    }
    const round = async (r: number): Promise<void> => {
      for (const a of agents) {
        const flows = Array.from({ length: 50 }, (_, i) => udp(`10.1.${r % 250}.${i + 1}`, '10.9.9.9', 1000 + i, 53, 1 + (i % 5), 100));
        await a.t.poll(flows);
        a.packets += flows.reduce((x, f) => x + f.packets, 0);
        a.records += flows.length;
      }
    };
    for (let r = 0; r < 5; r++) await round(r);
    await until('written', () => agents.every((a) => a.sink.status().pending === 0)).catch((e) => { console.log(JSON.stringify(agents.map((a) => a.sink.status()))); throw e; });
    // the first node's slot moves to another master; writing goes on
    const slot = keySlot(flowsKey('c-alpha'));
    const from = owner(slot);
    const to = servers.find((s) => s !== from)!;
    moveSlot(slot, from, to);
    expect(owner(slot)).toBe(to);
    for (let r = 5; r < 10; r++) await round(r);
    await until('written after the move', () => agents.every((a) => a.sink.status().pending === 0)).catch((e) => { console.log(JSON.stringify(agents.map((a) => a.sink.status()))); throw e; });
    for (const a of agents) {
      const s = await streamSums(a.node);
      expect({ node: a.node, entries: s.entries, packets: s.packets }).toEqual({ node: a.node, entries: a.records, packets: a.packets });
      expect(s.ids.size).toBe(a.records);
      expect(a.sink.status()).toMatchObject({ exported: a.records, dropped: 0, idClashes: 0 });
    }
  }, 90_000);

  it('a master fails over to its replica mid-run: the sink follows, the stream holds every record once', async () => {
    // 3 masters with a replica each
    const six: RedisServer[] = [];
    const cleanup = async (): Promise<void> => {
      for (const s of six) await destroyRedis(s);
    };
    try {
      // one by one, inside try: a server that fails to start leaves none behind
      for (let i = 0; i < 6; i++) six.push(await startRedis({ cluster: true }));
      execFileSync('redis-cli', ['--cluster', 'create', ...six.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      await until('cluster ok', () => six.every((s) => s.cli('cluster', 'info').includes('cluster_state:ok')), 30_000);
      const seeds = `redis+cluster://${six.slice(0, 3).map((s) => `127.0.0.1:${s.port}`).join(',')}`;
      const node = 'failover-node';
      const client = createRedisClient(parseRedisUrl(seeds), { connectionName: 't-failover', maxBackoffMs: 100 });
      await connectClient(client, 10_000);
      const logs: string[] = [];
      const sink = new RedisStreamSink({ node, client, url: seeds, maxLen: 100_000, bufferRecords: 100_000, batchSize: 16, log: { info: (o, m) => logs.push(`${m} ${JSON.stringify(o)}`), warn: (o, m) => logs.push(`W ${m} ${JSON.stringify(o)}`) } });
      const t = await makeAgent({ node, sinks: [sink] });
      let packets = 0;
      let records = 0;
      const round = async (r: number): Promise<void> => {
        const flows = Array.from({ length: 40 }, (_, i) => udp(`10.2.${r % 250}.${i + 1}`, '10.9.9.9', 1000 + i, 53, 1 + (i % 3), 100));
        await t.poll(flows);
        packets += flows.reduce((x, f) => x + f.packets, 0);
        records += flows.length;
      };
      for (let r = 0; r < 5; r++) await round(r);
      await until('written before', () => sink.status().pending === 0);
      // the replica of the stream's master takes over (CLUSTER FAILOVER: the orderly kind, replication caught up first)
      const slot = keySlot(flowsKey(node));
      const master = six.find((s) => {
        const me = s.cli('cluster', 'nodes').split('\n').find((l) => l.includes('myself'))!;
        return me.includes('master') && me.split(' ').slice(8).some((range) => {
          const [a, b] = range.split('-').map(Number);
          return slot >= a && slot <= (b ?? a);
        });
      })!;
      const masterId = master.cli('cluster', 'myid').trim();
      const replica = six.find((s) => s.cli('cluster', 'nodes').split('\n').some((l) => l.includes('myself') && l.includes(`slave ${masterId}`)))!;
      await until('replica in sync', () => replica.cli('info', 'replication').includes('master_link_status:up'), 30_000);
      const answer = replica.cli('cluster', 'failover').trim();
      expect(answer).toBe('OK');
      for (let r = 5; r < 8; r++) await round(r); // written while the failover happens
      await until('replica promoted', () => replica.cli('role').startsWith('master'), 20_000);
      for (let r = 8; r < 12; r++) await round(r);
      await until('written after', () => sink.status().pending === 0, 30_000);
      const fresh = new Cluster([{ host: '127.0.0.1', port: replica.port }]);
      const all = (await fresh.xrange(flowsKey(node), '-', '+')) as [string, string[]][];
      fresh.disconnect();
      expect(all.length).toBe(records);
      expect(all.reduce((x, [, f]) => x + Number(f[f.indexOf('packets') + 1]), 0)).toBe(packets);
      expect(new Set(all.map(([id]) => id)).size).toBe(records);
      if (sink.status().idClashes) console.log(logs.join('\n').slice(0, 3000));
      expect(sink.status()).toMatchObject({ exported: records, dropped: 0, idClashes: 0 });
      await sink.close();
    } finally {
      await cleanup();
    }
  }, 120_000);
});
