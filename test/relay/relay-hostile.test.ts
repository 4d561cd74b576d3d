/**
 * The relay treats Redis as untrusted input. A real redis-server holds a
 * healthy agent's stream (an Agent on a synthetic source writing through the
 * Redis sink) next to corrupt entries, keys of the wrong type, bad node names
 * and bad interfaces hash values, written before the relay starts (replay)
 * and while it runs (XREADGROUP). Every route answers 200 (400 for a bad
 * query), never 500; the healthy node's counts are exact; what was refused is
 * counted per node and reason in /api/v1/status and /metrics, and logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { createApp } from '../../src/api/app.js';
import { connectClient, createRedisClient } from '../../src/redis/connection.js';
import { flowsKey, interfacesKey, NODES_KEY } from '../../src/redis/keys.js';
import { Relay } from '../../src/relay/relay.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { makeAgent, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { destroyRedis, startRedis, type RedisServer } from '../redis/redis-server.js';

let server: RedisServer;
let redis: Redis;
let good: { t: TestAgent; sink: RedisStreamSink };
let relay: Relay | undefined;
let app: FastifyInstance | undefined;
const logs: { msg: string; obj: object }[] = [];
const log = {
  info: (obj: object, msg: string) => logs.push({ msg, obj }),
  warn: (obj: object, msg: string) => logs.push({ msg, obj }),
};
/** what the healthy agent sent */
const sent = { packets: 0, bytes: 0 };

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The fields of a well-formed entry of `node`, ending now, with overrides (undefined removes a field). */
function entry(node: string, overrides: Record<string, string | undefined> = {}): string[] {
  const now = Date.now();
  const f: Record<string, string | undefined> = {
    node,
    iface: 'eth0',
    ifindex: '2',
    direction: 'ingress',
    family: '4',
    src: '192.0.2.1',
    dst: '192.0.2.2',
    proto: 'udp',
    sport: '1234',
    dport: '53',
    packets: '1',
    bytes: '100',
    tcpFlags: '',
    start: new Date(now - 1000).toISOString(),
    end: new Date(now).toISOString(),
    firstSeen: new Date(now - 1000).toISOString(),
    lastSeen: new Date(now).toISOString(),
    ...overrides,
  };
  return Object.entries(f).flatMap(([k, v]) => (v === undefined ? [] : [k, v]));
}

/** Entries the relay must refuse, with the reason it must count. */
const HOSTILE: [string, Record<string, string | undefined>][] = [
  ['count', { bytes: '1e308' }],
  ['count', { bytes: '18446744073709551616' }],
  ['count', { packets: '-1' }],
  ['count', { bytes: '0x10' }],
  ['count', { bytes: '9007199254740992' }], // 2^53
  ['time', { end: '2999-01-01T00:00:00.000Z' }],
  ['time', { start: 'yesterday' }],
  ['time', { lastSeen: '1970-01-01T00:00:00.000Z' }],
  ['missing_field', { dst: undefined }],
  ['unknown_field', { colour: 'red' }],
  ['address', { src: '300.1.2.3' }],
  ['address', { src: '2001:DB8::1', dst: '2001:db8::2', family: '6' }],
  ['address', { family: '6' }],
  ['protocol', { proto: 'TCP' }],
  ['protocol', { proto: '256' }],
  ['direction', { direction: 'sideways' }],
  ['family', { family: '5' }],
  ['port', { sport: '65536' }],
  ['icmp', { icmpType: '8', icmpCode: '0' }],
  ['icmp', { proto: 'icmp', icmpType: '300', icmpCode: '0' }],
  ['tcp_flags', { tcpFlags: 'SYN,BOGUS' }],
  ['iface', { iface: 'a/b' }],
  ['ifindex', { ifindex: '-2' }],
  ['node', { node: 'someone-else' }],
];

function countHostile(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [reason] of HOSTILE) out[reason] = (out[reason] ?? 0) + 1;
  return out;
}

async function writeHostile(): Promise<void> {
  for (const [, overrides] of HOSTILE) await redis.xadd(flowsKey('evil'), '*', ...entry('evil', overrides));
  // one good entry of the same node: kept
  await redis.xadd(flowsKey('evil'), '*', ...entry('evil', { bytes: '777' }));
}

async function pollGood(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const packets = 1 + i;
    const bytes = 100 * packets + i;
    await good.t.poll([udp('10.0.0.1', '10.0.0.9', 40000 + (i % 3), 53, packets, bytes)]);
    sent.packets += packets;
    sent.bytes += bytes;
  }
  await good.sink.flush();
  await until('healthy agent delivered', () => good.sink.status().pending === 0);
}

