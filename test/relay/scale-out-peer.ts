/**
 * A scaled-out relay in a process of its own, for test/relay/scale-out.test.ts
 * (which kill -9s it): membership + partitioned views against the Redis given,
 * printing its state as one JSON line every 200 ms.
 *
 *   node --import tsx test/relay/scale-out-peer.ts PORT ID PARTITIONS LEASE_MS
 */
import { connectClient, createRedisClient } from '../../src/redis/connection.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { Membership } from '../../src/relay/membership.js';
import { PartitionedFleet } from '../../src/relay/partitions.js';

const [port, id, partitions, leaseMs] = process.argv.slice(2);
const client = createRedisClient(parseRedisUrl(`redis://127.0.0.1:${port}`), { connectionName: `peer-${id}` });
await connectClient(client, 5000);
const membership = new Membership({ client, id, partitions: Number(partitions), leaseMs: Number(leaseMs) });
const fleet = new PartitionedFleet({ client, membership, group: 'fleet', view: { storeSize: 100_000 }, consumer: { discoverEveryMs: 300, idleSleepMs: 20 } });
await membership.start();
await fleet.sync();
setInterval(() => {
  process.stdout.write(`${JSON.stringify({ id, live: membership.live, owned: fleet.owned, caughtUp: fleet.caughtUp, entries: fleet.entries })}\n`);
}, 200);
