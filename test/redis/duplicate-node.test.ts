/**
 * Two agents with one node name (cloned VMs) write one stream. Each Redis
 * sink tells its own earlier attempts from the other writer's entries (the
 * writer id in every entry, checked on an ID clash; the writer key swapped at
 * every flush), reports a duplicate node in status, metrics and logs, and
 * counts as exported only what Redis stored: nothing lost, nothing twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { connectClient, createRedisClient } from '../../src/redis/connection.js';
import { flowsKey, writerKey } from '../../src/redis/keys.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import { parseRedisUrl } from '../../src/redis/url.js';
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

interface Writer {
  t: TestAgent;
  sink: RedisStreamSink;
  logs: string[];
  sent: { packets: number; bytes: number; records: number };
}

async function writer(node: string, clockOffsetMs: number, src: string): Promise<Writer> {
  const client = createRedisClient(parseRedisUrl(server.url), { connectionName: `dup-${src}`, maxBackoffMs: 100 });
  await connectClient(client, 5000);
  const logs: string[] = [];
  const log = { info: () => undefined, warn: (_o: object, msg: string) => void logs.push(msg) };
  let now = T0 + clockOffsetMs;
  const sink = new RedisStreamSink({ node, client, url: server.url, maxLen: 100_000, bufferRecords: 10_000, batchSize: 8, log, clock: () => now });
  sinks.push(sink);
  const t = await makeAgent({ node, sinks: [sink], clock: () => now });
  const w: Writer = { t, sink, logs, sent: { packets: 0, bytes: 0, records: 0 } };
  (w as { tick?: () => void }).tick = () => (now += 1000);
  return w;
}

/** One poll of `w` with `n` flows from `src`, its clock one second on; then its sink flushed. */
async function poll(w: Writer, src: string, n: number): Promise<void> {
  (w as unknown as { tick: () => void }).tick();
  const flows = Array.from({ length: n }, (_, i) => udp(src, '10.9.9.9', 1000 + i, 53, 1 + i, 100 * (1 + i)));
  w.t.source.push(flows);
  await w.t.agent.collector.pollOnce();
  for (const f of flows) {
    w.sent.packets += f.packets;
    w.sent.bytes += f.bytes;
  }
  w.sent.records += n;
  await w.sink.flush();
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function byWriter(node: string): Promise<Map<string, { packets: number; bytes: number; entries: number; ids: string[] }>> {
  const out = new Map<string, { packets: number; bytes: number; entries: number; ids: string[] }>();
  for (const [id, list] of (await reader.xrange(flowsKey(node), '-', '+')) as [string, string[]][]) {
    const f: Record<string, string> = {};
    for (let i = 0; i < list.length; i += 2) f[list[i]] = list[i + 1];
    const s = out.get(f.writer) ?? { packets: 0, bytes: 0, entries: 0, ids: [] };
    s.packets += Number(f.packets);
    s.bytes += Number(f.bytes);
    s.entries++;
    s.ids.push(id);
    out.set(f.writer, s);
  }
  return out;
}

describe('two sinks with one node name', () => {
  it('an ID clash the sink did not cause: detected, reported, not counted as exported, sent again with a fresh ID', async () => {
    // b's clock runs 30 s ahead: its IDs are above everything a writes.
    const a = await writer('twin', 0, '10.0.0.1');
    const b = await writer('twin', 30_000, '10.0.0.2');
    await poll(a, '10.0.0.1', 5);
    await until('a delivered', () => a.sink.status().pending === 0);
    expect(a.sink.status()).toMatchObject({ exported: 5, idClashes: 0, duplicateNode: false });
    await poll(b, '10.0.0.2', 5);
    await until('b delivered', () => b.sink.status().pending === 0);
    // a's next entries get IDs below b's: Redis refuses them. Not a's own retries: a must not count them.
    await poll(a, '10.0.0.1', 20);
    const clashed = a.sink.status();
    expect(clashed.idClashes).toBeGreaterThan(0);
    expect(clashed.exported).toBeLessThan(25);
    expect(clashed).toMatchObject({ duplicateNode: true, otherWriter: b.sink.writer });
    await until('a delivered after the clash', () => a.sink.status().pending === 0);
    for (let i = 0; i < 3; i++) {
      await poll(a, '10.0.0.1', 3);
      await poll(b, '10.0.0.2', 3);
    }
    await until('both delivered', () => a.sink.status().pending === 0 && b.sink.status().pending === 0);

    // Nothing lost, nothing twice: each writer's entries in the stream are exactly what it sent and counted.
    const stored = await byWriter('twin');
    expect(stored.get(a.sink.writer)).toMatchObject({ entries: a.sent.records, packets: a.sent.packets, bytes: a.sent.bytes });
    expect(stored.get(b.sink.writer)).toMatchObject({ entries: b.sent.records, packets: b.sent.packets, bytes: b.sent.bytes });
    expect(a.sink.status()).toMatchObject({ exported: a.sent.records, dropped: 0 });
    expect(b.sink.status()).toMatchObject({ exported: b.sent.records, dropped: 0 });

    // Both see the other in the writer key; status, metrics and logs say so.
    for (const [w, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const s = w.sink.status();
      expect(s.duplicateNode).toBe(true);
      expect(s.otherWriterSeen).toBeGreaterThan(0);
      expect(s.otherWriter).toBe(other.sink.writer);
      const metrics = await w.t.agent.metrics.render();
      expect(metrics).toMatch(/^flowscope_redis_duplicate_node 1$/m);
      expect(metrics).toMatch(/^flowscope_redis_other_writer_seen_total [1-9]/m);
      expect(w.logs.some((m) => /another process writes the stream of node "twin"/.test(m))).toBe(true);
      const status = w.t.agent.status().sinks.find((x) => x.name === 'redis')!;
      expect(status).toMatchObject({ duplicateNode: true, writer: w.sink.writer });
    }
    expect(await a.t.agent.metrics.render()).toMatch(/^flowscope_redis_id_clashes_total [1-9]/m);
    // Rate-limited: one warning per 10 s of (fake) time at most.
    expect(a.logs.filter((m) => /another process/.test(m)).length).toBeLessThanOrEqual(3);
  });

  it('one writer that restarts (a new process, a new writer id) is no duplicate', async () => {
    const first = await writer('solo', 0, '10.1.0.1');
    await poll(first, '10.1.0.1', 4);
    await until('first delivered', () => first.sink.status().pending === 0);
    await first.sink.close();
    const second = await writer('solo', 5000, '10.1.0.1');
    for (let i = 0; i < 3; i++) await poll(second, '10.1.0.1', 4);
    await until('second delivered', () => second.sink.status().pending === 0);
    expect(second.sink.status()).toMatchObject({ exported: 12, idClashes: 0, otherWriterSeen: 0, duplicateNode: false });
    expect(await reader.get(writerKey('solo'))).toBe(second.sink.writer);
    expect(second.logs.filter((m) => /another process/.test(m))).toEqual([]);
    expect(await second.t.agent.metrics.render()).toMatch(/^flowscope_redis_duplicate_node 0$/m);
  });
});
