/**
 * Discovery of nodes (stream-consumer.ts): many nodes' groups are created
 * with their round trips in flight together, yet the outcome is what taking
 * them one by one gives: under --max-nodes, a node whose key Redis refuses
 * (tried again at the next discovery) leaves its room to the next name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { flowsKey, NODES_KEY } from '../../src/redis/keys.js';
import { Relay } from '../../src/relay/relay.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { eventually } from '../helpers/eventually.js';
import { destroyRedis, startRedis, type RedisServer } from '../redis/redis-server.js';

let server: RedisServer;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  await destroyRedis(server);
});

const relayOn = (group: string, maxNodes: number) =>
  new Relay({ target: parseRedisUrl(server.url), group, consumer: 'c', version: 'test', storeSize: 100, top: { bucketMs: 1000, horizonMs: 60_000, capacity: 10 }, discoverEveryMs: 200, maxNodes });

describe('relay discovery', () => {
  it('under --max-nodes, a key Redis refuses leaves its room to the next node; and it is not counted as read', async () => {
    // names sort as n-0 .. n-9; n-1 is not a stream
    const names = Array.from({ length: 10 }, (_, i) => `n-${i}`);
    await redis.sadd(NODES_KEY, ...names);
    await redis.set(flowsKey('n-1'), 'not a stream');
    const relay = relayOn('g', 4);
    await relay.start();
    try {
      await eventually(() => relay.view.nodes.size === 4, 'four nodes read');
      // a few discoveries later still the same four: n-0, n-2, n-3, n-4 (not n-0, n-2, n-3 and nothing)
      await new Promise((r) => setTimeout(r, 600));
      expect([...relay.view.nodes.keys()].sort()).toEqual(['n-0', 'n-2', 'n-3', 'n-4']);
      expect(relay.status().relay.nodes.find((n) => n.node === 'n-1')?.lastError).toMatch(/WRONGTYPE/);
    } finally {
      await relay.close();
    }
  });

  it('takes a thousand nodes in one discovery, every one of them', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`);
    await redis.del(NODES_KEY);
    await redis.sadd(NODES_KEY, ...names);
    const relay = relayOn('g-bulk', 4096);
    await relay.start();
    try {
      await eventually(() => relay.view.nodes.size === 1000, 'a thousand nodes read');
      expect([...relay.view.nodes.keys()].sort()).toEqual(names);
      const groups = await Promise.all(names.slice(0, 50).map((n) => redis.xinfo('GROUPS', flowsKey(n)) as Promise<unknown[][]>));
      for (const g of groups) expect(g.map((x) => x[1])).toContain('g-bulk');
    } finally {
      await relay.close();
    }
  });
});
