/**
 * The sink's byte encoder (entry-encoding.ts) writes each record's RESP
 * field/value pairs into the queue's arena: the pairs must be exactly the
 * contract's fields as strings (the same text as the record's JSON form, times
 * as Date.toISOString() writes them), and the queue must give them back
 * intact across arena chunks and after entries leave its head.
 */
import { describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/flow/address-table.js';
import { RecordBatch, type CgroupLabeler } from '../../src/flow/record-batch.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import { EntryEncoder, isReject, validateEntry, type DecodedEntry } from '../../src/redis/entry-encoding.js';
import { EntryQueue } from '../../src/redis/entry-queue.js';

/** Parses RESP bulk strings ($n\r\n...\r\n) back into a list. */
function bulks(b: Buffer): string[] {
  const out: string[] = [];
  let pos = 0;
  while (pos < b.length) {
    expect(b[pos]).toBe(36);
    const eol = b.indexOf('\r\n', pos);
    const n = Number(b.toString('latin1', pos + 1, eol));
    out.push(b.toString('utf8', eol + 2, eol + 2 + n));
    pos = eol + 2 + n + 2;
  }
  return out;
}

/** cgroup ids 1-6 with labels (a pod, a bare container, a unit, a path of non-ASCII text), 7 without (the agent could not read it), 8 with a path longer than an entry may carry */
const LABELS: CgroupLabeler = (id) =>
  ({
    1: { path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-' + 'a'.repeat(64) + '.scope', workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: 'a'.repeat(64) },
    2: { path: '/system.slice/docker-' + 'b'.repeat(64) + '.scope', workload: 'docker:bbbbbbbbbbbb', container: 'b'.repeat(64) },
    3: { path: '/system.slice/nginx.service', workload: 'nginx.service' },
    4: { path: '/', workload: 'host' },
    5: { path: '/user.slice/grüße €.scope', workload: 'grüße €.scope' },
    6: { path: '/kubepods/pod1/x', workload: 'kube-system/coredns-1', pod: { namespace: 'kube-system', name: 'coredns-1' } },
    8: { path: '/' + 'x'.repeat(5000), workload: 'x' },
  })[id];

function randomBatch(n: number, addresses: AddressTable, seed: number): RecordBatch {
  let x = seed;
  const rnd = (m: number): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % m;
  };
  const batch = new RecordBatch(n, addresses, (i) => (i === 7 ? 'wlän0' : `eth${i}`), 'nöde-1');
  batch.startMs = 1_700_000_000_000 + rnd(1e9);
  batch.endMs = batch.startMs + 1000;
  const times = [0, 1, 999, 86_399_999, 951_782_400_000, 4_102_444_799_999, 253_402_300_799_999, Date.now()];
  for (let i = 0; i < n; i++) {
    const proto = [6, 17, 1, 58, 132, 47][rnd(6)];
    const family = rnd(2) ? 4 : 6;
    batch.ifindex[i] = [2, 7, 123456][rnd(3)];
    batch.meta[i] = packMeta(rnd(2) ? 'ingress' : 'egress', family, proto, proto === 1 || proto === 58 ? rnd(256) : 0, proto === 1 || proto === 58 ? rnd(256) : 0);
    batch.ports[i] = proto === 1 || proto === 58 ? 0 : packPorts(rnd(65536), rnd(65536));
    const a = family === 4 ? `10.${rnd(256)}.${rnd(256)}.${rnd(256)}` : `2001:db8::${(1 + rnd(65535)).toString(16)}`;
    batch.srcId[i] = addresses.intern(a);
    batch.dstId[i] = addresses.intern(family === 4 ? '255.255.255.255' : 'fe80::1:2:3:4');
    batch.packets[i] = [0, 1, 9, 10, 99, 100, 2 ** 32, 2 ** 53 - 1][rnd(8)];
    batch.bytes[i] = rnd(2 ** 31) * (rnd(2) ? 1 : 4096);
    batch.tcpFlags[i] = proto === 6 ? rnd(512) : 0;
    batch.firstSeen[i] = i < times.length ? times[i] : 1_600_000_000_000 + rnd(2 ** 31) * 100 + rnd(1000);
    batch.lastSeen[i] = times[rnd(times.length)];
    batch.cgroup[i] = rnd(3) === 0 ? 0 : 1 + rnd(8);
  }
  batch.labels = LABELS;
  batch.count = n;
  return batch;
}

describe('entry encoding', () => {
  it('writes every record as the contract fields, as strings, byte for byte', () => {
    const addresses = new AddressTable();
    const batch = randomBatch(2000, addresses, 42);
    const queue = new EntryQueue(5000);
    const encoder = new EntryEncoder('nöde-1', '0123456789abcdef');
    expect(encoder.encode(batch, queue)).toBe(0);
    expect(queue.length).toBe(2000);
    for (let i = 0; i < batch.count; i++) {
      const list = bulks(queue.fieldsAt(i));
      expect(list.length / 2).toBe(queue.pairsAt(i));
      const f: Record<string, string> = {};
      for (let k = 0; k < list.length; k += 2) f[list[k]] = list[k + 1];
      const r = batch.toRecord(i) as unknown as Record<string, unknown>;
      const want: Record<string, string> = { writer: '0123456789abcdef' };
      for (const [k, v] of Object.entries(r)) {
        if (v === undefined || v === null) continue;
        const pod = k === 'pod' ? (v as { namespace: string; name: string }) : undefined;
        want[k] = pod ? `${pod.namespace}/${pod.name}` : Array.isArray(v) ? v.join(',') : String(v);
      }
      // a label longer than an entry may carry is left out: the id alone (the relay then says cgroup null, as for an unresolved id)
      if (batch.cgroup[i] === 8) for (const k of ['cgroup', 'workload']) delete want[k];
      expect(f).toEqual(want);
      const d = validateEntry(list, { node: 'nöde-1', nowMs: 0, maxFutureMs: Infinity, maxAgeMs: Infinity });
      expect(d).not.toHaveProperty('reason');
      // decoded back: the same record
      const decoded = d as DecodedEntry;
      const label = batch.cgroup[i] === 8 ? undefined : LABELS(batch.cgroup[i]);
      expect(decoded.cgroupId ?? 0).toBe(batch.cgroup[i]);
      expect(decoded.label).toEqual(label);
      expect(queue.exportMsAt(i)).toBe(batch.endMs);
    }
  });

  it('flows without a cgroup cost no byte more', () => {
    const addresses = new AddressTable();
    const batch = randomBatch(500, addresses, 3);
    batch.cgroup.fill(0);
    const plain = new EntryQueue(1000);
    new EntryEncoder('n', 'w').encode(batch, plain);
    batch.labels = undefined;
    const unlabelled = new EntryQueue(1000);
    new EntryEncoder('n', 'w').encode(batch, unlabelled);
    for (let i = 0; i < batch.count; i++) {
      expect(bulks(plain.fieldsAt(i)).filter((_, k) => k % 2 === 0)).not.toContain('cgroupId');
      expect(plain.fieldsAt(i).equals(unlabelled.fieldsAt(i))).toBe(true);
    }
  });

  it('refuses hostile attribution values with the reason `attribution`', () => {
    const base = ['node', 'n', 'iface', 'eth0', 'ifindex', '2', 'direction', 'ingress', 'family', '4', 'src', '10.0.0.1', 'dst', '10.0.0.2', 'proto', 'udp', 'sport', '1', 'dport', '2', 'packets', '1', 'bytes', '60', 'tcpFlags', '', 'start', '2024-05-01T12:00:00.000Z', 'end', '2024-05-01T12:00:01.000Z', 'firstSeen', '2024-05-01T12:00:00.000Z', 'lastSeen', '2024-05-01T12:00:01.000Z'];
    const limits = { node: 'n', nowMs: 0, maxFutureMs: Infinity, maxAgeMs: Infinity };
    const check = (extra: string[]) => {
      const d = validateEntry([...base, ...extra], limits);
      return isReject(d) ? d.reason : 'accepted';
    };
    const ok = ['cgroupId', '77', 'cgroup', '/system.slice/a.service', 'workload', 'a.service'];
    expect(check(ok)).toBe('accepted');
    expect(check(['cgroupId', '77'])).toBe('accepted');
    expect(check([...ok, 'pod', 'ns/name', 'container', 'c'.repeat(64)])).toBe('accepted');
    for (const bad of [
      ['cgroupId', '0'],
      ['cgroupId', '-1'],
      ['cgroupId', '1e3'],
      ['cgroupId', '9007199254740992'],
      ['cgroupId', 'x', 'cgroup', '/a', 'workload', 'a'],
      ['cgroup', '/a', 'workload', 'a'],
      ['workload', 'a'],
      ['cgroupId', '7', 'workload', 'a'],
      ['cgroupId', '7', 'container', 'c'.repeat(64)],
      ['cgroupId', '7', 'cgroup', 'relative/path', 'workload', 'a'],
      ['cgroupId', '7', 'cgroup', '/a\0b', 'workload', 'a'],
      ['cgroupId', '7', 'cgroup', '/a'],
      ['cgroupId', '7', 'cgroup', '/a', 'workload', ''],
      [...ok, 'pod', 'nameonly'],
      [...ok, 'pod', '/name'],
      [...ok, 'pod', 'ns/'],
      [...ok, 'pod', 'a/b/c'],
      [...ok, 'container', 'C'.repeat(64)],
      [...ok, 'container', 'c'.repeat(63)],
    ]) {
      expect(check(bad), bad.join(' ')).toBe('attribution');
    }
    expect(check(['cgroupId', '7', 'cgroup', '/' + 'x'.repeat(4096), 'workload', 'a'])).toBe('oversized');
    expect(check(['cgroupId', '7', 'cgroup', '/a', 'workload', 'w'.repeat(513)])).toBe('oversized');
    expect(check(['cgroupId', '7', 'cgroup', '/a', 'workload', 'a', 'pod', `ns/${'p'.repeat(600)}`])).toBe('oversized');
    expect(check([...ok, 'cgroupId', '78'])).toBe('duplicate_field');
  });

  it('refuses what does not fit, and keeps entries intact across arena chunks as the head moves', () => {
    const addresses = new AddressTable();
    const batch = randomBatch(1000, addresses, 7);
    const queue = new EntryQueue(2300);
    const encoder = new EntryEncoder('n', 'w');
    const expected: string[] = [];
    let refused = 0;
    for (let round = 0; round < 6; round++) {
      const before = queue.length;
      refused += encoder.encode(batch, queue);
      for (let i = before; i < queue.length; i++) expected.push(queue.fieldsAt(i).toString('latin1'));
      queue.shift(700);
      expected.splice(0, 700);
      for (let i = 0; i < queue.length; i++) expect(queue.fieldsAt(i).toString('latin1')).toBe(expected[i]);
    }
    expect(refused).toBeGreaterThan(0);
    // an emptied queue keeps at most one chunk
    queue.shift(queue.length);
    expect(queue.arenaBytes).toBeLessThanOrEqual(256 * 1024);
  });
});
