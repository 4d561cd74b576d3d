/**
 * Attribution through Redis: an agent's Redis sink writes cgroupId, cgroup,
 * workload, pod and container into its entries (only for flows of a local
 * socket), the relay decodes them, and /api/v1/flows on the relay returns and
 * filters them (cgroup= by path prefix, workload=) as an agent does. Two
 * nodes that use one cgroup id for different cgroups keep their own labels.
 * Entries with hostile attribution values are refused and counted, the rest
 * of the stream is read. Against a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { createApp } from '../../src/api/app.js';
import { AddressTable } from '../../src/flow/address-table.js';
import { RecordBatch, type CgroupLabeler } from '../../src/flow/record-batch.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import { connectClient, createRedisClient } from '../../src/redis/connection.js';
import { flowsKey } from '../../src/redis/keys.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { Relay } from '../../src/relay/relay.js';
import { destroyRedis, startRedis, type RedisServer } from '../redis/redis-server.js';

let server: RedisServer;
let redis: Redis;
const sinks: RedisStreamSink[] = [];
let relay: Relay | undefined;
let app: FastifyInstance | undefined;

const CART = 'c'.repeat(64);
/** node a: 100 = a pod's container, 200 = a systemd unit, 300 = gone before the agent read it */
const LABELS_A: CgroupLabeler = (id) =>
  ({
    100: { path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f0e.slice/cri-containerd-${CART}.scope`, workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: CART },
    200: { path: '/system.slice/nginx.service', workload: 'nginx.service' },
  })[id];
/** node b: its cgroup 100 is another cgroup than node a's */
const LABELS_B: CgroupLabeler = (id) => ({ 100: { path: '/system.slice/postgresql.service', workload: 'postgresql.service' } })[id];

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function sink(node: string, exportIntervalMs?: number): Promise<RedisStreamSink> {
  const client = createRedisClient(parseRedisUrl(server.url), { connectionName: `t-${node}`, maxBackoffMs: 100 });
  await connectClient(client, 5000);
  const s = new RedisStreamSink({ node, client, url: server.url, maxLen: 100_000, bufferRecords: 10_000, exportIntervalMs });
  sinks.push(s);
  return s;
}

/** One export: a flow per cgroup id given (0: no local socket), `bytes` each. */
function batch(node: string, labels: CgroupLabeler, cgroups: number[], endMs: number, bytes: number): RecordBatch {
  const addresses = new AddressTable();
  const b = new RecordBatch(cgroups.length, addresses, () => 'eth0', node);
  b.startMs = endMs - 1000;
  b.endMs = endMs;
  b.labels = labels;
  cgroups.forEach((cgroup, i) => {
    b.ifindex[i] = 2;
    b.meta[i] = packMeta('egress', 4, 6, 0, 0);
    b.ports[i] = packPorts(40000 + i, 443);
    b.srcId[i] = addresses.intern('10.0.0.1');
    b.dstId[i] = addresses.intern(`192.0.2.${1 + i}`);
    b.packets[i] = 1;
    b.bytes[i] = bytes;
    b.tcpFlags[i] = 16;
    b.firstSeen[i] = b.startMs;
    b.lastSeen[i] = endMs;
    b.cgroup[i] = cgroup;
  });
  b.count = cgroups.length;
  return b;
}

async function get(path: string): Promise<{ status: number; body: any }> {
  const r = await app!.inject({ method: 'GET', url: path });
  return { status: r.statusCode, body: JSON.parse(r.body) };
}

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.port, '127.0.0.1');
});

afterAll(async () => {
  await app?.close();
  await relay?.close();
  for (const s of sinks) await s.close();
  redis?.disconnect();
  await destroyRedis(server);
});

describe('attribution through Redis', () => {
  it('agent-side encode, relay-side decode: /api/v1/flows returns and filters cgroup, workload, pod, container', async () => {
    const a = await sink('attr-a');
    // node b sums its exports per 10 s interval (the default): the summed entries carry the attribution too
    const b = await sink('attr-b', 10_000);
    const now = Date.now();
    a.write(batch('attr-a', LABELS_A, [100, 200, 300, 0], now - 2000, 1000));
    a.write(batch('attr-a', LABELS_A, [100, 200, 300, 0], now - 1000, 1000));
    b.write(batch('attr-b', LABELS_B, [100, 0], now - 25_000, 7));
    b.write(batch('attr-b', LABELS_B, [100, 0], now - 24_000, 7));
    await Promise.all(sinks.map((s) => s.close())); // close writes b's open interval
    expect((await redis.xlen(flowsKey('attr-a'))) + (await redis.xlen(flowsKey('attr-b')))).toBe(8 + 2);

    // what the stream holds: the fields only where there is a cgroup
    const raw = (await redis.xrange(flowsKey('attr-a'), '-', '+')) as [string, string[]][];
    const fieldsOf = (list: string[]) => Object.fromEntries(list.flatMap((v, i) => (i % 2 ? [] : [[v, list[i + 1]]])));
    const byPort = new Map(raw.slice(0, 4).map(([, list]) => [fieldsOf(list).sport, fieldsOf(list)]));
    expect(byPort.get('40000')).toMatchObject({ cgroupId: '100', workload: 'shop/cart-7d9f', pod: 'shop/cart-7d9f', container: CART });
    expect(byPort.get('40001')).toMatchObject({ cgroupId: '200', cgroup: '/system.slice/nginx.service', workload: 'nginx.service' });
    expect(byPort.get('40001')).not.toHaveProperty('pod');
    expect(Object.keys(byPort.get('40002')!).filter((k) => /cgroup|workload|pod|container/.test(k))).toEqual(['cgroupId']);
    expect(Object.keys(byPort.get('40003')!).filter((k) => /cgroup|workload|pod|container/.test(k))).toEqual([]);

    relay = new Relay({ target: parseRedisUrl(server.url), group: 'g', consumer: 'c', version: 'test', storeSize: 1000, top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 }, discoverEveryMs: 200 });
    await relay.start();
    app = await createApp({ services: relay.services(), version: 'test' });
    await until('relay read both nodes', () => relay!.status().relay.entries === 10);

    const flows = (await get('/api/v1/flows?node=attr-a&limit=100')).body.flows as Record<string, unknown>[];
    expect(flows).toHaveLength(8);
    for (const f of flows) {
      if (f.sport === 40000) expect(f).toMatchObject({ cgroupId: 100, cgroup: LABELS_A(100)!.path, workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: CART });
      if (f.sport === 40001) {
        expect(f).toMatchObject({ cgroupId: 200, cgroup: '/system.slice/nginx.service', workload: 'nginx.service' });
        expect(f).not.toHaveProperty('pod');
        expect(f).not.toHaveProperty('container');
      }
      // an id the agent could not name: the id, cgroup null, as on the agent
      if (f.sport === 40002) expect(f).toMatchObject({ cgroupId: 300, cgroup: null });
      if (f.sport === 40002) expect(f).not.toHaveProperty('workload');
      if (f.sport === 40003) for (const k of ['cgroupId', 'cgroup', 'workload', 'pod', 'container']) expect(f).not.toHaveProperty(k);
    }
    const bFlows = (await get('/api/v1/flows?node=attr-b&limit=100')).body.flows as Record<string, unknown>[];
    expect(bFlows).toHaveLength(2);
    // node b's cgroup 100 is its own postgresql, not node a's pod; the interval's sum is exact
    expect(bFlows.find((f) => f.cgroupId === 100)).toMatchObject({ cgroup: '/system.slice/postgresql.service', workload: 'postgresql.service', bytes: 14, packets: 2 });

    // filters: cgroup= by whole path components, workload= exactly, over the fleet
    const q = async (query: string) => ((await get(`/api/v1/flows?limit=100&${query}`)).body.flows as { node: string; sport: number }[]).map((f) => `${f.node}:${f.sport}`).sort();
    expect(await q('cgroup=/system.slice')).toEqual(['attr-a:40001', 'attr-a:40001', 'attr-b:40000']);
    expect(await q('cgroup=/system.slice/nginx.service')).toEqual(['attr-a:40001', 'attr-a:40001']);
    expect(await q('cgroup=/system.sl')).toEqual([]);
    expect(await q('cgroup=/kubepods.slice')).toEqual(['attr-a:40000', 'attr-a:40000']);
    expect(await q('cgroup=/')).toHaveLength(5); // every flow with a known cgroup path
    expect(await q('workload=shop/cart-7d9f')).toEqual(['attr-a:40000', 'attr-a:40000']);
    expect(await q(`workload=${encodeURIComponent('postgresql.service')}&node=attr-b`)).toEqual(['attr-b:40000']);
    expect((await get('/api/v1/flows?cgroup=relative')).status).toBe(400);
  });

  it('hostile attribution values: refused and counted, the node\'s other entries read', async () => {
    const now = Date.now();
    const entry = (extra: string[]): string[] => [
      'node', 'attr-evil', 'iface', 'eth0', 'ifindex', '2', 'direction', 'ingress', 'family', '4', 'src', '192.0.2.9', 'dst', '10.0.0.1', 'proto', 'udp',
      'sport', '53', 'dport', '5353', 'packets', '1', 'bytes', '100', 'tcpFlags', '', 'start', new Date(now - 1000).toISOString(), 'end', new Date(now).toISOString(),
      'firstSeen', new Date(now - 1000).toISOString(), 'lastSeen', new Date(now).toISOString(), ...extra,
    ];
    const hostile: [string, string[]][] = [
      ['attribution', ['cgroupId', '-5']],
      ['attribution', ['cgroupId', '18446744073709551615', 'cgroup', '/a', 'workload', 'a']],
      ['attribution', ['cgroup', '/no/id', 'workload', 'x']],
      ['attribution', ['cgroupId', '9', 'cgroup', 'no-slash', 'workload', 'x']],
      ['attribution', ['cgroupId', '9', 'cgroup', '/a', 'workload', 'x', 'pod', 'just-a-name']],
      ['attribution', ['cgroupId', '9', 'cgroup', '/a', 'workload', 'x', 'container', '<script>']],
      ['attribution', ['cgroupId', '9', 'workload', 'x']],
      ['oversized', ['cgroupId', '9', 'cgroup', `/${'a'.repeat(10_000)}`, 'workload', 'x']],
      ['oversized', ['cgroupId', '9', 'cgroup', '/a', 'workload', 'w'.repeat(100_000)]],
      ['duplicate_field', ['cgroupId', '9', 'cgroupId', '10']],
      ['unknown_field', ['cgroupPath', '/a']],
    ];
    await redis.sadd('flowscope:nodes', 'attr-evil');
    for (const [, extra] of hostile) await redis.xadd(flowsKey('attr-evil'), '*', ...entry(extra));
    await redis.xadd(flowsKey('attr-evil'), '*', ...entry(['cgroupId', '9', 'cgroup', '/ok.slice/x.service', 'workload', 'x.service']));
    await until('evil read', () => relay!.status().relay.nodes.some((n) => n.node === 'attr-evil' && n.entries === 1 && Object.values(n.rejected).reduce((a, b) => a + b, 0) === hostile.length));
    const want: Record<string, number> = {};
    for (const [reason] of hostile) want[reason] = (want[reason] ?? 0) + 1;
    expect(relay!.status().relay.nodes.find((n) => n.node === 'attr-evil')!.rejected).toEqual(want);
    const flows = (await get('/api/v1/flows?node=attr-evil')).body.flows;
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ cgroupId: 9, cgroup: '/ok.slice/x.service', workload: 'x.service', bytes: 100 });
    const metrics = (await app!.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain(`flowscope_relay_rejected_total{node="attr-evil",reason="attribution"} ${want.attribution}`);
  });
});
