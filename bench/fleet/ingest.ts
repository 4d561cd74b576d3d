/**
 * The relay's consume path alone (issue 13, "relay ingest throughput"): a
 * fleet's streams are written first by simulated agents (sim.ts); then a
 * consumer group at the start of every stream hands everything to a relay
 * through XREADGROUP (read, check, decode, record stores, top-talkers
 * windows, XACK), as in steady state. Reported: entries/s of wall time and
 * per CPU-second of the relay's process (the relay runs in this process,
 * alone once the writing is done), next to a bare ioredis XREADGROUP + XACK
 * loop over the same streams (no checks, no stores) in the same run.
 *
 *   node --import tsx bench/fleet/ingest.ts [nodes] [flows-per-node] [exports]
 *   FLEET_INGEST_PROFILE=FILE.cpuprofile: a CPU profile of the relay's run alone
 *   FLEET_INGEST_PARTITIONS=N: the relay with --partitions N (alone: it owns them all)
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Redis } from 'ioredis';
import { flowsKey } from '../../src/redis/keys.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { Relay } from '../../src/relay/relay.js';
import { startBenchRedis } from './redis-server.js';
import { exportAll, startAgents, stopAgents } from './sim.js';

const NODES = Number(process.argv[2] ?? 200);
const FLOWS = Number(process.argv[3] ?? 2000);
const EXPORTS = Number(process.argv[4] ?? 1);

export interface IngestRun {
  entries: number;
  seconds: number;
  cpuSeconds: number;
}

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * A relay reading every stream through group `group` (created at 0 by the
 * caller) until it holds `total` entries; with `partitions`, a scaled-out
 * relay alone in its fleet (its groups are `group:bench`, created by the caller).
 */
export async function relayIngest(url: string, group: string, total: number, partitions = 0): Promise<IngestRun> {
  const scaleOut = partitions > 0 ? { partitions, peerListen: { host: '127.0.0.1', port: 0 }, leaseMs: 3000 } : undefined;
  const relay = new Relay({ target: parseRedisUrl(url), group, consumer: 'bench', version: 'bench', storeSize: 65_536, discoverEveryMs: 60_000, scaleOut });
  const t0 = performance.now();
  const c0 = cpuNow();
  await relay.start();
  const held = () => (relay.partitions ? relay.partitions.entries : relay.view.entries);
  // the consumers' own counter (status() would build every node's status at each check)
  const refused = () => relay.consumers().reduce((a, c) => a + c.badEntries, 0);
  while (held() < total && (held() + refused() < total || refused() === 0)) await new Promise((r) => setTimeout(r, 5));
  if (refused() > 0) throw new Error(`the relay refused ${refused()} entries: ${JSON.stringify(relay.status().relay.rejected)}`);
  const run = { entries: held(), seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuNow() - c0 };
  await relay.close();
  return run;
}

/** The floor: ioredis XREADGROUP COUNT 1000 + XACK per stream, entries counted, nothing else. */
export async function bareIngest(url: string, group: string, nodes: string[], total: number): Promise<IngestRun> {
  const redis = new Redis(url);
  const t0 = performance.now();
  const c0 = cpuNow();
  let entries = 0;
  while (entries < total) {
    for (const node of nodes) {
      const key = flowsKey(node);
      const reply = (await redis.xreadgroup('GROUP', group, 'bare', 'COUNT', 1000, 'STREAMS', key, '>')) as [string, [string, string[]][]][] | null;
      const list = reply?.[0]?.[1] ?? [];
      if (list.length === 0) continue;
      entries += list.length;
      await redis.xack(key, group, ...list.map((e) => e[0]));
    }
  }
  const run = { entries, seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuNow() - c0 };
  redis.disconnect();
  return run;
}

/** Consumer groups at the start of every node's stream: they deliver everything written so far. */
export async function createGroups(url: string, nodes: string[], groups: string[]): Promise<void> {
  const redis = new Redis(url);
  const p = redis.pipeline();
  for (const g of groups) for (const n of nodes) p.xgroup('CREATE', flowsKey(n), g, '0');
  await p.exec();
  redis.disconnect();
}

async function main(): Promise<void> {
  const redis = await startBenchRedis();
  try {
    const { agents, client } = await startAgents(redis.url, 0, NODES);
    const now = Date.now();
    let total = 0;
    for (let e = 0; e < EXPORTS; e++) total += await exportAll(agents, FLOWS, now - (EXPORTS - e + 1) * 10_000, now - (EXPORTS - e) * 10_000, e);
    await stopAgents(agents, client);
    console.log(`written: ${total} entries of ${NODES} nodes in ${((Date.now() - now) / 1000).toFixed(1)} s`);
    const nodes = agents.map((a) => a.node);
    const partitions = Number(process.env.FLEET_INGEST_PARTITIONS ?? 0);
    await createGroups(redis.url, nodes, [partitions ? 'relay:bench' : 'relay', 'bare']);
    const line = (name: string, r: IngestRun) => `${name}: ${r.entries} entries in ${r.seconds.toFixed(2)} s = ${Math.round(r.entries / r.seconds)} entries/s, ${Math.round(r.entries / r.cpuSeconds)} per CPU-second`;
    // FLEET_INGEST_ONLY=relay: the relay alone (for a profile of its consume path)
    if (process.env.FLEET_INGEST_ONLY !== 'relay') console.log(line('bare ioredis XREADGROUP+XACK', await bareIngest(redis.url, 'bare', nodes, total)));
    const profile = process.env.FLEET_INGEST_PROFILE;
    const session = profile ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const redisCpu = () => {
      const info = redis.cli('INFO', 'CPU');
      return Number(/used_cpu_user:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]);
    };
    const r0 = redisCpu();
    console.log(line(partitions ? `relay --partitions ${partitions}` : 'relay', await relayIngest(redis.url, 'relay', total, partitions)), `(redis-server: ${(redisCpu() - r0).toFixed(2)} CPU-seconds)`);
    if (session) {
      const { profile: p } = await session.post('Profiler.stop');
      writeFileSync(profile!, JSON.stringify(p));
      session.disconnect();
    }
  } finally {
    redis.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
