/**
 * The relay on a 3-master Redis Cluster: its own read connections
 * (stream-read-connection.ts) go to the master of each stream's slot, every
 * entry is counted once and acknowledged there (nothing left pending), and
 * when a stream's slot moves to another master mid-run (MOVED) the relay
 * reads it there, still counting every entry once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { connectClient, createRedisClient } from '../../src/redis/connection.js';
import { flowsKey } from '../../src/redis/keys.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { keySlot } from '../../src/redis/resp-socket.js';
import { Relay } from '../../src/relay/relay.js';
import { parseFlowFilter } from '../../src/flow/filter.js';
import { makeAgent, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { destroyRedis, startCluster, type RedisServer } from '../redis/redis-server.js';

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

/** Moves one slot (and its keys, consumer groups included) to another master, as a resharding does. */
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

describe('relay on a cluster', () => {
  it('reads every stream at its master, acknowledges there, follows a slot that moves; every entry once', async () => {
    const nodes = ['r-alpha', 'r-beta', 'r-gamma', 'r-delta'];
    expect(new Set(nodes.map((n) => owner(keySlot(flowsKey(n))))).size).toBeGreaterThan(1);
    const agents: { node: string; sink: RedisStreamSink; t: TestAgent; packets: number; bytes: number; records: number }[] = [];
    for (const node of nodes) {
      const client = createRedisClient(parseRedisUrl(url), { connectionName: `t-${node}`, maxBackoffMs: 100 });
      await connectClient(client, 10_000);
      const sink = new RedisStreamSink({ node, client, url, maxLen: 100_000, bufferRecords: 100_000, batchSize: 64 });
      sinks.push(sink);
      agents.push({ node, sink, t: await makeAgent({ node, sinks: [sink], clock: Date.now }), packets: 0, bytes: 0, records: 0 });
    }
    const round = async (r: number): Promise<void> => {
      for (const a of agents) {
        const flows = Array.from({ length: 30 }, (_, i) => udp(`10.3.${r % 250}.${i + 1}`, '10.9.9.9', 2000 + i, 53, 1 + (i % 4), 90 + i));
        await a.t.poll(flows);
        a.packets += flows.reduce((x, f) => x + f.packets, 0);
        a.bytes += flows.reduce((x, f) => x + f.bytes, 0);
        a.records += flows.length;
      }
      for (const a of agents) await a.sink.flush();
      await until('written', () => agents.every((a) => a.sink.status().pending === 0));
    };
    for (let r = 0; r < 3; r++) await round(r);

    const relay = new Relay({ target: parseRedisUrl(url), group: 'cl', consumer: 'c1', version: 'test', storeSize: 100_000, top: { bucketMs: 500 }, discoverEveryMs: 200 });
    try {
      await relay.start();
      const allRead = (): boolean => {
        const entries = new Map(relay.status().relay.nodes.map((n) => [n.node, n.entries]));
        return agents.every((a) => entries.get(a.node) === a.records);
      };
      await until('replayed', () => relay.readiness().ready);
      // written while it runs: read through the group at each stream's master
      for (let r = 3; r < 6; r++) await round(r);
      await until('read', allRead);

      // one stream's slot moves to another master; writing and reading go on
      const slot = keySlot(flowsKey('r-alpha'));
      const from = owner(slot);
      const to = servers.find((s) => s !== from)!;
      moveSlot(slot, from, to);
      for (let r = 6; r < 10; r++) await round(r);
      await until('read after the move', allRead);

      const flows = relay.view.flows(parseFlowFilter({}, Date.now()), 1_000_000);
      for (const a of agents) {
        const mine = flows.flows.filter((f) => f.node === a.node);
        expect({ node: a.node, records: mine.length, packets: mine.reduce((x, f) => x + f.packets, 0), bytes: mine.reduce((x, f) => x + f.bytes, 0) }).toEqual({ node: a.node, records: a.records, packets: a.packets, bytes: a.bytes });
        // acknowledged at the stream's master: nothing pending in the relay's group
        await until(`${a.node} acknowledged`, async () => ((await reader.xpending(flowsKey(a.node), 'cl')) as [number])[0] === 0);
      }
      expect(relay.status().relay.badEntries).toBe(0);
    } finally {
      await relay.close();
    }
  }, 120_000);
});
