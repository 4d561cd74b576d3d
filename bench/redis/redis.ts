/**
 * Redis benchmarks (docs/redis.md, bench/RESULTS.md section "redis"):
 *
 * 1. records/s written to one stream by the real sink (encode in write() +
 *    pipelined XADD ... MAXLEN ~ drained by the sink), next to
 *    redis-benchmark running XADD with the same 17 fields at the same pipeline
 *    depth on one connection, against the same redis-server, in the same run;
 * 2. the relay's ingest rate (entries/s read back, decoded and added to the
 *    stores and top-talkers windows);
 * 3. memory of the bounded queue per buffered record (Redis down).
 *
 *   node --expose-gc --import tsx bench/redis/redis.ts [records] [depth]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressTable } from '../../src/flow/address-table.js';
import { RecordBatch } from '../../src/flow/record-batch.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import { connectClient, createRedisClient } from '../../src/redis/connection.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import { Relay } from '../../src/relay/relay.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { freePort } from '../../test/helpers/ports.js';
import { machineLine, median, writeSection } from '../results.js';

const RECORDS = Number(process.argv[2] ?? 300_000);
const DEPTH = Number(process.argv[3] ?? 64);
const RUNS = 3;


async function startRedis(): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'flowscope-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try {
      if (execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).includes('PONG')) break;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A batch of `n` distinct UDP records, like one export of a busy node. */
function makeBatch(n: number, addresses: AddressTable): RecordBatch {
  const batch = new RecordBatch(n, addresses, (i) => `eth${i}`, 'bench-node');
  const now = Date.now();
  batch.startMs = now - 1000;
  batch.endMs = now;
  for (let i = 0; i < n; i++) {
    batch.flowId[i] = i;
    batch.ifindex[i] = 2;
    batch.meta[i] = packMeta('ingress', 4, 17, 0, 0);
    batch.ports[i] = packPorts(1024 + (i % 60000), 53);
    batch.srcId[i] = addresses.intern(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    batch.dstId[i] = addresses.intern('192.168.1.1');
    batch.packets[i] = 1 + (i % 100);
    batch.bytes[i] = 100 * (1 + (i % 100));
    batch.tcpFlags[i] = 0;
    batch.firstSeen[i] = now - 5000;
    batch.lastSeen[i] = now - 10;
  }
  batch.count = n;
  return batch;
}

/** redis-benchmark XADD with the sink's 17 fields, one connection, pipeline DEPTH. */
function redisBenchmark(port: number, clients: number): number {
  const fields = [
    'node', 'bench-node', 'iface', 'eth2', 'ifindex', '2', 'direction', 'ingress', 'family', '4', 'src', '10.0.1.7', 'dst', '192.168.1.1',
    'proto', 'udp', 'sport', '1031', 'dport', '53', 'packets', '8', 'bytes', '800', 'tcpFlags', '""', 'start', '2026-01-01T00:00:00.000Z',
    'end', '2026-01-01T00:00:01.000Z', 'firstSeen', '2025-12-31T23:59:56.000Z', 'lastSeen', '2026-01-01T00:00:00.990Z',
  ];
  const out = execFileSync('redis-benchmark', ['-p', String(port), '-c', String(clients), '-P', String(DEPTH), '-n', String(RECORDS), '-q', 'XADD', 'bench:rb', 'MAXLEN', '~', '1000000', '*', ...fields], { encoding: 'utf8' });
  const m = /([\d.]+) requests per second/.exec(out);
  if (!m) throw new Error(`redis-benchmark: ${out}`);
  execFileSync('redis-cli', ['-p', String(port), 'del', 'bench:rb']);
  return Number(m[1]);
}

/** Records/s of the real sink: RECORDS records written, until all are acknowledged by Redis. */
async function sinkRun(port: number, batchSize: number, node: string): Promise<number> {
  const client = createRedisClient(parseRedisUrl(`redis://127.0.0.1:${port}`), { connectionName: 'bench' });
  await connectClient(client, 5000);
  const sink = new RedisStreamSink({ node, client, url: 'bench', maxLen: 1_000_000, bufferRecords: RECORDS, batchSize });
  const addresses = new AddressTable();
  const batch = makeBatch(4096, addresses);
  await sink.flush(); // registers the node first, outside the timing
  const t0 = performance.now();
  for (let written = 0; written < RECORDS; written += batch.count) {
    batch.count = Math.min(4096, RECORDS - written);
    sink.write(batch);
    void sink.flush();
    // let the drain run between exports, as between the collector's polls
    await new Promise((r) => setImmediate(r));
  }
  while ((sink.status().pending ?? 0) > 0) await sink.flush();
  const seconds = (performance.now() - t0) / 1000;
  if (sink.status().exported !== RECORDS) throw new Error(`exported ${sink.status().exported} of ${RECORDS}`);
  await sink.close();
  return RECORDS / seconds;
}

/** Entries/s the relay ingests: a fresh relay replays the streams written above. */
async function relayRun(port: number, group: string): Promise<{ rate: number; entries: number }> {
  const relay = new Relay({ target: parseRedisUrl(`redis://127.0.0.1:${port}`), group, consumer: 'bench', version: 'bench', storeSize: 65_536, top: { bucketMs: 10_000, horizonMs: 3_600_000, capacity: 1000 } });
  // The replay happens in the first discovery: time from start until it is done.
  const t0 = performance.now();
  await relay.start();
  while (!relay.consumer.caughtUp) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - t0) / 1000;
  const entries = relay.view.entries;
  await relay.close();
  return { rate: entries / seconds, entries };
}