async function get(path: string): Promise<{ status: number; body: any; text: string }> {
  const r = await app!.inject({ method: 'GET', url: path });
  let body: unknown;
  try {
    body = JSON.parse(r.body);
  } catch {
    body = undefined;
  }
  return { status: r.statusCode, body, text: r.body };
}

/** Every route and a few queries on each: none answers 500. */
async function everyRouteAnswers(): Promise<void> {
  const paths = [
    '/healthz',
    '/readyz',
    '/api/v1/status',
    '/api/v1/interfaces',
    '/api/v1/flows?limit=10000',
    '/api/v1/flows?node=evil',
    '/api/v1/flows?proto=tcp&since=1h',
    '/metrics',
    '/openapi.json',
    ...['src', 'dst', 'pair', 'flow', 'sport', 'dport', 'proto', 'iface', 'node'].map((by) => `/api/v1/top?by=${by}&window=1h`),
    '/api/v1/top?by=pair&metric=packets&window=1h&ip=10.0.0.0/8',
  ];
  for (const p of paths) {
    const r = await get(p);
    expect(r.status, `${p}: ${r.text.slice(0, 300)}`).toBe(200);
  }
  for (const p of ['/api/v1/top?by=colour', '/api/v1/flows?limit=1e3', '/api/v1/top?window=forever']) expect((await get(p)).status, p).toBe(400);
}

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.port, '127.0.0.1');
  const client = createRedisClient(parseRedisUrl(server.url), { connectionName: 'good', maxBackoffMs: 100 });
  await connectClient(client, 5000);
  let agent: TestAgent | undefined;
  const sink = new RedisStreamSink({ node: 'good', client, url: server.url, maxLen: 100_000, bufferRecords: 10_000, interfaces: () => agent?.agent.interfaceAccounting.report() ?? [] });
  agent = await makeAgent({ node: 'good', sinks: [sink], clock: Date.now });
  good = { t: agent, sink };
});

afterAll(async () => {
  await app?.close();
  await relay?.close();
  await good?.sink.close();
  redis?.disconnect();
  await destroyRedis(server);
});

