/**
 * Real agents on real veth pairs writing to real Redis: exact stream
 * contents read back with redis-cli, a Redis outage during traffic with
 * nothing lost, drops counted with a tiny buffer, a fleet of three agents
 * behind a relay (killed with -9 and restarted mid-stream), and a three-master
 * Redis Cluster.
 *
 * The outage lasts FLOWSCOPE_TEST_REDIS_OUTAGE_S seconds (default 6, to keep
 * CI short; the 30 s: FLOWSCOPE_TEST_REDIS_OUTAGE_S=30).
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { TRAFFIC, startHostSink, stop } from '../helpers/processes.js';
import { destroyRedis, startCluster, startRedis, type RedisServer } from './redis-server.js';
import { getJson, parseRawEntries, readStream, startDaemon, sumWhere, until, type Daemon } from './agents.js';

const skip = skipKernelTests('redis streams with real traffic');
const OUTAGE_MS = Number(process.env.FLOWSCOPE_TEST_REDIS_OUTAGE_S ?? 6) * 1000;
const ETH = 14, IP4 = 20, UDP = 8;
const SINK_PORT = 6310;
const frame = (payload: number) => ETH + IP4 + UDP + payload;

/** Sends COUNT datagrams of PAYLOAD bytes from the pair's namespace to the host side. */
function sendUdp(pair: VethPair, count: number, payload: number, sport: number): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', pair.ns, process.execPath, TRAFFIC, 'udp', pair.hostV4, String(SINK_PORT), String(count), String(payload), String(sport)], (err, stdout) => {
      if (err) reject(err);
      else resolve((JSON.parse(stdout) as { sent: number }).sent);
    });
  });
}

/** Keeps sending bursts of `count` datagrams until `ms` have passed; resolves with the total sent. */
async function sendFor(pair: VethPair, ms: number, count: number, payload: number, sport: number): Promise<number> {
  const end = Date.now() + ms;
  let sent = 0;
  while (Date.now() < end) {
    sent += await sendUdp(pair, count, payload, sport);
    await new Promise((r) => setTimeout(r, 100));
  }
  return sent;
}

const agentArgs = (pair: VethPair, node: string, url: string, extra: string[] = []) => [
  'run', '--iface', pair.hostIf, '--node', node, '--redis', url, '--poll-interval', '200ms', '--redis-export-interval', '200ms', '--top-bucket', '1s', ...extra,
];

const flowOf = (pair: VethPair, sport: number) => ({ direction: 'ingress', src: pair.peerV4, dst: pair.hostV4, proto: 'udp', sport: String(sport), dport: String(SINK_PORT) });

interface TopAnswer {
  totalBytes: number;
  totalPackets: number;
  entries: { key: Record<string, string | number>; bytes: number; packets: number }[];
}

