/**
 * The record store's indexed queries (record-index.ts, record-query.ts)
 * against a brute-force scan of the same records, for every filter kind,
 * with random records across ring wrap-around, eviction, address ids freed
 * and reused, a store that grows, and an index that lags the ring by a
 * random amount (catchUp).
 */
import { describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/flow/address-table.js';
import { cgroupUnder, parseFlowFilter, type FlowFilter, type FlowFilterParams } from '../../src/flow/filter.js';
import { protoNumber } from '../../src/flow/protocols.js';
import { RecordBatch, type CgroupLabeler } from '../../src/flow/record-batch.js';
import type { FlowRecord } from '../../src/flow/record.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import { prefixContains } from '../../src/lib/ip.js';
import { Slicer } from '../../src/lib/slicer.js';
import { RecordStore, type FlowPage } from '../../src/engine/record-store.js';
import { INDEX_BYTES_PER_ROW } from '../../src/engine/record-index.js';
import { prng } from '../helpers/random.js';


const NODE = 'n1';
const IFACES: Record<number, string> = { 2: 'eth0', 3: 'eth1', 7: 'veth7' };
const V4 = ['10.0.0.1', '10.0.0.2', '10.0.1.9', '10.1.2.3', '192.168.1.1', '192.168.1.77', '172.16.0.5', '8.8.8.8'];
const V6 = ['2001:db8::1', '2001:db8::2', '2001:db8:1::9', 'fd00::5', '::ffff:10.0.0.1'];
const PORTS = [0, 22, 53, 80, 443, 8080, 40000, 40001, 65535, 33211];
const PROTOS = [6, 17, 1, 58, 132, 47];
const CGROUPS = [0, 0, 101, 102, 103, 104];
const LABELS = new Map<number, { path: string; workload: string }>([
  [101, { path: '/system.slice/nginx.service', workload: 'nginx.service' }],
  [102, { path: '/system.slice/sshd.service', workload: 'sshd.service' }],
  [103, { path: '/kubepods.slice/pod-a/c1', workload: 'shop/cart' }],
  // 104: a cgroup removed before it was read: no label
]);
const labels: CgroupLabeler = (id) => LABELS.get(id);
const ifaceName = (ifindex: number): string => IFACES[ifindex] ?? `if${ifindex}`;

/** Random records written batch by batch; each batch one export interval. */
class Fixture {
  readonly addresses = new AddressTable();
  readonly store: RecordStore;
  private readonly batch: RecordBatch;
  now = 1_700_000_000_000;

  constructor(
    private readonly random: () => number,
    capacity: number,
    initialRows: number,
  ) {
    this.store = new RecordStore(capacity, this.addresses, ifaceName, NODE, initialRows);
    this.store.labels = labels;
    this.batch = new RecordBatch(128, this.addresses, ifaceName, NODE);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.random() * xs.length)];
  }

  write(count: number): void {
    const b = this.batch;
    b.count = 0;
    b.startMs = this.now;
    this.now += 1 + Math.floor(this.random() * 3) * 500;
    b.endMs = this.now;
    const held: number[] = [];
    for (let i = 0; i < count; i++) {
      const v6 = this.random() < 0.3;
      const pool = v6 ? V6 : V4;
      const src = this.addresses.intern(this.pick(pool));
      const dst = this.addresses.intern(this.pick(pool));
      held.push(src, dst);
      const ifindex = Number(this.pick(Object.keys(IFACES)));
      const proto = this.pick(PROTOS);
      const icmp = proto === 1 || proto === 58;
      b.flowId[i] = i;
      b.ifindex[i] = ifindex;
      b.meta[i] = packMeta(this.random() < 0.5 ? 'ingress' : 'egress', v6 ? 6 : 4, proto, icmp ? 8 : 0, 0);
      b.ports[i] = icmp ? 0 : packPorts(this.pick(PORTS), this.pick(PORTS));
      b.srcId[i] = src;
      b.dstId[i] = dst;
      b.packets[i] = 1 + i;
      b.bytes[i] = 100 * (1 + i);
      b.tcpFlags[i] = 0;
      b.firstSeen[i] = b.startMs;
      b.lastSeen[i] = b.endMs;
      b.cgroup[i] = this.pick(CGROUPS);
      b.count++;
    }
    this.store.write(b);
    // The flows end: the store's records alone hold their addresses (ids are freed with the last record and reused).
    for (const id of held) this.addresses.release(id);
  }

  /** Every stored record, newest first, as a brute-force scan sees it. */
  records(): FlowRecord[] {
    const out: FlowRecord[] = [];
    for (let seq = this.store.endSeq - 1; seq >= this.store.oldestSeq; seq--) out.push(this.store.recordAt(seq));
    return out;
  }

  /** A random filter of one to three conditions, of every kind the API has. */
  filterParams(): FlowFilterParams {
    const p: FlowFilterParams = {};
    const kinds = Math.ceil(this.random() * 3);
    for (let k = 0; k < kinds; k++) {
      switch (Math.floor(this.random() * 13)) {
        case 0:
          p.src = this.prefix();
          break;
        case 1:
          p.dst = this.prefix();
          break;
        case 2:
          p.ip = this.prefix();
          break;
        case 3:
          p.port = this.pick(PORTS);
          break;
        case 4:
          p.sport = this.pick(PORTS);
          break;
        case 5:
          p.dport = this.pick([...PORTS, 1234]);
          break;
        case 6:
          p.proto = this.pick(['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', '47', '99']);
          break;
        case 7:
          p.iface = this.pick(['eth0', 'eth1', 'veth7', 'nope']);
          break;
        case 8:
          p.direction = this.pick(['ingress', 'egress'] as const);
          break;
        case 9: {
          const span = this.now - 1_700_000_000_000;
          const at = 1_700_000_000_000 + Math.floor(this.random() * (span + 2000)) - 1000;
          if (this.random() < 0.5) p.since = new Date(at).toISOString();
          else p.until = new Date(at).toISOString();
          break;
        }
        case 10:
          p.node = this.pick([NODE, 'other']);
          break;
        case 11:
          p.cgroup = this.pick(['/', '/system.slice', '/system.slice/nginx.service', '/kubepods.slice', '/system', '/nope']);
          break;
        default:
          p.workload = this.pick(['nginx.service', 'shop/cart', 'sshd.service', 'none']);
      }
    }
    if (p.since !== undefined && p.until !== undefined && Date.parse(p.since) > Date.parse(p.until)) delete p.until;
    return p;
  }

  private prefix(): string {
    const r = this.random();
    if (r < 0.3) return this.pick([...V4, '10.9.9.9']);
    if (r < 0.55) return this.pick(['10.0.0.0/24', '10.0.0.0/30', '10.0.0.0/16', '10.0.0.0/8', '192.168.1.0/24', '0.0.0.0/0', '172.16.0.0/12']);
    if (r < 0.75) return this.pick([...V6, '2001:db8::99']);
    return this.pick(['2001:db8::/32', '2001:db8::/64', 'fd00::/8', '::/0', '::ffff:0:0/96']);
  }
}

