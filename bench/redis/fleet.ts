/**
 * Fleet ingest with one and with two scaled-out relays (issue 13), same
 * machine, same run: NODES streams of ENTRIES entries each are written to a
 * fresh redis-server, then K relay processes (--partitions 16) start and
 * read them; the time from their start until the relays together hold every
 * entry gives the fleet's ingest rate. A simplified stand-in for the issue's
 * bench/fleet (no agents writing during the run, no query latencies).
 *
 *   node --import tsx bench/redis/fleet.ts [nodes] [entries-per-node]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { flowsKey, NODES_KEY } from '../../src/redis/keys.js';
import { machineLine, writeSection } from '../results.js';

const NODES = Number(process.argv[2] ?? 200);
const PER_NODE = Number(process.argv[3] ?? 1500);
const PARTITIONS = 16;

async function startRedis(): Promise<{ port: number; stop: () => void }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const dir = mkdtempSync(join(tmpdir(), 'flowscope-fleet-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    try {
      if (execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('PONG')) break;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, stop: () => (child.kill('SIGKILL'), rmSync(dir, { recursive: true, force: true })) };
}

async function populate(port: number): Promise<number> {
  const redis = new Redis(port, '127.0.0.1');
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  let total = 0;
  for (let n = 0; n < NODES; n++) {
    const node = `fleet-${n}`;
    await redis.sadd(NODES_KEY, node);
    for (let from = 0; from < PER_NODE; from += 500) {
      const p = redis.pipeline();
      for (let e = from; e < Math.min(PER_NODE, from + 500); e++) {
        const end = now - 600_000 + Math.floor((e / PER_NODE) * 590_000);
        p.xadd(flowsKey(node), '*', 'node', node, 'iface', 'eth0', 'ifindex', '2', 'direction', 'ingress', 'family', '4', 'src', `10.${n & 255}.${(e >> 8) & 255}.${e & 255}`, 'dst', '10.255.0.1',
          'proto', 'udp', 'sport', String(1024 + (e % 2000)), 'dport', '53', 'packets', '3', 'bytes', '300', 'tcpFlags', '',
          'start', iso(end - 10_000), 'end', iso(end), 'firstSeen', iso(end - 9000), 'lastSeen', iso(end - 1000));
        total++;
      }
      await p.exec();
    }
  }
  redis.disconnect();
  return total;
}

async function run(port: number, relays: number, total: number): Promise<{ seconds: number; rssMiB: number[] }> {
  const state = new Map<string, { entries: number; caughtUp: boolean; held: number; owns: number; rss: number }>();
  const children: ChildProcess[] = [];
  const t0 = performance.now();
  for (let k = 0; k < relays; k++) {
    const id = `bench-${relays}-${k}`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/redis/fleet-relay.ts', String(port), id, String(PARTITIONS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        state.set(id, JSON.parse(l));
      } catch {
        /* log line */
      }
    });
  }
  try {
    for (;;) {
      const all = [...state.values()];
      if (all.length === relays && all.every((s) => s.caughtUp && s.held === s.owns) && all.reduce((a, s) => a + s.entries, 0) === total) break;
      if (performance.now() - t0 > 600_000) throw new Error(`not read within 10 min: ${JSON.stringify([...state])}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { seconds: (performance.now() - t0) / 1000, rssMiB: [...state.values()].map((s) => s.rss / 2 ** 20) };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    // let the leases of the killed relays lapse before the next run
    await new Promise((r) => setTimeout(r, 3500));
  }
}

async function main(): Promise<void> {
  const load = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const redis = await startRedis();
  try {
    const total = await populate(redis.port);
    const one = await run(redis.port, 1, total);
    const two = await run(redis.port, 2, total);
    const r = (x: number) => Math.round(x).toLocaleString('en-US');
    const md = `## fleet

\`node --import tsx bench/redis/fleet.ts ${NODES} ${PER_NODE}\` — ${machineLine()}, on loopback; load before the run: \`${load}\`. ${r(NODES)} node streams × ${r(PER_NODE)} entries (${r(total)}) in a fresh redis-server; then relay processes with \`--partitions ${PARTITIONS}\` start and read them (replay within the horizon); time from their start until together they hold every entry once (process start, Redis reads, checks, stores, top-talkers windows).

| relays | time | fleet ingest | per relay | resident per relay |
|---:|---:|---:|---:|---:|
| 1 | ${one.seconds.toFixed(1)} s | ${r(total / one.seconds)} entries/s | ${r(total / one.seconds)} entries/s | ${one.rssMiB.map((x) => `${Math.round(x)} MiB`).join(', ')} |
| 2 | ${two.seconds.toFixed(1)} s | ${r(total / two.seconds)} entries/s | ${r(total / two.seconds / 2)} entries/s | ${two.rssMiB.map((x) => `${Math.round(x)} MiB`).join(', ')} |

The machine has 2 cores, shared by redis-server, the relays and other work: two relays cannot show a 2× here. Not measured: agents writing during the run, lag, \`/api/v1/top\` and \`/api/v1/flows\` p99.
`;
    writeSection('fleet', md);
    process.stdout.write(md);
  } finally {
    redis.stop();
  }
}

await main();
