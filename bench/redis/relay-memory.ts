/**
 * Relay memory for idle nodes (issue 13: memory that follows the data, not
 * the node count): N nodes registered in flowscope:nodes, each with one
 * entry in its stream; a relay with the shipped defaults (resolveRelayConfig)
 * reads them all; then its resident memory (after a GC) is printed as JSON,
 * next to the same process before the relay started.
 *
 *   node --expose-gc --import tsx bench/redis/relay-memory.ts --port P [--nodes 1000] [--populate] [--json]
 *
 * With --populate it writes the N streams first (XADD of one valid entry
 * each, SADD of the names). test/relay/relay-memory.test.ts runs it against
 * its own redis-server; run alone it starts and stops one.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { resolveRelayConfig } from '../../src/config/relay.js';
import { flowsKey, NODES_KEY } from '../../src/redis/keys.js';
import { Relay } from '../../src/relay/relay.js';

const { values } = parseArgs({ options: { port: { type: 'string' }, nodes: { type: 'string', default: '1000' }, populate: { type: 'boolean', default: false } } });
const NODES = Number(values.nodes);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

async function populate(port: number): Promise<void> {
  const redis = new Redis(port, '127.0.0.1');
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  for (let from = 0; from < NODES; from += 200) {
    const p = redis.pipeline();
    for (let n = from; n < Math.min(NODES, from + 200); n++) {
      const node = `idle-${n}`;
      p.sadd(NODES_KEY, node);
      p.xadd(flowsKey(node), `${now - 5000}-0`,
        'node', node, 'iface', 'eth0', 'ifindex', '2', 'direction', 'ingress', 'family', '4', 'src', `10.${n >> 8}.${n & 255}.1`, 'dst', '10.255.0.1',
        'proto', 'udp', 'sport', '5353', 'dport', '53', 'packets', '1', 'bytes', '100', 'tcpFlags', '',
        'start', iso(now - 6000), 'end', iso(now - 5000), 'firstSeen', iso(now - 5500), 'lastSeen', iso(now - 5500));
    }
    await p.exec();
  }
  redis.disconnect();
}

function rssMiB(): { rss: number; heap: number; external: number } {
  gc!();
  const m = process.memoryUsage();
  return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20, external: (m.external + m.arrayBuffers) / 2 ** 20 };
}

async function measure(port: number): Promise<Record<string, number>> {
  const config = resolveRelayConfig({ flags: { redis: `redis://127.0.0.1:${port}`, consumer: 'mem' }, env: {} });
  const before = rssMiB();
  const relay = new Relay({
    target: config.target, group: config.group, consumer: config.consumer, version: 'bench', storeSize: config.storeSize,
    top: { bucketMs: config.topBucketMs, horizonMs: config.topHorizonMs, capacity: config.topCapacity }, claimIdleMs: config.claimIdleMs,
  });
  await relay.start();
  const deadline = Date.now() + 120_000;
  while (!(relay.consumer.caughtUp && relay.view.entries >= NODES)) {
    if (Date.now() > deadline) throw new Error(`relay read ${relay.view.entries} of ${NODES} entries`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // a few rounds of reading idle streams
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssMiB();
  const nodes = relay.view.nodes.size;
  const entries = relay.view.entries;
  await relay.close();
  return {
    nodes,
    entries,
    rssBeforeMiB: before.rss,
    rssMiB: after.rss,
    heapMiB: after.heap,
    externalMiB: after.external,
    perNodeKiB: ((after.rss - before.rss) * 1024) / Math.max(1, nodes),
  };
}

async function main(): Promise<void> {
  let port = values.port ? Number(values.port) : 0;
  let stop = (): void => undefined;
  if (!port) {
    port = 20_000 + Math.floor(Math.random() * 20_000);
    const dir = mkdtempSync(join(tmpdir(), 'flowscope-relay-mem-'));
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    stop = () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
    for (let i = 0; i < 200; i++) {
      try {
        if (execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('PONG')) break;
      } catch {
        /* starting */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    values.populate = true;
  }
  try {
    if (values.populate) await populate(port);
    process.stdout.write(`${JSON.stringify(await measure(port))}\n`);
  } finally {
    stop();
  }
}

await main();
