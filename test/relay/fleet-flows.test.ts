/**
 * /api/v1/flows on a relay (FleetView.flows): only the stores that can hold
 * one of the newest `limit` records build records, the others only count.
 * The answer must be what asking every store for `limit` records and
 * merging gives (as before): the same records, newest first (ties by node),
 * the same total; with records in time order per node, as agents export
 * them, that is the fleet's newest records.
 */
import { describe, expect, it } from 'vitest';
import { parseFlowFilter } from '../../src/flow/filter.js';
import type { FlowRecord } from '../../src/flow/record.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import type { DecodedEntry } from '../../src/redis/entry-encoding.js';
import { FleetView } from '../../src/relay/fleet-view.js';

describe('FleetView.flows', () => {
  it('answers as merging every store whole does, for many nodes, filters, limits and tied times', async () => {
    const now = Date.now();
    const view = new FleetView({ storeSize: 300, top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 }, clock: () => now });
    let seed = 7;
    const rnd = (m: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * m);
    };
    for (let n = 0; n < 60; n++) {
      const node = `n-${String(n).padStart(2, '0')}`;
      // exports at times shared by several nodes (ties), some nodes far behind
      const exports = 1 + rnd(6);
      const newest = now - 1000 * (rnd(4) + (n % 7 === 0 ? 600 : 0));
      for (let e = exports - 1; e >= 0; e--) {
        const end = newest - e * 10_000;
        const entries: DecodedEntry[] = Array.from({ length: 1 + rnd(40) }, (_, i) => ({
          node,
          iface: 'eth0',
          ifindex: 2,
          meta: packMeta(i % 2 ? 'egress' : 'ingress', 4, [6, 17][i % 2], 0, 0),
          ports: packPorts(1000 + i, 53 + (i % 3)),
          src: `10.0.${n}.${i}`,
          dst: '10.9.9.9',
          packets: 1 + i,
          bytes: 100 + i,
          tcpFlags: 0,
          startMs: end - 10_000,
          endMs: end,
          firstSeenMs: end - 10_000,
          lastSeenMs: end,
        }));
        await view.ingest(node, entries, `${end}-0`);
      }
    }
    const naive = (query: Record<string, unknown>, limit: number) => {
      const filter = parseFlowFilter(query as Parameters<typeof parseFlowFilter>[0], now);
      let total = 0;
      const all: FlowRecord[] = [];
      for (const n of view.nodes.values()) {
        if (filter.node !== undefined && n.name !== filter.node) continue;
        const p = n.store.query(filter, limit);
        total += p.total;
        all.push(...p.flows);
      }
      all.sort((a, b) => (a.end < b.end ? 1 : a.end > b.end ? -1 : a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
      return { total, flows: all.slice(0, limit) };
    };
    for (const query of [{}, { proto: 'udp' }, { dport: 54 }, { node: 'n-07' }, { since: '20s' }, { ip: '10.0.3.0/24' }, { proto: 'icmp' }] as Record<string, unknown>[]) {
      for (const limit of [1, 5, 37, 100, 5000]) {
        const got = view.flows(parseFlowFilter(query as Parameters<typeof parseFlowFilter>[0], now), limit);
        const want = naive(query, limit);
        expect({ total: got.total, flows: got.flows }, `${JSON.stringify(query)} limit ${limit}`).toEqual(want);
        expect(got.truncated).toBe(want.total > want.flows.length);
      }
    }
  });
});
