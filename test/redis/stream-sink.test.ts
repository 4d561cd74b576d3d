/**
 * The Redis sink against a real redis-server, fed by an agent on a synthetic
 * source: exact stream contents, the bounded queue while Redis is away, drops
 * past the bound (status and metrics), idempotent retries, and a write() that
 * never waits for Redis.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisClient, connectClient, type RedisClient } from '../../src/redis/connection.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import type { XaddTransport } from '../../src/redis/xadd-connection.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { flowsKey, interfacesKey, NODES_KEY } from '../../src/redis/keys.js';
import { makeAgent, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { destroyRedis, startRedis, type RedisServer } from './redis-server.js';

let server: RedisServer;
let reader: Redis;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  server = await startRedis();
  reader = new Redis(server.port, '127.0.0.1', { lazyConnect: false });
});
afterAll(async () => {
  reader?.disconnect();
  await destroyRedis(server);
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function sinkAgent(node: string, opts: { buffer?: number; batch?: number; client?: RedisClient; wrapTransport?: (t: XaddTransport) => XaddTransport } = {}): Promise<{ t: TestAgent; sink: RedisStreamSink }> {
  const client = opts.client ?? createRedisClient(parseRedisUrl(server.url), { connectionName: 'test', maxBackoffMs: 100 });
  if (!opts.client) await connectClient(client, 5000);
  let agent: TestAgent | undefined;
  const interfaces = () => agent?.agent.interfaceAccounting.report() ?? [];
  const sink = new RedisStreamSink({ node, client, url: server.url, maxLen: 100_000, bufferRecords: opts.buffer ?? 10_000, batchSize: opts.batch ?? 7, interfaces, wrapTransport: opts.wrapTransport });
  const t = (agent = await makeAgent({ node, sinks: [sink] }));
  cleanups.push(() => sink.close());
  return { t, sink };
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function entries(node: string): Promise<{ id: string; f: Record<string, string> }[]> {
  const raw = (await reader.xrange(flowsKey(node), '-', '+')) as [string, string[]][];
  return raw.map(([id, list]) => {
    const f: Record<string, string> = {};
    for (let i = 0; i < list.length; i += 2) f[list[i]] = list[i + 1];
    return { id, f };
  });
}

function sums(list: { f: Record<string, string> }[]): Map<string, { packets: number; bytes: number; n: number }> {
  const out = new Map<string, { packets: number; bytes: number; n: number }>();
  for (const { f } of list) {
    const key = `${f.iface} ${f.direction} ${f.src} ${f.sport} ${f.dst} ${f.dport} ${f.proto}`;
    const s = out.get(key) ?? { packets: 0, bytes: 0, n: 0 };
    s.packets += Number(f.packets);
    s.bytes += Number(f.bytes);
    s.n++;
    out.set(key, s);
  }
  return out;
}

describe('redis sink', () => {
  it('writes one entry per record and export, all contract fields as strings, node registered', async () => {
    const { t, sink } = await sinkAgent('unit-a');
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1000, 53, 3, 300), { iface: 'eth1', direction: 'egress', src: '2001:db8::1', dst: '2001:db8::2', proto: 6, sport: 40000, dport: 443, packets: 7, bytes: 7000, tcpFlags: 0x12 }]);
    await t.poll([udp('10.0.0.1', '10.0.0.9', 1000, 53, 2, 200), { iface: 'eth0', direction: 'ingress', src: '10.0.0.5', dst: '10.0.0.9', proto: 1, sport: 0, dport: 0, packets: 4, bytes: 400, icmpType: 8, icmpCode: 0 }]);
    await sink.flush();
    await until(() => sink.status().pending === 0);
    const list = await entries('unit-a');
    expect(list).toHaveLength(4);
    const first = list[0].f;
    expect(Object.keys(first).sort()).toEqual(['bytes', 'direction', 'dport', 'dst', 'end', 'family', 'firstSeen', 'iface', 'ifindex', 'lastSeen', 'node', 'packets', 'proto', 'sport', 'src', 'start', 'tcpFlags', 'writer'].sort());
    expect(first.writer).toBe(sink.writer);
    expect(sink.writer).toMatch(/^[0-9a-f]{16}$/);
    expect(first).toMatchObject({ node: 'unit-a', iface: 'eth0', ifindex: '2', direction: 'ingress', family: '4', src: '10.0.0.1', dst: '10.0.0.9', proto: 'udp', sport: '1000', dport: '53', packets: '3', bytes: '300', tcpFlags: '' });
    for (const k of ['start', 'end', 'firstSeen', 'lastSeen']) expect(first[k]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const tcp = list.find((e) => e.f.proto === 'tcp')!.f;
    expect(tcp).toMatchObject({ family: '6', src: '2001:db8::1', tcpFlags: 'SYN,ACK', direction: 'egress', iface: 'eth1' });
    const icmp = list.find((e) => e.f.proto === 'icmp')!.f;
    expect(icmp).toMatchObject({ icmpType: '8', icmpCode: '0', sport: '0', dport: '0' });
    expect(sums(list).get('eth0 ingress 10.0.0.1 1000 10.0.0.9 53 udp')).toEqual({ packets: 5, bytes: 500, n: 2 });
    // IDs follow the export time and increase
    expect(Number(list[0].id.split('-')[0])).toBe(Date.parse(first.end));
    expect(await reader.smembers(NODES_KEY)).toContain('unit-a');
    const ifaces = await reader.hgetall(interfacesKey('unit-a'));
    expect(JSON.parse(ifaces.eth0)).toMatchObject({ node: 'unit-a', iface: 'eth0', ifindex: 2, rx: { packets: 9, bytes: 900 } });
    expect(sink.status()).toMatchObject({ name: 'redis', exported: 4, dropped: 0, pending: 0, connected: true });
  });

  it('buffers while Redis is down, never blocks write(), and writes the backlog in order, exactly', async () => {
    const { t, sink } = await sinkAgent('unit-b');
    await t.poll([udp('10.0.1.1', '10.0.1.9', 1000, 53, 1, 100)]);
    await until(() => sink.status().exported === 1);
    await server.stop();
    let sent = 1;
    for (let p = 0; p < 20; p++) {
      const flows = Array.from({ length: 10 }, (_, i) => udp(`10.0.1.${i + 1}`, '10.0.1.9', 1000 + i, 53, 1 + i, 100 * (1 + i)));
      sent += flows.reduce((a, f) => a + f.packets, 0);
      const t0 = performance.now();
      await t.poll(flows);
      expect(performance.now() - t0).toBeLessThan(500);
    }
    expect(sink.status().pending).toBe(200);
    expect(sink.status().connected).toBe(false);
    expect(sink.status().lastError).toMatch(/redis/);
    await server.restart();
    await until(() => sink.status().pending === 0);
    const list = await entries('unit-b');
    expect(list).toHaveLength(201);
    expect(list.reduce((a, e) => a + Number(e.f.packets), 0)).toBe(sent);
    const ends = list.map((e) => Date.parse(e.f.end));
    expect(ends).toEqual([...ends].sort((a, b) => a - b));
    expect(sink.status()).toMatchObject({ exported: 201, dropped: 0 });
  });

  it('drops past the bound, counts the drops, and reports them in status and metrics', async () => {
    const { t, sink } = await sinkAgent('unit-c', { buffer: 5 });
    await server.stop();
    try {
      await t.poll(Array.from({ length: 12 }, (_, i) => udp(`10.0.2.${i + 1}`, '10.0.2.99', 2000 + i, 53, 1, 100)));
      expect(sink.status()).toMatchObject({ pending: 5, dropped: 7 });
      const status = t.agent.status().sinks.find((s) => s.name === 'redis');
      expect(status).toMatchObject({ dropped: 7, pending: 5 });
      expect(await t.agent.metrics.render()).toMatch(/flowscope_records_dropped_total\{sink="redis"\} 7/);
    } finally {
      await server.restart();
    }
    await until(() => sink.status().pending === 0);
    expect(await entries('unit-c')).toHaveLength(5);
    expect(sink.status()).toMatchObject({ exported: 5, dropped: 7 });
  });

  it('re-sending entries whose replies were lost stores them once', async () => {
    const client = createRedisClient(parseRedisUrl(server.url), { connectionName: 'test-lossy', maxBackoffMs: 100 });
    await connectClient(client, 5000);
    let loseReplies = 2;
    // A hot-path connection whose pipelines run but whose replies are "lost" twice, as when the connection drops after Redis executed them.
    const lossy = (real: XaddTransport): XaddTransport => ({
      get connected() {
        return real.connected;
      },
      connect: () => real.connect(),
      close: () => real.close(),
      send: async (buf, length, commands) => {
        const r = await real.send(buf, length, commands);
        if (loseReplies-- > 0) {
          real.close();
          return new Error('Connection is closed.');
        }
        return r;
      },
    });
    const { t, sink } = await sinkAgent('unit-d', { client, batch: 4, wrapTransport: lossy });
    await t.poll(Array.from({ length: 10 }, (_, i) => udp(`10.0.3.${i + 1}`, '10.0.3.99', 3000 + i, 53, 2, 200)));
    await until(() => sink.status().pending === 0);
    const list = await entries('unit-d');
    expect(list).toHaveLength(10);
    expect(new Set(list.map((e) => e.f.src)).size).toBe(10);
    // Its own earlier attempts, recognised by the writer id: no sign of another writer.
    expect(sink.status()).toMatchObject({ exported: 10, dropped: 0, idClashes: 0, duplicateNode: false, otherWriterSeen: 0 });
  });

  it('trims the stream with MAXLEN ~', async () => {
    const client = createRedisClient(parseRedisUrl(server.url), { connectionName: 'test-trim' });
    await connectClient(client, 5000);
    const sink = new RedisStreamSink({ node: 'unit-e', client, url: server.url, maxLen: 100, bufferRecords: 10_000 });
    cleanups.push(() => sink.close());
    const t = await makeAgent({ node: 'unit-e', sinks: [sink] });
    for (let p = 0; p < 10; p++) await t.poll(Array.from({ length: 100 }, (_, i) => udp(`10.0.4.${i + 1}`, '10.0.4.200', 4000, 53, 1, 100)));
    await until(() => sink.status().pending === 0);
    const len = await reader.xlen(flowsKey('unit-e'));
    expect(len).toBeGreaterThanOrEqual(100);
    expect(len).toBeLessThan(1000);
  });
});
