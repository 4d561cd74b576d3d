/**
 * One scaled-out relay (Relay with --partitions) for bench/redis/fleet.ts:
 * prints its state as a JSON line every 100 ms until killed.
 *
 *   node --import tsx bench/redis/fleet-relay.ts PORT ID PARTITIONS
 */
import { parseRedisUrl } from '../../src/redis/url.js';
import { Relay } from '../../src/relay/relay.js';

const [port, id, partitions] = process.argv.slice(2);
const relay = new Relay({
  target: parseRedisUrl(`redis://127.0.0.1:${port}`),
  group: 'fleet-bench',
  consumer: id,
  version: 'bench',
  storeSize: 65_536,
  discoverEveryMs: 1000,
  scaleOut: { partitions: Number(partitions), peerListen: { host: '127.0.0.1', port: 0 }, leaseMs: 3000 },
});
await relay.start();
setInterval(() => {
  const p = relay.partitions!;
  process.stdout.write(`${JSON.stringify({ id, held: p.owned.length, owns: p.owns.length, caughtUp: p.caughtUp, entries: p.entries, rss: process.memoryUsage().rss })}\n`);
}, 100);
