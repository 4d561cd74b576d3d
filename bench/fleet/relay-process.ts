/**
 * One relay for bench/fleet/fleet.ts, as `flowscope relay` runs it: the
 * Relay (with --partitions when given) and the HTTP API on a loopback port.
 * Prints `{ port }` once listening, then every 500 ms a JSON line with the
 * entries it holds and has ingested, whether it has caught up, its resident
 * memory and CPU time. SIGTERM: closes and exits.
 *
 *   node --import tsx bench/fleet/relay-process.ts '{"redis":URL,"id":ID,"partitions":N,"storeSize":N}'
 */
import { createApp } from '../../src/api/app.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { Relay } from '../../src/relay/relay.js';
import { FleetView } from '../../src/relay/fleet-view.js';
import type { SinkLog } from '../../src/redis/stream-sink.js';

// Entries ingested, counted as they go into a view: a partition handed over drops its view (and its count), this does not.
let ingested = 0;
const ingestRows = FleetView.prototype.ingestRows;
FleetView.prototype.ingestRows = function (this: FleetView, ...a: Parameters<FleetView['ingestRows']>) {
  ingested += a[1].count;
  return ingestRows.apply(this, a);
};

function stderrLog(id: string): SinkLog {
  const line = (level: string) => (obj: object, msg: string) => process.stderr.write(`[${id} ${new Date().toISOString().slice(11, 23)} ${level}] ${msg} ${JSON.stringify(obj).slice(0, 300)}\n`);
  return { info: line('info'), warn: line('warn') };
}

const o = JSON.parse(process.argv[2]) as { redis: string; id: string; partitions?: number; storeSize: number };
const relay = new Relay({
  target: parseRedisUrl(o.redis),
  group: 'fleet-bench',
  consumer: o.id,
  version: 'bench',
  storeSize: o.storeSize,
  discoverEveryMs: 2000,
  // FLEET_RELAY_LOG=1: the relay's log lines on stderr (what it did when, for looking into a run)
  ...(process.env.FLEET_RELAY_LOG === '1' ? { log: stderrLog(o.id) } : {}),
  ...(o.partitions ? { scaleOut: { partitions: o.partitions, peerListen: { host: '127.0.0.1', port: 0 }, leaseMs: 3000 } } : {}),
});
await relay.start();
const app = await createApp({ services: relay.services(), version: 'bench' });
await app.listen({ host: '127.0.0.1', port: 0 });
const port = (app.server.address() as { port: number }).port;
process.stdout.write(`${JSON.stringify({ port })}\n`);

const report = setInterval(() => {
  const cpu = process.cpuUsage();
  const p = relay.partitions;
  process.stdout.write(
    `${JSON.stringify({
      t: Date.now(),
      entries: p ? p.entries : relay.view.entries,
      ingested,
      caughtUp: relay.readiness().ready && (!p || p.owned.length === p.owns.length),
      owned: p?.owns.length,
      rss: process.memoryUsage().rss,
      cpu: (cpu.user + cpu.system) / 1e6,
    })}\n`,
  );
}, 500);

process.once('SIGTERM', async () => {
  clearInterval(report);
  await app.close();
  await relay.close();
  process.exit(0);
});
