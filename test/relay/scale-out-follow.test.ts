/**
 * Scale-out and /api/v1/flows/stream: a client following one relay of two
 * gets the new records of the whole fleet, its own partitions' and its
 * peer's (POST /peer/v1/follow), each record once; the peer endpoint wants
 * the relays' token. Against a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { createApp } from '../../src/api/app.js';
import { flowsKey, NODES_KEY } from '../../src/redis/keys.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { partitionOf } from '../../src/relay/membership.js';
import { Relay } from '../../src/relay/relay.js';
import { sseClient } from '../api/sse-client.js';
import { destroyRedis, startRedis, type RedisServer } from '../redis/redis-server.js';

const PARTITIONS = 8;
const NODES = Array.from({ length: 12 }, (_, i) => `fo-${i}`);

let server: RedisServer;
let writer: Redis;
const relays: Relay[] = [];
let app: FastifyInstance | undefined;

beforeAll(async () => {
  server = await startRedis({ extra: ['--appendonly', 'no'] });
  writer = new Redis(server.port, '127.0.0.1');
});
afterAll(async () => {
  await app?.close();
  for (const r of relays) await r.close();
  writer?.disconnect();
  await destroyRedis(server);
});

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One entry per node, its source port the round's mark. */
async function writeRound(mark: number): Promise<void> {
  const iso = (ms: number) => new Date(ms).toISOString();
  const end = Date.now() - 500;
  const p = writer.pipeline();
  for (const [n, node] of NODES.entries()) {
    p.sadd(NODES_KEY, node);
    p.xadd(flowsKey(node), '*', 'node', node, 'iface', 'eth0', 'ifindex', '2', 'direction', 'egress', 'family', '4', 'src', `10.7.${n}.1`, 'dst', '10.99.0.1',
      'proto', 'udp', 'sport', String(mark), 'dport', '53', 'packets', '1', 'bytes', '100', 'tcpFlags', '',
      'start', iso(end - 1000), 'end', iso(end), 'firstSeen', iso(end - 900), 'lastSeen', iso(end - 100));
  }
  await p.exec();
}

describe('relay scale-out: following the fleet', () => {
  it('a stream on one relay carries the new records of every partition, each once', async () => {
    await writeRound(1);
    for (const id of ['fo-a', 'fo-b']) {
      const r = new Relay({
        target: parseRedisUrl(server.url),
        group: 'follow',
        consumer: id,
        version: 'test',
        storeSize: 10_000,
        discoverEveryMs: 200,
        scaleOut: { partitions: PARTITIONS, peerListen: { host: '127.0.0.1', port: 0 }, leaseMs: 1500, token: 'peer-secret' },
      });
      relays.push(r);
      await r.start();
    }
    const [a, b] = relays;
    await until('split', () => relays.every((r) => r.readiness().ready && r.membership!.live.length === 2) && a.partitions!.owned.length + b.partitions!.owned.length === PARTITIONS && b.partitions!.owned.length > 0 && a.partitions!.owned.length > 0);
    const ofB = NODES.filter((n) => b.partitions!.owned.includes(partitionOf(n, PARTITIONS)));
    const ofA = NODES.filter((n) => !ofB.includes(n));
    expect(ofA.length).toBeGreaterThan(0);
    expect(ofB.length).toBeGreaterThan(0);

    app = await createApp({ services: a.services(), version: 'test' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const sse = sseClient(`http://127.0.0.1:${port}/api/v1/flows/stream`);
    expect(await sse.status).toBe(200);
    const marked = (mark: number) => sse.records().filter((r) => r.sport === mark);
    // the peer's part of the stream is up once a record of its partitions comes through
    let probe = 1000;
    await until('peer followed', async () => {
      await writeRound(++probe);
      await new Promise((r) => setTimeout(r, 100));
      return sse.records().some((r) => ofB.includes(r.node as string));
    });
    for (let mark = 5000; mark < 5005; mark++) await writeRound(mark);
    await until('every new record came', () => [5000, 5001, 5002, 5003, 5004].every((m) => marked(m).length >= NODES.length));
    await until('the probes too', () => marked(probe).length >= NODES.length);
    for (let mark = 5000; mark < 5005; mark++) {
      // every node once: relay a's own partitions and relay b's
      expect(marked(mark).map((r) => r.node).sort()).toEqual([...NODES].sort());
    }
    sse.destroy();

    // the peer endpoint wants the token
    const res = await fetch(new URL('/peer/v1/follow', b.membership!.url!), { method: 'POST', body: '{"filter":{}}' });
    expect(res.status).toBe(401);
  }, 60_000);
});
