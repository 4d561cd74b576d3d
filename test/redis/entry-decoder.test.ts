/**
 * The relay's byte decoder (entry-decoder.ts) against the reference checks
 * (validateEntry): for entries as agents write them and for thousands of
 * mutated ones (hostile or merely unusual values), an entry is accepted
 * exactly when validateEntry accepts it, with the same values, and refused
 * with validateEntry's reason. And the RESP scanner (resp-reader.ts) finds
 * the same replies however the bytes are split into chunks.
 */
import { describe, expect, it } from 'vitest';
import { AddressTable } from '../../src/flow/address-table.js';
import { RecordBatch, type CgroupLabeler } from '../../src/flow/record-batch.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import { DecodedRows, EntryDecoder } from '../../src/redis/entry-decoder.js';
import { EntryEncoder, isReject, validateEntry, type EntryLimits, type EntryReject } from '../../src/redis/entry-encoding.js';
import { EntryQueue } from '../../src/redis/entry-queue.js';
import { EntryList, errorText, releaseReply, RespScanner, type RawReply } from '../../src/redis/resp-reader.js';

const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const LIMITS: EntryLimits = { node: 'nöde-1', nowMs: NOW, maxFutureMs: 86_400_000, maxAgeMs: 30 * 86_400_000 };

const LABELS: CgroupLabeler = (id) =>
  ({
    1: { path: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod77.slice/cri-containerd-${'e'.repeat(64)}.scope`, workload: 'shop/cart-1', pod: { namespace: 'shop', name: 'cart-1' }, container: 'e'.repeat(64) },
    2: { path: '/system.slice/nginx.service', workload: 'nginx.service' },
    3: { path: '/user.slice/grüße.scope', workload: 'grüße.scope' },
  })[id];

let seed = 1;
/** a small LCG; its high bits (the low ones of an LCG repeat quickly) */
const rnd = (m: number): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return Math.floor((seed / 2 ** 31) * m);
};

/** A batch as an agent exports it: every protocol kind, both families, interface names with and without non-ASCII, some cgroups. */
function batch(n: number): RecordBatch {
  const addresses = new AddressTable();
  const b = new RecordBatch(n, addresses, (i) => (i === 7 ? 'wlän0' : `eth${i}`), 'nöde-1');
  b.startMs = NOW - 10_000;
  b.endMs = NOW;
  b.labels = LABELS;
  for (let i = 0; i < n; i++) {
    const proto = [6, 17, 1, 58, 132, 47, 0][rnd(7)];
    const family = proto === 58 || rnd(3) === 0 ? 6 : 4;
    const icmp = proto === 1 || proto === 58;
    b.ifindex[i] = [2, 7, 4294967295][rnd(3)];
    b.meta[i] = packMeta(rnd(2) ? 'ingress' : 'egress', family, proto, icmp ? rnd(256) : 0, icmp ? rnd(256) : 0);
    b.ports[i] = icmp ? 0 : packPorts(rnd(65536), rnd(65536));
    b.srcId[i] = addresses.intern(family === 4 ? `${rnd(256)}.${rnd(256)}.${rnd(256)}.${rnd(256)}` : ['::', '::1', 'fe80::1', '2001:db8::a:0:0:1', '::ffff:192.0.2.1', `2001:db8:${rnd(65536).toString(16)}::${rnd(65536).toString(16)}`][rnd(6)]);
    b.dstId[i] = addresses.intern(family === 4 ? '0.0.0.0' : '1:2:3:4:5:6:7:8');
    b.packets[i] = [0, 1, 9, 10, 2 ** 53 - 1][rnd(5)];
    b.bytes[i] = rnd(2 ** 31);
    b.tcpFlags[i] = proto === 6 ? rnd(512) : 0;
    b.firstSeen[i] = NOW - rnd(86_400_000 * 29);
    b.lastSeen[i] = NOW - rnd(1000) + (rnd(10) === 0 ? 3_600_000 : 0);
    b.cgroup[i] = rnd(2) ? 0 : rnd(5); // 4: an id the agent could not name
  }
  b.count = n;
  return b;
}

/** The encoded entries' field lists (as an agent writes them). */
function agentEntries(n: number): string[][] {
  const b = batch(n);
  const q = new EntryQueue(n);
  new EntryEncoder('nöde-1', '0123456789abcdef').encode(b, q);
  const out: string[][] = [];
  for (let i = 0; i < n; i++) {
    const bytes = q.fieldsAt(i);
    const fields: string[] = [];
    let p = 0;
    while (p < bytes.length) {
      const eol = bytes.indexOf('\r\n', p);
      const len = Number(bytes.toString('latin1', p + 1, eol));
      fields.push(bytes.toString('utf8', eol + 2, eol + 2 + len));
      p = eol + 2 + len + 2;
    }
    out.push(fields);
  }
  return out;
}

const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

/** An XRANGE reply holding the entries. */
function rangeReply(entries: (string[] | null)[]): Buffer {
  let text = `*${entries.length}\r\n`;
  entries.forEach((fields, i) => {
    text += `*2\r\n${bulk(`${NOW}-${i}`)}`;
    text += fields === null ? '*-1\r\n' : `*${fields.length}\r\n${fields.map(bulk).join('')}`;
  });
  return Buffer.from(text, 'utf8');
}

type Outcome = { reason: string } | Record<string, unknown>;

/** What the decoder made of each entry: its row's values, or the reason it was refused. */
function decodeAll(entries: (string[] | null)[], decoder: EntryDecoder, rows: DecodedRows): Outcome[] {
  const buf = rangeReply(entries);
  const list = new EntryList();
  list.readRangeReply({ buf, start: 0, end: buf.length });
  expect(list.count).toBe(entries.length);
  const refused = new Map<number, EntryReject>();
  decoder.decode(list, 0, list.count, LIMITS, rows, (i, r) => refused.set(i, r));
  const out: Outcome[] = [];
  let r = 0;
  for (let i = 0; i < entries.length; i++) {
    const no = refused.get(i);
    if (no) {
      out.push({ reason: no.reason });
      continue;
    }
    out.push({
      iface: rows.iface[r],
      ifindex: rows.ifindex[r],
      meta: rows.meta[r],
      ports: rows.ports[r],
      src: rows.addresses.text(rows.srcId[r]),
      dst: rows.addresses.text(rows.dstId[r]),
      packets: rows.packets[r],
      bytes: rows.bytes[r],
      tcpFlags: rows.tcpFlags[r],
      startMs: rows.startMs[r],
      endMs: rows.endMs[r],
      firstSeenMs: rows.firstSeen[r],
      lastSeenMs: rows.lastSeen[r],
      cgroupId: rows.cgroupId[r],
      label: rows.label[r],
    });
    r++;
  }
  expect(r).toBe(rows.count);
  rows.clear();
  return out;
}

/** What validateEntry makes of each entry, in the same shape. */
function reference(entries: (string[] | null)[]): Outcome[] {
  return entries.map((fields) => {
    const d = validateEntry(fields, LIMITS);
    if (isReject(d)) return { reason: d.reason };
    return {
      iface: d.iface,
      ifindex: d.ifindex,
      meta: d.meta,
      ports: d.ports,
      src: d.src,
      dst: d.dst,
      packets: d.packets,
      bytes: d.bytes,
      tcpFlags: d.tcpFlags,
      startMs: d.startMs,
      endMs: d.endMs,
      firstSeenMs: d.firstSeenMs,
      lastSeenMs: d.lastSeenMs,
      cgroupId: d.cgroupId ?? 0,
      label: d.label,
    };
  });
}

/** Values an entry field may be given instead of its own: unusual, malformed or hostile. */
const ODD: Record<string, string[]> = {
  node: ['nöde-2', 'NÖDE-1', '', 'nöde-1 '],
  iface: ['', 'eth0 ', 'a/b', 'a:b', 'a'.repeat(15), 'a'.repeat(16), 'wlän0', 'tab\there', '\u00a0x', 'x\x01y'],
  ifindex: ['0', '00', '01', '4294967295', '4294967296', '-1', '1.0', ' 1', '１'],
  direction: ['INGRESS', 'egres', 'egress\n', 'ingress'],
  family: ['4', '6', '04', '5', ''],
  src: ['1.2.3.4', '01.2.3.4', '1.2.3.256', '1.2.3', '1.2.3.4.5', '::1', '::0:1', '2001:DB8::1', '2001:db8::1%eth0', 'fe80::1:0:0:0:1', '::ffff:1.2.3.4', '::ffff:102:304', '255.255.255.255', ' 1.2.3.4'],
  dst: ['0.0.0.0', '00.0.0.0', '::', '0::0', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9'],
  proto: ['tcp', 'TCP', '6', '06', '17', '47', '047', '255', '256', 'icmpv6', 'sctp', '132', '-1', ''],
  sport: ['0', '65535', '65536', '00', '+1', '1e3'],
  dport: ['53', '053', ''],
  icmpType: ['0', '255', '256', '08'],
  icmpCode: ['0', '1', 'x'],
  packets: ['0', '9007199254740991', '9007199254740992', '1e308', '0x10', '-1', '01', '18446744073709551616', '12345678901234567'],
  bytes: ['100', '1.5', ' 100'],
  tcpFlags: ['', 'SYN', 'SYN,ACK', 'SYN,SYN', 'syn', 'SYN,', ',SYN', 'SYN,,ACK', 'NS', 'BOGUS', 'FIN,SYN,RST,PSH,ACK,URG,ECE,CWR,NS'],
  start: [
    '2026-06-01T11:59:50.000Z',
    '2026-06-01T11:59:50Z',
    '2026-06-01T11:59:50.5Z',
    '2026-06-01T13:59:50.000+02:00',
    '2026-02-30T00:00:00.000Z',
    '2026-02-29T00:00:00.000Z',
    '2024-02-29T00:00:00.000Z',
    '2026-06-01T24:00:00.000Z',
    '2026-06-01T23:60:00.000Z',
    '2026-13-01T00:00:00.000Z',
    '2026-06-00T00:00:00.000Z',
    '2999-01-01T00:00:00.000Z',
    '1970-01-01T00:00:00.000Z',
    '2026-05-02T12:00:00.000Z',
    '2026-05-02T11:59:59.999Z',
    '2026-06-02T12:00:00.000Z',
    '2026-06-02T12:00:00.001Z',
    'yesterday',
    '2026-06-01 11:59:50.000Z',
  ],
  end: ['2026-06-01T12:00:00.000Z', '2026-06-01T12:00:00.000z'],
  firstSeen: ['2026-06-01T11:00:00.000Z', '2026-06-01T11:00:00.000-00:00'],
  lastSeen: ['2026-06-01T12:00:00.000Z'],
  writer: ['', 'x'.repeat(256), 'x'.repeat(257)],
  cgroupId: ['0', '1', '2', '3', '4', '01', '-1', '9007199254740992', 'x'],
  cgroup: ['/', '/system.slice/nginx.service', 'relative', '/a\0b', `/${'x'.repeat(4095)}`, `/${'x'.repeat(4096)}`, '/grüße'],
  workload: ['', 'nginx.service', 'w'.repeat(512), 'w'.repeat(513), 'a\0'],
  pod: ['shop/cart-1', 'shop', '/cart', 'shop/', 'a/b/c', `${'n'.repeat(253)}/${'p'.repeat(253)}`, `${'n'.repeat(254)}/p`],
  container: ['e'.repeat(64), 'E'.repeat(64), 'e'.repeat(63), 'e'.repeat(65)],
};

/** One random change: a field's value replaced, a field dropped, duplicated, added, renamed, or the order shuffled. */
function mutate(fields: string[]): string[] {
  const f = [...fields];
  const pick = (): number => 2 * rnd(f.length / 2);
  switch (rnd(8)) {
    case 0:
    case 1:
    case 2: {
      const k = pick();
      const odd = ODD[f[k]];
      if (odd) f[k + 1] = odd[rnd(odd.length)];
      break;
    }
    case 3: {
      const name = Object.keys(ODD)[rnd(Object.keys(ODD).length)];
      const odd = ODD[name];
      f.push(name, odd[rnd(odd.length)]);
      break;
    }
    case 4:
      f.splice(pick(), 2);
      break;
    case 5: {
      const k = pick();
      f.push(f[k], f[k + 1]);
      break;
    }
    case 6: {
      const k = pick();
      f[k] = ['colour', 'Node', 'nodes', 'src ', 'icmptype', 'cgroupid', ''][rnd(7)];
      break;
    }
    default:
      for (let k = f.length / 2 - 1; k > 0; k--) {
        const j = rnd(k + 1);
        [f[2 * k], f[2 * j]] = [f[2 * j], f[2 * k]];
        [f[2 * k + 1], f[2 * j + 1]] = [f[2 * j + 1], f[2 * k + 1]];
      }
  }
  return f;
}

describe('entry decoder', () => {
  it('decodes what agents write exactly as validateEntry does, nearly all on the fast path', () => {
    const addresses = new AddressTable();
    const decoder = new EntryDecoder(addresses);
    const rows = new DecodedRows(addresses);
    const entries = agentEntries(3000);
    const ours = decodeAll(entries, decoder, rows);
    expect(ours).toEqual(reference(entries));
    expect(ours.every((o) => !('reason' in o))).toBe(true);
    // the slow path: the first sight of each label, nothing else
    expect(decoder.slow).toBe(3);
    decodeAll(entries, decoder, rows);
    expect(decoder.slow).toBe(3);
    // every reference was given back
    expect(addresses.size).toBe(0);
  });

  it('accepts and refuses mutated entries exactly as validateEntry does, with its values and reasons', () => {
    const addresses = new AddressTable();
    const decoder = new EntryDecoder(addresses);
    const rows = new DecodedRows(addresses);
    const base = agentEntries(400);
    const reasons = new Set<string>();
    let accepted = 0;
    for (let round = 0; round < 25; round++) {
      const entries: (string[] | null)[] = base.map((f) => {
        let m = mutate(f);
        if (rnd(3) === 0) m = mutate(m);
        return m;
      });
      entries.push(null, [], ['node']);
      const ours = decodeAll(entries, decoder, rows);
      const want = reference(entries);
      for (let i = 0; i < entries.length; i++) expect(ours[i], JSON.stringify(entries[i])).toEqual(want[i]);
      for (const o of want) if ('reason' in o) reasons.add(o.reason as string);
      accepted += want.filter((o) => !('reason' in o)).length;
    }
    // the mutations reach every kind of refusal and leave many entries acceptable
    expect([...reasons].sort()).toEqual(
      ['address', 'attribution', 'count', 'direction', 'duplicate_field', 'empty', 'family', 'icmp', 'iface', 'ifindex', 'missing_field', 'node', 'oversized', 'port', 'protocol', 'tcp_flags', 'time', 'unknown_field'].sort(),
    );
    expect(accepted).toBeGreaterThan(2000);
    expect(addresses.size).toBe(0);
  });
});

describe('RESP scanner', () => {
  const twenty = agentEntries(20);
  const replies = [
    '+OK\r\n',
    '-ERR wrong type\r\n',
    ':12345\r\n',
    '$-1\r\n',
    '*-1\r\n',
    '*0\r\n',
    '$0\r\n\r\n',
    `$11\r\nhas\r\nCRLF\r\n\r\n`,
    '*3\r\n*2\r\n:1\r\n*0\r\n$-1\r\n*1\r\n*1\r\n*1\r\n+deep\r\n',
    rangeReply(twenty).toString('latin1'),
    `*1\r\n*2\r\n${bulk('flowscope:{n}:flows')}${rangeReply(agentEntries(3)).toString('latin1')}`,
  ];
  const all = Buffer.from(replies.join(''), 'latin1');

  it('finds the same replies however the bytes are split', () => {
    for (const size of [1, 2, 3, 7, 64, 1000, all.length]) {
      const scanner = new RespScanner();
      const got: string[] = [];
      for (let p = 0; p < all.length; p += size) {
        expect(scanner.push(all.subarray(p, p + size), (r: RawReply) => {
          got.push(r.buf.toString('latin1', r.start, r.end));
          releaseReply(r);
        })).toBe(true);
      }
      expect(got).toEqual(replies);
    }
  });

  it('indexes stream replies, tells errors, and refuses what is not RESP', () => {
    const scanner = new RespScanner();
    const got: RawReply[] = [];
    scanner.push(all, (r) => got.push(r));
    expect(errorText(got[1])).toBe('ERR wrong type');
    expect(errorText(got[0])).toBeUndefined();
    const list = new EntryList();
    list.readRangeReply(got[9]);
    expect(list.count).toBe(20);
    expect(list.id(3)).toBe(`${NOW}-3`);
    expect([list.idMs(3), list.idSeq(3)]).toEqual([NOW, 3]);
    expect(list.fieldStrings(0)).toEqual(twenty[0]);
    list.readGroupReply(got[10]);
    expect(list.count).toBe(3);
    list.readGroupReply(got[4]); // nothing new
    expect(list.count).toBe(0);
    expect(new RespScanner().push(Buffer.from('hello\r\n'), () => undefined)).toBe(false);
  });
});