/** The brute-force answer: every record tested field by field, in its contract form. */
function matches(f: FlowFilter, r: FlowRecord): boolean {
  if (f.node !== undefined && r.node !== f.node) return false;
  if (f.src && !prefixContains(f.src, r.src)) return false;
  if (f.dst && !prefixContains(f.dst, r.dst)) return false;
  if (f.ip && !prefixContains(f.ip, r.src) && !prefixContains(f.ip, r.dst)) return false;
  if (f.port !== undefined && r.sport !== f.port && r.dport !== f.port) return false;
  if (f.sport !== undefined && r.sport !== f.sport) return false;
  if (f.dport !== undefined && r.dport !== f.dport) return false;
  if (f.proto !== undefined && protoNumber(r.proto) !== f.proto) return false;
  if (f.iface !== undefined && r.iface !== f.iface) return false;
  if (f.direction !== undefined && (r.direction === 'egress' ? 1 : 0) !== f.direction) return false;
  if (f.cgroup !== undefined && (typeof r.cgroup !== 'string' || !cgroupUnder(r.cgroup, f.cgroup))) return false;
  if (f.workload !== undefined && r.workload !== f.workload) return false;
  if (f.sinceMs !== undefined && !(Date.parse(r.end) > f.sinceMs)) return false;
  if (f.untilMs !== undefined && !(Date.parse(r.start) < f.untilMs)) return false;
  return true;
}

function expectSame(page: FlowPage, expected: FlowRecord[], limit: number, what: string): void {
  expect(page.totalExact, what).toBe(true);
  expect(page.total, what).toBe(expected.length);
  expect(page.truncated, what).toBe(expected.length > limit);
  expect(page.flows, what).toEqual(expected.slice(0, limit));
}

