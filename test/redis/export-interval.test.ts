/**
 * --redis-export-interval: the Redis sink writes one entry per flow per
 * interval, its counts the sums of the exports' (exact), while the agent's
 * own store keeps every export. Against a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { connectClient, createRedisClient } from '../../src/redis/connection.js';
import { flowsKey } from '../../src/redis/keys.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { resolveConfig } from '../../src/config/config.js';
import { makeAgent, T0, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { destroyRedis, startRedis, type RedisServer } from './redis-server.js';

let server: RedisServer;
let reader: Redis;
const sinks: RedisStreamSink[] = [];

beforeAll(async () => {
  server = await startRedis();
  reader = new Redis(server.port, '127.0.0.1');
});
afterAll(async () => {
  for (const s of sinks) await s.close();
  reader?.disconnect();
  await destroyRedis(server);
});

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function sinkAgent(node: string, intervalMs: number): Promise<{ t: TestAgent; sink: RedisStreamSink }> {
  const client = createRedisClient(parseRedisUrl(server.url), { connectionName: `t-${node}`, maxBackoffMs: 100 });
  await connectClient(client, 5000);
  let t: TestAgent | undefined;
  const sink = new RedisStreamSink({ node, client, url: server.url, maxLen: 1_000_000, bufferRecords: 100_000, batchSize: 64, exportIntervalMs: intervalMs, clock: () => (t ? t.now() : T0) });
  sinks.push(sink);
  t = await makeAgent({ node, sinks: [sink] });
  return { t, sink };
}

type Entry = { id: string; f: Record<string, string> };
async function entries(node: string): Promise<Entry[]> {
  return ((await reader.xrange(flowsKey(node), '-', '+')) as [string, string[]][]).map(([id, list]) => {
    const f: Record<string, string> = {};
    for (let i = 0; i < list.length; i += 2) f[list[i]] = list[i + 1];
    return { id, f };
  });
}
const flowKey = (f: Record<string, string>): string => `${f.iface} ${f.direction} ${f.src}:${f.sport} ${f.dst}:${f.dport} ${f.proto}`;

describe('--redis-export-interval', () => {
  it('a long-lived flow costs one entry per interval; every flow\'s entries add up to its traffic exactly; the store keeps every export', async () => {
    const { t, sink } = await sinkAgent('coalesce-a', 10_000);
    const sent = new Map<string, { packets: number; bytes: number }>();
    const note = (f: ReturnType<typeof udp>): void => {
      const key = `eth0 ingress ${f.src}:${f.sport} ${f.dst}:${f.dport} udp`;
      const s = sent.get(key) ?? { packets: 0, bytes: 0 };
      s.packets += f.packets;
      s.bytes += f.bytes;
      sent.set(key, s);
    };
    // 60 polls of 1 s: one flow on every poll, one on every third, short flows now and then
    for (let p = 0; p < 60; p++) {
      const flows = [udp('10.7.0.1', '10.7.0.9', 4000, 53, 3 + (p % 4), 300 + p)];
      if (p % 3 === 0) flows.push(udp('10.7.0.2', '10.7.0.9', 4001, 53, 1, 64));
      if (p % 17 === 5) flows.push(udp(`10.7.1.${p}`, '10.7.0.9', 5000 + p, 53, 2, 128));
      flows.forEach(note);
      await t.poll(flows);
    }
    await sink.flush();
    await until('written', () => sink.status().pending === 0);
    const list = await entries('coalesce-a');
    const byFlow = new Map<string, Entry[]>();
    for (const e of list) byFlow.set(flowKey(e.f), [...(byFlow.get(flowKey(e.f)) ?? []), e]);
    // the flow seen on every poll: one entry per 10 s
    expect(byFlow.get('eth0 ingress 10.7.0.1:4000 10.7.0.9:53 udp')).toHaveLength(6);
    expect(byFlow.get('eth0 ingress 10.7.0.2:4001 10.7.0.9:53 udp')).toHaveLength(6);
    for (const [key, s] of sent) {
      const es = byFlow.get(key) ?? [];
      expect({ key, packets: es.reduce((a, e) => a + Number(e.f.packets), 0), bytes: es.reduce((a, e) => a + Number(e.f.bytes), 0) }).toEqual({ key, ...s });
      // the intervals of a flow's entries do not overlap, each at most the interval long
      for (let i = 0; i < es.length; i++) {
        const start = Date.parse(es[i].f.start);
        const end = Date.parse(es[i].f.end);
        expect(end - start).toBeLessThanOrEqual(10_000);
        if (i > 0) expect(start).toBeGreaterThanOrEqual(Date.parse(es[i - 1].f.end));
        expect(Number(es[i].id.split('-')[0])).toBe(end);
      }
    }
    expect(list.length).toBe(6 + 6 + [...sent.keys()].filter((k) => k.includes('10.7.1.')).length);
    // the agent's own store keeps the per-poll records
    expect(t.agent.flows({}, 10_000).flows.filter((r) => r.src === '10.7.0.1')).toHaveLength(60);
    expect(sink.status()).toMatchObject({ exportIntervalMs: 10_000, exported: list.length, dropped: 0 });
  });

  it('an idle agent does not hold the last interval back, and close() writes the open interval', async () => {
    const { t, sink } = await sinkAgent('coalesce-b', 10_000);
    for (let p = 0; p < 3; p++) await t.poll([udp('10.8.0.1', '10.8.0.9', 4000, 53, 5, 500)]);
    await sink.flush();
    expect(sink.status().intervalFlows).toBe(1);
    expect(await entries('coalesce-b')).toHaveLength(0);
    // no more traffic: polls export nothing, the interval closes when the clock passes it
    for (let p = 0; p < 8; p++) await t.poll([]);
    await sink.flush();
    await until('idle interval written', async () => (await entries('coalesce-b')).length === 1).catch(async (e) => { console.log(JSON.stringify(sink.status()), t.now() - T0, JSON.stringify(await entries('coalesce-b'))); throw e; });
    expect((await entries('coalesce-b'))[0].f).toMatchObject({ packets: '15', bytes: '1500' });
    await t.poll([udp('10.8.0.1', '10.8.0.9', 4000, 53, 2, 200)]);
    await sink.close();
    const list = await entries('coalesce-b');
    expect(list).toHaveLength(2);
    expect(list.reduce((a, e) => a + Number(e.f.packets), 0)).toBe(17);
  });

  it('config: 10 s by default; a multiple of the poll interval, rounded up to one of the export interval', () => {
    const base = { iface: ['eth0'] };
    expect(resolveConfig({ flags: base, env: {} }).redisExportIntervalMs).toBe(10_000);
    expect(resolveConfig({ flags: { ...base, 'export-interval': '3s' }, env: {} }).redisExportIntervalMs).toBe(12_000);
    expect(resolveConfig({ flags: { ...base, 'redis-export-interval': '1s' }, env: {} }).redisExportIntervalMs).toBe(1000);
    expect(resolveConfig({ flags: { ...base, 'poll-interval': '3s' }, env: {} }).redisExportIntervalMs).toBe(12_000);
    expect(() => resolveConfig({ flags: { ...base, 'poll-interval': '2s', 'redis-export-interval': '5s' }, env: {} })).toThrow(/multiple of poll-interval/);
    expect(resolveConfig({ flags: base, env: { FLOWSCOPE_REDIS_EXPORT_INTERVAL: '30s' } }).redisExportIntervalMs).toBe(30_000);
  });
});