describe('relay with hostile data in Redis', () => {
  it('reads every healthy node, counts what it refuses, and never answers 500', async () => {
    // Before the relay starts (its replay reads these).
    await pollGood(5);
    await writeHostile();
    await redis.sadd(NODES_KEY, 'x', 'bad\nname', 'evil');
    await redis.set(flowsKey('x'), 'x'); // WRONGTYPE for a stream
    await redis.hset(interfacesKey('evil'), 'eth0', '{}', 'eth1', 'not json', 'eth2', JSON.stringify({ iface: 'eth2', ifindex: 4, hook: 'tc', rx: { packets: 1e308, bytes: 1, pps: 0, bps: 0 }, tx: { packets: 1, bytes: 1, pps: 0, bps: 0 } }));
    await redis.hset(interfacesKey('good'), 'bogus', JSON.stringify({ iface: 'bogus', ifindex: 99, hook: 'tc', rx: {}, tx: {} }));

    relay = new Relay({ target: parseRedisUrl(server.url), group: 'g', consumer: 'c', version: 'test', storeSize: 10_000, top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 }, discoverEveryMs: 200, log });
    await relay.start();
    app = await createApp({ services: relay.services(), version: 'test' });
    await until('relay ready', async () => (await get('/readyz')).status === 200);
    await everyRouteAnswers();

    // While it runs: more healthy traffic, more hostile entries, and a node whose stream turns into a string.
    await pollGood(5);
    await writeHostile();
    await redis.sadd(NODES_KEY, 'flip');
    await redis.xadd(flowsKey('flip'), '*', ...entry('flip'));
    await until('flip read', () => relay!.status().relay.nodes.some((n) => n.node === 'flip' && n.entries === 1));
    await redis.del(flowsKey('flip'));
    await redis.set(flowsKey('flip'), 'now a string');
    await pollGood(3);

    const rejected = countHostile();
    const twice = Object.fromEntries(Object.entries(rejected).map(([k, v]) => [k, 2 * v]));
    await until('relay read everything', () => {
      const s = relay!.status().relay;
      const g = s.nodes.find((n) => n.node === 'good');
      const e = s.nodes.find((n) => n.node === 'evil');
      const f = s.nodes.find((n) => n.node === 'flip');
      return g?.entries === 13 && e?.entries === 2 && e.rejected.count === twice.count && (f?.readErrors ?? 0) > 0;
    });
    await everyRouteAnswers();

    // The healthy node: exact.
    const flows = (await get('/api/v1/flows?node=good&limit=10000')).body;
    expect(flows.total).toBe(13);
    expect(flows.flows.reduce((a: number, r: { packets: number }) => a + r.packets, 0)).toBe(sent.packets);
    expect(flows.flows.reduce((a: number, r: { bytes: number }) => a + r.bytes, 0)).toBe(sent.bytes);
    await until('top buckets closed', async () => (await get('/api/v1/top?by=node&window=1h')).body.entries.find((e: any) => e.key.node === 'good')?.bytes === sent.bytes);
    const byNode = (await get('/api/v1/top?by=node&window=1h')).body;
    expect(byNode.entries.find((e: any) => e.key.node === 'good')).toMatchObject({ bytes: sent.bytes, packets: sent.packets });
    expect(byNode.entries.find((e: any) => e.key.node === 'evil')).toMatchObject({ bytes: 2 * 777, packets: 2 });
    expect(byNode.totalBytes).toBe(sent.bytes + 2 * 777 + 100); // + flip's one entry

    // Interfaces: the good node's real ones, nothing of the bad values.
    const ifaces = (await get('/api/v1/interfaces')).body as { node: string; iface: string }[];
    expect(ifaces.filter((i) => i.node === 'good').map((i) => i.iface)).toEqual(['eth0', 'eth1']);
    expect(ifaces.filter((i) => i.node === 'evil')).toEqual([]);

    // Status: per node and reason.
    const status = (await get('/api/v1/status')).body;
    expect(status.ready).toBe(true);
    const nodes = Object.fromEntries(status.relay.nodes.map((n: { node: string }) => [n.node, n]));
    expect(nodes.evil.rejected).toEqual({ ...twice, interfaces: 3 });
    expect(nodes.good.rejected).toEqual({ interfaces: 1 });
    expect(nodes.good.readErrors).toBe(0);
    expect(nodes.x).toMatchObject({ entries: 0, lastError: expect.stringMatching(/WRONGTYPE/) });
    expect(nodes.x.readErrors).toBeGreaterThan(0);
    expect(nodes.flip).toMatchObject({ entries: 1, lastError: expect.stringMatching(/WRONGTYPE/) });
    expect(status.relay.ignoredNodes).toBe(1);
    expect(status.relay.badEntries).toBe(2 * HOSTILE.length + 4);
    expect(status.relay.rejected.count).toBe(twice.count);

    // Metrics: the same counts.
    const metrics = (await get('/metrics')).text;
    expect(metrics).toContain('flowscope_relay_rejected_total{node="evil",reason="count"} 10');
    expect(metrics).toContain('flowscope_relay_rejected_total{node="good",reason="interfaces"} 1');
    expect(metrics).toMatch(/flowscope_relay_node_read_errors_total\{node="x"\} [1-9]/);
    expect(metrics).toMatch(/flowscope_relay_node_read_errors_total\{node="good"\} 0/);

    // Logged, rate-limited: one summary line in these few seconds, and a line per failing key.
    expect(logs.filter((l) => /entries refused/.test(l.msg)).length).toBeLessThanOrEqual(2);
    expect(logs.some((l) => /cannot read a node's key/.test(l.msg) && JSON.stringify(l.obj).includes('flowscope:{x}:flows'))).toBe(true);
  });

  it('a flowscope:nodes of the wrong type: the nodes already known are still read', async () => {
    await redis.del(NODES_KEY);
    await redis.set(NODES_KEY, 'oops');
    await pollGood(2);
    await until('still reading good', () => relay!.status().relay.nodes.find((n) => n.node === 'good')?.entries === 15);
    await until('reported', () => /WRONGTYPE/.test(relay!.status().relay.nodesKeyError ?? ''));
    await everyRouteAnswers();
    expect((await get('/readyz')).status).toBe(200);
    await redis.del(NODES_KEY);
    await redis.sadd(NODES_KEY, 'good', 'evil');
  });

  it('a fresh relay (a restart) starts and gets ready next to every bad key; the year-2999 entry does not come back', async () => {
    const fresh = new Relay({ target: parseRedisUrl(server.url), group: 'g2', consumer: 'c', version: 'test', storeSize: 10_000, top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 }, discoverEveryMs: 200 });
    await redis.sadd(NODES_KEY, 'x', 'flip');
    try {
      await fresh.start();
      await until('fresh relay ready', () => fresh.readiness().ready);
      await until('fresh relay replayed good', () => fresh.status().relay.nodes.find((n) => n.node === 'good')?.entries === 15);
      const s = fresh.status().relay;
      expect(s.nodes.find((n) => n.node === 'evil')?.rejected.time).toBe(2 * 3);
      const top = await fresh.view.top({ by: 'node', metric: 'bytes', windowMs: 3_600_000, k: 10, filter: {} });
      // Everything replayed lies in the past: the windows are not frozen in 2999.
      expect(top.to === null || Date.parse(top.to) <= Date.now()).toBe(true);
    } finally {
      await fresh.close();
    }
  });
});