describe('RecordStore indexed queries', () => {
  it('answer as a brute-force scan does, for every filter kind, across wrap-around, eviction and index lag', async () => {
    let queries = 0;
    for (let seed = 1; seed <= 24; seed++) {
      const random = prng(seed);
      const capacity = [40, 150, 600][seed % 3];
      const fx = new Fixture(random, capacity, seed % 4 === 0 ? 16 : capacity);
      for (let round = 0; round < 30; round++) {
        fx.write(1 + Math.floor(random() * 100));
        // The index lags the ring by a random amount: none, some, or all of the newest records.
        const lag = random();
        if (lag < 0.4) fx.store.catchUp();
        else if (lag < 0.7) fx.store.catchUp(Math.floor(random() * capacity));
        const all = fx.records();
        for (let q = 0; q < 6; q++) {
          const params = fx.filterParams();
          const limit = fx.pick([1, 3, 10, 100, 10000]);
          const filter = parseFlowFilter(params, fx.now);
          const expected = all.filter((r) => matches(filter, r));
          const what = `seed ${seed} round ${round} ${JSON.stringify(params)} limit ${limit} (indexed to ${fx.store.indexedTo} of [${fx.store.oldestSeq}, ${fx.store.endSeq}))`;
          expectSame(fx.store.query(filter, limit), expected, limit, what);
          // Time-sliced, pausing as often as it can (nothing is written meanwhile): the same answer.
          if (q === 0) expectSame(await fx.store.querySliced(filter, limit, new Slicer(0)), expected, limit, `${what} sliced`);
          queries++;
        }
      }
    }
    expect(queries).toBe(24 * 30 * 6);
  }, 120_000);

  it('answers with an exact total from the index heads, and with a scan of the records not indexed yet', () => {
    const fx = new Fixture(prng(99), 1000, 1000);
    for (let i = 0; i < 30; i++) fx.write(50);
    fx.store.catchUp();
    const all = fx.records();
    const q = (params: FlowFilterParams, limit = 5) => {
      const filter = parseFlowFilter(params, fx.now);
      expectSame(fx.store.query(filter, limit), all.filter((r) => matches(filter, r)), limit, JSON.stringify(params));
    };
    q({ dport: 443 });
    q({ proto: 'udp', direction: 'egress' });
    q({ src: '0.0.0.0/0' });
    q({ ip: '10.0.0.1', port: 53 });
    // newer records, not indexed yet, come first and are counted too
    fx.write(80);
    const newer = fx.records();
    const filter = parseFlowFilter({ dport: 443 }, fx.now);
    expect(fx.store.indexedTo).toBeLessThan(fx.store.endSeq);
    expectSame(fx.store.query(filter, 3), newer.filter((r) => matches(filter, r)), 3, 'with a tail');
  });

  it('bounds the count once the page is full: total is a lower bound, totalExact false, truncated true', () => {
    const fx = new Fixture(prng(7), 2000, 2000);
    for (let i = 0; i < 20; i++) fx.write(100);
    fx.store.catchUp();
    const all = fx.records();
    fx.store.countWorkLimit = 50;
    for (const params of [{ proto: 'tcp', src: '10.0.0.0/8' }, { ip: '10.0.0.1' }, { sport: 53, dport: 443 }, { src: '10.0.0.0/16', direction: 'ingress' as const }]) {
      const filter = parseFlowFilter(params, fx.now);
      const expected = all.filter((r) => matches(filter, r));
      const page = fx.store.query(filter, 5);
      const what = JSON.stringify(params);
      // the page itself is never cut short by the bound
      expect(page.flows, what).toEqual(expected.slice(0, 5));
      if (page.totalExact) {
        expect(page.total, what).toBe(expected.length);
      } else {
        expect(page.total, what).toBeGreaterThanOrEqual(page.flows.length);
        expect(page.total, what).toBeLessThanOrEqual(expected.length);
        expect(page.truncated, what).toBe(true);
      }
    }
    // A filter whose matches are more than the bound allows past the page: the count stops.
    const wide = parseFlowFilter({ src: '10.0.0.0/8', proto: 'tcp' }, fx.now);
    const page = fx.store.query(wide, 1);
    expect(all.filter((r) => matches(wide, r)).length).toBeGreaterThan(100);
    expect(page.totalExact).toBe(false);
    expect(page.truncated).toBe(true);
    // The heads answer without counting: exact whatever the bound.
    expect(fx.store.query(parseFlowFilter({ proto: 'udp', direction: 'egress' }, fx.now), 1).totalExact).toBe(true);
  });

  it('a time-sliced query that the ring overtakes says its total is a lower bound', async () => {
    const fx = new Fixture(prng(3), 20_000, 20_000);
    for (let i = 0; i < 250; i++) fx.write(100);
    fx.store.catchUp();
    const filter = parseFlowFilter({ src: '10.0.0.0/8', dst: '10.0.0.0/8' }, fx.now);
    const before = fx.records().filter((r) => matches(filter, r));
    const pending = fx.store.querySliced(filter, 10, new Slicer(0));
    let done = false;
    void pending.then(() => (done = true));
    // While it pauses, the ring turns over: the records it had not reached are gone.
    while (!done) {
      for (let i = 0; i < 100; i++) fx.write(100);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const page = await pending;
    expect(page.totalExact).toBe(false);
    expect(page.total).toBeLessThan(before.length);
    expect(page.flows).toEqual(before.slice(0, 10));
  });

  it('holds at most INDEX_BYTES_PER_ROW bytes per record at the default store size', () => {
    const store = new RecordStore(262_144, new AddressTable(), ifaceName, NODE);
    expect(store.index.bytes / store.capacity).toBeLessThanOrEqual(INDEX_BYTES_PER_ROW);
  });
});
