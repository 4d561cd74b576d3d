/**
 * The relay's attribution labels (src/relay/cgroup-labels.ts): a node's
 * labels stay bounded however many cgroups its entries name, are kept while a
 * stored record carries their id, and two nodes' equal cgroup ids never mix
 * in the fleet's top talkers.
 */
import { describe, expect, it } from 'vitest';
import { FleetCgroupIds, NodeCgroupLabels } from '../../src/relay/cgroup-labels.js';
import { FleetView } from '../../src/relay/fleet-view.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import type { DecodedEntry } from '../../src/redis/entry-encoding.js';

const label = (n: number) => ({ path: `/system.slice/unit-${n}.service`, workload: `unit-${n}.service` });

describe('NodeCgroupLabels', () => {
  it('keeps a label while a stored record carries its id, and at most the bound however many ids come', () => {
    let oldest = 0;
    const labels = new NodeCgroupLabels(() => oldest, 100, 1 << 20);
    for (let id = 1; id <= 100; id++) labels.note(id, label(id), id);
    expect(labels.size).toBe(100);
    // full: id 101 has no room while every held id is still in the store
    labels.note(101, label(101), 101);
    expect(labels.lookup(101)).toBeUndefined();
    expect(labels.dropped).toBe(1);
    // the store forgot records 0..59: their ids go, the new one is kept, the others stay
    oldest = 60;
    labels.note(102, label(102), 102);
    expect(labels.lookup(102)).toEqual(label(102));
    expect(labels.lookup(59)).toBeUndefined();
    expect(labels.lookup(60)).toEqual(label(60));
    // an id seen again in a newer record stays past its first record
    labels.note(60, undefined, 103);
    oldest = 90;
    for (let id = 200; id < 240; id++) labels.note(id, label(id), 104);
    expect(labels.lookup(60)).toEqual(label(60));
    expect(labels.size).toBeLessThanOrEqual(100);
    // a later entry without a label leaves the label; one with another label replaces it
    labels.note(60, { path: '/x', workload: 'x' }, 105);
    expect(labels.lookup(60)).toEqual({ path: '/x', workload: 'x' });
  });

  it('bounds the label text too', () => {
    const labels = new NodeCgroupLabels(() => 0, 1000, 10_000);
    for (let id = 1; id <= 100; id++) labels.note(id, { path: `/${'p'.repeat(998)}`, workload: 'w' }, id);
    expect(labels.size).toBe(10);
    expect(labels.dropped).toBe(90);
  });
});

describe('FleetCgroupIds', () => {
  it('numbers (node, id) pairs apart and gives unused numbers back a bucket after their last use', () => {
    const ids = new FleetCgroupIds();
    const a = new NodeCgroupLabels(() => 0);
    const b = new NodeCgroupLabels(() => 0);
    a.note(7, label(1), 0);
    b.note(7, label(2), 0);
    const na = new Map<number, number>();
    const nb = new Map<number, number>();
    const x = ids.number(a, na, 7);
    const y = ids.number(b, nb, 7);
    expect(x).not.toBe(y);
    expect(ids.labeler(x)).toEqual(label(1));
    expect(ids.labeler(y)).toEqual(label(2));
    ids.bucketClosed(); // both used in the closed bucket: kept
    expect(ids.size).toBe(2);
    expect(ids.number(a, na, 7)).toBe(x);
    ids.bucketClosed(); // y unused for a whole bucket
    expect(ids.size).toBe(1);
    expect(nb.size).toBe(0);
    expect(ids.labeler(y)).toBeUndefined();
  });
});

describe('FleetView with attribution', () => {
  it('two nodes with one cgroup id: their records and the fleet\'s top talkers keep them apart', async () => {
    let now = Date.now();
    const view = new FleetView({ storeSize: 100, top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 }, clock: () => now });
    const entry = (node: string, path: string, bytes: number): DecodedEntry => ({
      node,
      iface: 'eth0',
      ifindex: 2,
      meta: packMeta('egress', 4, 17, 0, 0),
      ports: packPorts(1000, 53),
      src: '10.0.0.1',
      dst: '10.0.0.2',
      packets: 1,
      bytes,
      tcpFlags: 0,
      startMs: now - 1000,
      endMs: now,
      firstSeenMs: now - 1000,
      lastSeenMs: now,
      cgroupId: 42,
      label: { path, workload: path.slice(path.lastIndexOf('/') + 1) },
    });
    await view.ingest('a', [entry('a', '/system.slice/nginx.service', 100)], '1-0');
    await view.ingest('b', [entry('b', '/system.slice/redis.service', 30)], '1-1');
    now += 2000;
    await view.advance();
    const flows = view.flows({}, 10).flows;
    expect(flows.map((f) => [f.node, f.cgroupId, f.cgroup, f.workload]).sort()).toEqual([
      ['a', 42, '/system.slice/nginx.service', 'nginx.service'],
      ['b', 42, '/system.slice/redis.service', 'redis.service'],
    ]);
    const top = await view.top({ by: 'workload', metric: 'bytes', windowMs: 60_000, k: 10, filter: {} });
    expect(top.entries.map((e) => [e.key.workload, e.bytes])).toEqual([
      ['nginx.service', 100],
      ['redis.service', 30],
    ]);
  });
});