/** Bytes per buffered record: a sink whose Redis is down holds RECORDS records. */
async function queueMemory(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  const client = createRedisClient(parseRedisUrl('redis://127.0.0.1:1'), { connectionName: 'bench-mem' });
  const addresses = new AddressTable();
  const batch = makeBatch(4096, addresses);
  gc();
  const before = process.memoryUsage();
  const sink = new RedisStreamSink({ node: 'bench-node', client, url: 'down', maxLen: 1, bufferRecords: RECORDS });
  for (let written = 0; written < RECORDS; written += batch.count) {
    batch.count = Math.min(4096, RECORDS - written);
    sink.write(batch);
  }
  gc();
  const after = process.memoryUsage();
  const perRecord = (after.heapUsed + after.external - before.heapUsed - before.external) / (sink.status().pending ?? 1);
  client.disconnect();
  return perRecord;
}

async function main(): Promise<void> {
  const load = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const redis = await startRedis();
  try {
    const rb1: number[] = [];
    const rb50: number[] = [];
    const sink: number[] = [];
    const sinkBig: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      rb1.push(redisBenchmark(redis.port, 1));
      sink.push(await sinkRun(redis.port, DEPTH, `bench-${run}`));
      sinkBig.push(await sinkRun(redis.port, 512, `bench-big-${run}`));
      rb50.push(redisBenchmark(redis.port, 50));
    }
    const relay = await relayRun(redis.port, 'bench-relay');
    const mem = await queueMemory();
    const r = (x: number) => Math.round(x).toLocaleString('en-US');
    const rb = median(rb1);
    const md = `## redis

\`node --expose-gc --import tsx bench/redis/redis.ts ${RECORDS} ${DEPTH}\` — ${machineLine()}, redis-server ${execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).split(' ')[2]}, on loopback; load before the run: \`${load}\`. Median of ${RUNS} runs of ${r(RECORDS)} records each, 17 fields per entry, \`XADD key MAXLEN ~ 1000000 ID ...\`.

| what | records/s | vs redis-benchmark (1 connection, -P ${DEPTH}) |
|---|---:|---:|
| redis-benchmark XADD, 1 connection, -P ${DEPTH} | ${r(rb)} | 100% |
| **flowscope Redis sink**, pipelines of ${DEPTH} (encode + send + acknowledge) | **${r(median(sink))}** | **${Math.round((100 * median(sink)) / rb)}%** |
| flowscope Redis sink, pipelines of 512 (the default) | ${r(median(sinkBig))} | ${Math.round((100 * median(sinkBig)) / rb)}% |
| redis-benchmark XADD, 50 connections, -P ${DEPTH} (Redis's own ceiling) | ${r(median(rb50))} | ${Math.round((100 * median(rb50)) / rb)}% |

- Relay ingest (replay of ${r(relay.entries)} entries of ${RUNS * 2} streams: XRANGE, decode, record stores, top-talkers windows): **${r(relay.rate)} entries/s**.
- Bounded queue while Redis is down: **${Math.round(mem)} bytes per buffered record** (the RESP bytes of its fields in the queue's arena plus 41 bytes of columns); the default \`--redis-buffer 200000\` is thus ≈ ${Math.round((mem * 200_000) / 2 ** 20)} MiB at most.
`;
    writeSection('redis', md);
    process.stdout.write(md);
  } finally {
    redis.stop();
  }
}

await main();