describe.skipIf(skip)('Redis streams: one Redis, real agents, a relay', () => {
  let redis: RedisServer;
  /** the tiny-buffer agent writes elsewhere, so that its (expected) drops stay out of the fleet's totals */
  let redisTiny: RedisServer;
  const pairs: VethPair[] = [];
  const agents: Daemon[] = [];
  let tiny: Daemon;
  let relay: Daemon | undefined;
  let hostSink: Awaited<ReturnType<typeof startHostSink>> | undefined;
  const cli = () => ['-p', String(redis.port)];

  beforeAll(async () => {
    try {
      redis = await startRedis();
      redisTiny = await startRedis();
      hostSink = await startHostSink('udp-sink', SINK_PORT, 600);
      for (let i = 0; i < 4; i++) pairs.push(createVethPair(20 + i));
      for (let i = 0; i < 3; i++) agents.push(await startDaemon(agentArgs(pairs[i], `fleet-${i}`, redis.url)));
      tiny = await startDaemon(agentArgs(pairs[3], 'tiny', redisTiny.url, ['--redis-buffer', '3']));
      relay = await startDaemon(['relay', '--redis', redis.url, '--consumer', 'relay-a', '--top-bucket', '1s']);
    } catch (err) {
      await cleanup();
      throw err;
    }
  });

  async function cleanup(): Promise<void> {
    await relay?.kill9();
    for (const a of [...agents, tiny]) await a?.kill9();
    stop(hostSink);
    for (const p of pairs) p.destroy();
    await destroyRedis(redis);
    await destroyRedis(redisTiny);
  }
  afterAll(cleanup);

  it('a flow\'s stream entries add up to the traffic sent, exactly; fields per the contract; read with redis-cli', async () => {
    const sent = await sendUdp(pairs[0], 300, 200, 42000);
    expect(sent).toBe(300);
    const key = 'flowscope:{fleet-0}:flows';
    const want = { packets: 300, bytes: 300 * frame(200) };
    await until('entries in the stream', async () => {
      const s = sumWhere(readStream(cli(), key), flowOf(pairs[0], 42000));
      return s.packets === want.packets && s;
    });
    await new Promise((r) => setTimeout(r, 600)); // later polls add nothing to a finished flow
    const entries = readStream(cli(), key);
    const flow = sumWhere(entries, flowOf(pairs[0], 42000));
    expect({ packets: flow.packets, bytes: flow.bytes }).toEqual(want);
    for (const e of entries) {
      expect(e.f).toMatchObject({ node: 'fleet-0', iface: pairs[0].hostIf });
      expect(['ingress', 'egress']).toContain(e.f.direction);
      expect(['4', '6']).toContain(e.f.family);
      for (const k of ['ifindex', 'sport', 'dport', 'packets', 'bytes']) expect(e.f[k]).toMatch(/^\d+$/);
      for (const k of ['start', 'end', 'firstSeen', 'lastSeen']) expect(new Date(e.f[k]).toISOString()).toBe(e.f[k]);
      expect(e.f.tcpFlags).toMatch(/^([A-Z]+(,[A-Z]+)*)?$/);
      expect(Date.parse(e.f.start)).toBeLessThanOrEqual(Date.parse(e.f.end));
    }
    expect(redis.cli('SMEMBERS', 'flowscope:nodes').split('\n')).toEqual(expect.arrayContaining(['fleet-0', 'fleet-1', 'fleet-2']));
    // An outside consumer group reads the same entries.
    redis.cli('XGROUP', 'CREATE', key, 'outside', '0');
    const viaGroup = readGroup(redis, key);
    expect(sumWhere(viaGroup, flowOf(pairs[0], 42000))).toMatchObject(want);
    const ifaces = JSON.parse(redis.cli('HGET', 'flowscope:{fleet-0}:interfaces', pairs[0].hostIf));
    expect(ifaces).toMatchObject({ node: 'fleet-0', iface: pairs[0].hostIf, hook: 'tc' });
    expect(ifaces.rx.packets).toBeGreaterThanOrEqual(300);
  });

  it(`loses nothing when Redis stops for ${OUTAGE_MS / 1000} s during traffic; a tiny buffer counts its drops`, async () => {
    const key = 'flowscope:{fleet-1}:flows';
    let sent = await sendUdp(pairs[1], 100, 100, 43000);
    await Promise.all([redis.stop(), redisTiny.stop()]);
    const during = sendFor(pairs[1], OUTAGE_MS, 50, 100, 43000);
    const tinyTraffic = new Promise<void>((resolve, reject) => {
      execFile('ip', ['netns', 'exec', pairs[3].ns, process.execPath, TRAFFIC, 'udp-many', pairs[3].hostV4, String(SINK_PORT), '20', '50'], (err) => (err ? reject(err) : resolve()));
    });
    await tinyTraffic;
    sent += await during;
    // The agents kept counting and serving HTTP throughout.
    const degraded = await getJson(`${agents[1].api}/api/v1/status`);
    const sink = degraded.sinks.find((s: { name: string }) => s.name === 'redis');
    expect(sink).toMatchObject({ connected: false, dropped: 0 });
    expect(sink.pending).toBeGreaterThan(0);
    const tinyStatus = (await getJson(`${tiny.api}/api/v1/status`)).sinks.find((s: { name: string }) => s.name === 'redis');
    expect(tinyStatus.dropped).toBeGreaterThan(0);
    expect(tinyStatus.pending).toBeLessThanOrEqual(3);
    expect(await (await fetch(`${tiny.api}/metrics`)).text()).toMatch(/flowscope_records_dropped_total\{sink="redis"\} [1-9]/);
    expect(tiny.log()).toMatch(/buffer full, records dropped/);

    await Promise.all([redis.restart(), redisTiny.restart()]);
    sent += await sendUdp(pairs[1], 100, 100, 43000);
    const want = { packets: sent, bytes: sent * frame(100) };
    await until('backlog written', async () => {
      const s = sumWhere(readStream(cli(), key), flowOf(pairs[1], 43000));
      return s.packets === want.packets && s;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 600));
    const flow = sumWhere(readStream(cli(), key), flowOf(pairs[1], 43000));
    expect({ packets: flow.packets, bytes: flow.bytes }).toEqual(want);
    const after = (await getJson(`${agents[1].api}/api/v1/status`)).sinks.find((s: { name: string }) => s.name === 'redis');
    expect(after).toMatchObject({ connected: true, dropped: 0, pending: 0 });
  });

  it('the relay\'s totals and top talkers equal the sum of the agents\', across a kill -9 and restart of the relay', async () => {
    // Traffic on all three nodes while the relay is killed and restarted.
    const traffic = Promise.all(pairs.slice(0, 3).map((p, i) => sendFor(p, 3000, 40 * (i + 1), 60 * (i + 1), 44000 + i)));
    await new Promise((r) => setTimeout(r, 1200));
    await relay!.kill9();
    await new Promise((r) => setTimeout(r, 500));
    relay = await startDaemon(['relay', '--redis', redis.url, '--consumer', 'relay-a', '--top-bucket', '1s']);
    const sent = await traffic;

    // Each node's stream entries are all in the relay, once.
    await until('relay caught up', async () => {
      const status = await getJson(`${relay!.api}/api/v1/status`);
      const ok = [0, 1, 2].every((i) => {
        const n = status.relay.nodes.find((x: { node: string }) => x.node === `fleet-${i}`);
        return n && n.entries === Number(redis.cli('XLEN', `flowscope:{fleet-${i}}:flows`));
      });
      return ok && status;
    }, 30_000);
    // The agents export their last poll a little after the traffic ends, so
    // "caught up with XLEN" can come before the last entries exist: wait until
    // every packet is there, then check that it stays so (nothing counted twice).
    const relayPackets = async (i: number) => {
      const mine = await getJson(`${relay!.api}/api/v1/flows?node=fleet-${i}&sport=${44000 + i}&limit=10000`);
      return mine.flows.reduce((a: number, r: { packets: number }) => a + r.packets, 0) as number;
    };
    await until('relay has every packet', async () => {
      for (let i = 0; i < 3; i++) if ((await relayPackets(i)) !== sent[i]) return false;
      return true;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 3; i++) expect(await relayPackets(i)).toBe(sent[i]);

    // Top talkers: relay == sum of agents (retried while the last buckets close).
    const agentTops = async (by: string) => Promise.all(agents.map((a) => getJson<TopAnswer>(`${a.api}/api/v1/top?by=${by}&window=10m&k=100`)));
    await until('relay top == agents top', async () => {
      const [relayTop, parts] = await Promise.all([getJson<TopAnswer>(`${relay!.api}/api/v1/top?by=src&window=10m&k=100`), agentTops('src')]);
      const merged = new Map<string, number>();
      for (const p of parts) for (const e of p.entries) merged.set(String(e.key.src), (merged.get(String(e.key.src)) ?? 0) + e.bytes);
      const relayMap = new Map(relayTop.entries.map((e) => [String(e.key.src), e.bytes]));
      const totalBytes = parts.reduce((a, p) => a + p.totalBytes, 0);
      const totalPackets = parts.reduce((a, p) => a + p.totalPackets, 0);
      expect(relayTop.totalBytes).toBe(totalBytes);
      expect(relayTop.totalPackets).toBe(totalPackets);
      expect(relayMap).toEqual(merged);
      return true;
    }, 20_000, 500);
    const byNode = await getJson<TopAnswer>(`${relay!.api}/api/v1/top?by=node&window=10m&k=10`);
    const parts = await agentTops('src');
    for (let i = 0; i < 3; i++) {
      expect(byNode.entries.find((e) => e.key.node === `fleet-${i}`)?.bytes).toBe(parts[i].totalBytes);
    }
    const ifaces = await getJson<{ node: string; iface: string }[]>(`${relay!.api}/api/v1/interfaces`);
    expect(ifaces.map((i) => i.node)).toEqual(expect.arrayContaining(['fleet-0', 'fleet-1', 'fleet-2']));
    const status = await getJson(`${relay!.api}/api/v1/status`);
    expect(status.relay.recovered + status.relay.replayed).toBeGreaterThan(0);
    expect(status.relay.badEntries).toBe(0);
    // Nothing left pending in the group.
    const pending = redis.cli('XPENDING', 'flowscope:{fleet-0}:flows', 'flowscope-relay').split('\n')[0];
    expect(pending).toBe('0');
  });
});

function readGroup(redis: RedisServer, key: string) {
  const text = redis.cli('--raw', 'XREADGROUP', 'GROUP', 'outside', 'c1', 'COUNT', '1000000', 'STREAMS', key, '>');
  // parseRawEntries skips the stream key line
  return parseRawEntries(text);
}

describe.skipIf(skip)('Redis streams on a three-master Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;
  const pairs: VethPair[] = [];
  const agents: Daemon[] = [];
  let relay: Daemon | undefined;
  let hostSink: Awaited<ReturnType<typeof startHostSink>> | undefined;

  beforeAll(async () => {
    try {
      cluster = await startCluster();
      hostSink = await startHostSink('udp-sink', SINK_PORT, 600);
      for (let i = 0; i < 2; i++) pairs.push(createVethPair(30 + i));
      for (let i = 0; i < 2; i++) agents.push(await startDaemon(agentArgs(pairs[i], `cl-${i}`, cluster.url)));
      relay = await startDaemon(['relay', '--redis', cluster.url, '--top-bucket', '1s']);
    } catch (err) {
      await cleanup();
      throw err;
    }
  });
  async function cleanup(): Promise<void> {
    await relay?.kill9();
    for (const a of agents) await a.kill9();
    stop(hostSink);
    for (const p of pairs) p.destroy();
    for (const s of cluster?.servers ?? []) await destroyRedis(s);
  }
  afterAll(cleanup);

  it('agents write exact streams to the cluster and the relay serves them', async () => {
    const sent = await Promise.all(pairs.map((p, i) => sendUdp(p, 100 * (i + 1), 80, 45000 + i)));
    const port = cluster!.servers[0].port;
    for (let i = 0; i < 2; i++) {
      const want = { packets: sent[i], bytes: sent[i] * frame(80) };
      const s = await until(`cl-${i} stream`, async () => {
        const got = sumWhere(readStream(['-c', '-p', String(port)], `flowscope:{cl-${i}}:flows`), flowOf(pairs[i], 45000 + i));
        return got.packets === want.packets && got;
      });
      expect({ packets: s.packets, bytes: s.bytes }).toEqual(want);
    }
    await until('relay top by node == agents', async () => {
      const byNode = await getJson<TopAnswer>(`${relay!.api}/api/v1/top?by=node&window=10m`);
      for (let i = 0; i < 2; i++) {
        const own = await getJson<TopAnswer>(`${agents[i].api}/api/v1/top?by=src&window=10m`);
        expect(byNode.entries.find((e) => e.key.node === `cl-${i}`)?.bytes).toBe(own.totalBytes);
      }
      return true;
    }, 20_000, 500);
    const flows = await getJson(`${relay!.api}/api/v1/flows?node=cl-1&sport=45001&limit=1000`);
    expect(flows.flows.reduce((a: number, r: { packets: number }) => a + r.packets, 0)).toBe(sent[1]);
  });
});
