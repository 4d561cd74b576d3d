/**
 * Flow records as Redis stream entries: every contract field, as a string
 * (shared/contract.md, "Redis streams"; docs/redis.md has the table).
 *
 *   numbers    decimal text ("1500")
 *   times      ISO 8601 UTC ("2024-05-01T12:00:00.000Z")
 *   tcpFlags   flag names joined by commas ("SYN,ACK"; "" when none)
 *   icmpType, icmpCode   only on icmp/icmpv6 records
 *
 * The sink encodes a record straight into the RESP text of its field/value
 * pairs (one string per record, no intermediate object or argument array):
 * that string is what the queue keeps and what goes on the wire, so a
 * buffered record costs one flat string. The relay decodes entries back into
 * the packed columns the service's record store uses.
 */
import type { RecordBatch } from '../flow/record-batch.js';
import { protoName, protoNumber, tcpFlagNames, TCP_FLAG_NAMES, isIcmp } from '../flow/protocols.js';
import { metaDirection, metaFamily, metaIcmpCode, metaIcmpType, metaProto, packMeta, packPorts, portsDport, portsSport } from '../flow/tuple.js';
import { formatIPv4, formatIPv6, parseIp } from '../lib/ip.js';

/** RESP bulk string of an ASCII text. */
const bulkAscii = (s: string): string => `$${s.length}\r\n${s}\r\n`;
/** RESP bulk string of any text (node and interface names may be UTF-8). */
export const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;

const F = {
  node: bulkAscii('node'),
  iface: bulkAscii('iface'),
  ifindex: bulkAscii('ifindex'),
  direction: bulkAscii('direction'),
  family: bulkAscii('family'),
  src: bulkAscii('src'),
  dst: bulkAscii('dst'),
  proto: bulkAscii('proto'),
  sport: bulkAscii('sport'),
  dport: bulkAscii('dport'),
  icmpType: bulkAscii('icmpType'),
  icmpCode: bulkAscii('icmpCode'),
  packets: bulkAscii('packets'),
  bytes: bulkAscii('bytes'),
  tcpFlags: bulkAscii('tcpFlags'),
  start: bulkAscii('start'),
  end: bulkAscii('end'),
  firstSeen: bulkAscii('firstSeen'),
  lastSeen: bulkAscii('lastSeen'),
  writer: bulkAscii('writer'),
};

/** Field/value pairs of a record without and with the ICMP fields (plus one with a writer id). */
export const PAIRS_PLAIN = 17;
export const PAIRS_ICMP = 19;

const DIRECTION_VALUE = [F.direction + bulkAscii('ingress'), F.direction + bulkAscii('egress')];
const FAMILY_VALUE: Record<number, string> = { 4: F.family + bulkAscii('4'), 6: F.family + bulkAscii('6') };
const PROTO_VALUE = Array.from({ length: 256 }, (_, p) => F.proto + bulkAscii(protoName(p)));
const FLAGS_VALUE = new Map<number, string>();

function flagsValue(bits: number): string {
  let v = FLAGS_VALUE.get(bits);
  if (v === undefined) FLAGS_VALUE.set(bits, (v = F.tcpFlags + bulkAscii(tcpFlagNames(bits).join(','))));
  return v;
}

/**
 * The string built above is a rope of ~40 pieces (V8 concatenation makes
 * cons strings). A round trip through a scratch buffer makes it one flat
 * string: a queued record then costs ~500 bytes instead of ~1.2 KB of rope
 * nodes, the garbage collector has far less to trace, and the socket write
 * does not flatten it again. (Records are < 2 KB; the scratch is 64 KB.)
 */
const scratch = Buffer.allocUnsafe(64 * 1024);
function flatten(s: string): string {
  const n = scratch.write(s, 0, 'utf8');
  return scratch.toString('utf8', 0, n);
}

/** Encodes the records of a batch, handing each to `emit(fields, pairs)`. */
export class EntryEncoder {
  private readonly nodePair: string;
  private readonly extraPairs: number;
  /** "iface" and "ifindex" pairs by ifindex: names are stable while attached */
  private readonly ifacePairs = new Map<number, string>();
  private ifaceNameOf: ((ifindex: number) => string) | undefined;

  /**
   * `writer`: an id of the writing process, stored in every entry (field
   * `writer`), so that the sink can tell its own entries from another
   * writer's on an ID clash (stream-sink.ts).
   */
  constructor(
    readonly node: string,
    readonly writer?: string,
  ) {
    this.nodePair = F.node + bulk(node) + (writer === undefined ? '' : F.writer + bulkAscii(writer));
    this.extraPairs = writer === undefined ? 0 : 1;
  }

  private ifacePair(batch: RecordBatch, ifindex: number): string {
    if (this.ifaceNameOf !== batch.ifaceName) {
      // a different namer (a new agent in tests) may name indexes differently
      this.ifacePairs.clear();
      this.ifaceNameOf = batch.ifaceName;
    }
    let pair = this.ifacePairs.get(ifindex);
    if (pair === undefined) {
      pair = F.iface + bulk(batch.ifaceName(ifindex)) + F.ifindex + bulkAscii(String(ifindex));
      this.ifacePairs.set(ifindex, pair);
    }
    return pair;
  }

  encode(batch: RecordBatch, emit: (fields: string, pairs: number) => void): void {
    const interval = F.start + bulkAscii(new Date(batch.startMs).toISOString()) + F.end + bulkAscii(new Date(batch.endMs).toISOString());
    const addresses = batch.addresses;
    for (let i = 0; i < batch.count; i++) {
      const meta = batch.meta[i];
      const ports = batch.ports[i];
      const proto = metaProto(meta);
      const icmp = isIcmp(proto);
      let s =
        this.nodePair +
        this.ifacePair(batch, batch.ifindex[i]) +
        DIRECTION_VALUE[meta & 1] +
        FAMILY_VALUE[metaFamily(meta)] +
        F.src +
        bulkAscii(addresses.text(batch.srcId[i])) +
        F.dst +
        bulkAscii(addresses.text(batch.dstId[i])) +
        PROTO_VALUE[proto] +
        F.sport +
        bulkAscii(String(portsSport(ports))) +
        F.dport +
        bulkAscii(String(portsDport(ports)));
      if (icmp) s += F.icmpType + bulkAscii(String(metaIcmpType(meta))) + F.icmpCode + bulkAscii(String(metaIcmpCode(meta)));
      s +=
        F.packets +
        bulkAscii(String(batch.packets[i])) +
        F.bytes +
        bulkAscii(String(batch.bytes[i])) +
        flagsValue(batch.tcpFlags[i]) +
        interval +
        F.firstSeen +
        bulkAscii(new Date(batch.firstSeen[i]).toISOString()) +
        F.lastSeen +
        bulkAscii(new Date(batch.lastSeen[i]).toISOString());
      emit(flatten(s), (icmp ? PAIRS_ICMP : PAIRS_PLAIN) + this.extraPairs);
    }
  }
}

/** A stream entry decoded into the packed form of the service's columns. */
export interface DecodedEntry {
  node: string;
  iface: string;
  ifindex: number;
  meta: number;
  ports: number;
  src: string;
  dst: string;
  packets: number;
  bytes: number;
  tcpFlags: number;
  startMs: number;
  endMs: number;
  firstSeenMs: number;
  lastSeenMs: number;
  /** the writing process's id (stream-sink.ts), when the entry has one */
  writer?: string;
}

/**
 * Why the relay refused an entry (or an interfaces hash value): a fixed list,
 * used as a metric label (flowscope_relay_rejected_total{node,reason}).
 */
export const REJECT_REASONS = [
  'missing_field',
  'unknown_field',
  'duplicate_field',
  'oversized',
  'node',
  'iface',
  'ifindex',
  'direction',
  'family',
  'address',
  'protocol',
  'port',
  'icmp',
  'tcp_flags',
  'count',
  'time',
  'empty',
  'interfaces',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface EntryReject {
  reason: RejectReason;
  /** what was wrong, for the log (field name and a prefix of the value) */
  detail: string;
}

/** What an entry is checked against. */
export interface EntryLimits {
  /** the node whose stream the entry is in: its `node` field must say so */
  node: string;
  nowMs: number;
  /** times later than now by more than this are refused */
  maxFutureMs: number;
  /** times earlier than now by more than this are refused */
  maxAgeMs: number;
}

/** A day: agents and relay may disagree on the time by that much (a stepped clock, a bad NTP). */
export const DEFAULT_MAX_FUTURE_MS = 86_400_000;
/** 30 days: older than anything an agent still buffers or a flow lives (a week). */
export const DEFAULT_MAX_AGE_MS = 30 * 86_400_000;

const FLAG_BIT = new Map<string, number>(TCP_FLAG_NAMES.map((name, i) => [name, 1 << i]));

function flagBits(text: string): number | undefined {
  if (text === '') return 0;
  let bits = 0;
  for (const name of text.split(',')) {
    const bit = FLAG_BIT.get(name);
    if (bit === undefined) return undefined;
    bits |= bit;
  }
  return bits;
}

/** Every field a flowscope agent writes (the contract's, `writer`, and `cgroup` from the attribution). */
const KNOWN_FIELDS = new Set([
  'node',
  'iface',
  'ifindex',
  'direction',
  'family',
  'src',
  'dst',
  'proto',
  'sport',
  'dport',
  'icmpType',
  'icmpCode',
  'packets',
  'bytes',
  'tcpFlags',
  'start',
  'end',
  'firstSeen',
  'lastSeen',
  'writer',
  'cgroup',
]);
const REQUIRED_FIELDS = ['node', 'iface', 'ifindex', 'direction', 'family', 'src', 'dst', 'proto', 'sport', 'dport', 'packets', 'bytes', 'tcpFlags', 'start', 'end', 'firstSeen', 'lastSeen'];
const MAX_VALUE_LENGTH = 256;
const MAX_CGROUP_LENGTH = 4096;

/** A plain decimal integer in [0, 2^53): no sign, exponent, fraction, hex or leading zeros. */
const DECIMAL = /^(?:0|[1-9]\d{0,15})$/;
function decimal(text: string, max: number): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}
const MAX_COUNT = Number.MAX_SAFE_INTEGER; // 2^53 - 1

/** ISO 8601 with a date, a time and a zone, as toISOString() writes it (and other zones). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

const IFACE_NAME = /^[^\s/:]{1,15}$/;

/** The canonical text of an address of the family (RFC 5952 for IPv6), or undefined. */
function canonicalAddress(text: string, family: 4 | 6): string | undefined {
  if (text.length > 45 || text.includes('%')) return undefined;
  const parsed = parseIp(text);
  if (!parsed || parsed.family !== family) return undefined;
  return family === 4 ? formatIPv4(parsed.bytes, 0) : formatIPv6(parsed.bytes, 0);
}

const reject = (reason: RejectReason, field: string, value?: string): EntryReject => ({
  reason,
  detail: value === undefined ? field : `${field}=${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`,
});

/**
 * Checks and decodes one entry's [field, value, field, value, ...] list. The
 * streams are input from outside the relay (any client with write access to
 * Redis), so everything is checked: only known fields, each once; counts are
 * plain decimal integers in [0, 2^53); times are ISO 8601 within
 * [now - maxAge, now + maxFuture]; addresses are canonical and of the
 * entry's family; protocol, direction, ports, ICMP type/code, TCP flags and
 * interface name are what an agent writes; `node` is the stream's node.
 */
export function validateEntry(fields: string[] | null, limits: EntryLimits): DecodedEntry | EntryReject {
  if (!fields || fields.length === 0) return reject('empty', 'entry');
  if (fields.length % 2 !== 0 || fields.length > 2 * KNOWN_FIELDS.size) return reject('oversized', `${fields.length / 2} fields`);
  const f: Record<string, string> = Object.create(null);
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    if (!KNOWN_FIELDS.has(name)) return reject('unknown_field', name.length > 40 ? `${name.slice(0, 40)}...` : name);
    if (name in f) return reject('duplicate_field', name);
    if (value.length > (name === 'cgroup' ? MAX_CGROUP_LENGTH : MAX_VALUE_LENGTH)) return reject('oversized', name);
    f[name] = value;
  }
  for (const name of REQUIRED_FIELDS) if (!(name in f)) return reject('missing_field', name);
  if (f.node !== limits.node) return reject('node', 'node', f.node);
  if (!IFACE_NAME.test(f.iface)) return reject('iface', 'iface', f.iface);
  const ifindex = decimal(f.ifindex, 0xffffffff);
  if (ifindex === undefined) return reject('ifindex', 'ifindex', f.ifindex);
  const direction = f.direction === 'ingress' || f.direction === 'egress' ? f.direction : undefined;
  if (direction === undefined) return reject('direction', 'direction', f.direction);
  const family = f.family === '4' ? 4 : f.family === '6' ? 6 : undefined;
  if (family === undefined) return reject('family', 'family', f.family);
  const src = canonicalAddress(f.src, family);
  if (src !== f.src) return reject('address', 'src', f.src);
  const dst = canonicalAddress(f.dst, family);
  if (dst !== f.dst) return reject('address', 'dst', f.dst);
  const proto = protoNumber(f.proto);
  if (proto === undefined || protoName(proto) !== f.proto) return reject('protocol', 'proto', f.proto);
  const sport = decimal(f.sport, 65535);
  if (sport === undefined) return reject('port', 'sport', f.sport);
  const dport = decimal(f.dport, 65535);
  if (dport === undefined) return reject('port', 'dport', f.dport);
  let icmpType = 0;
  let icmpCode = 0;
  if (isIcmp(proto)) {
    if (f.icmpType === undefined || f.icmpCode === undefined) return reject('missing_field', f.icmpType === undefined ? 'icmpType' : 'icmpCode');
    const t = decimal(f.icmpType, 255);
    const c = decimal(f.icmpCode, 255);
    if (t === undefined) return reject('icmp', 'icmpType', f.icmpType);
    if (c === undefined) return reject('icmp', 'icmpCode', f.icmpCode);
    icmpType = t;
    icmpCode = c;
  } else if (f.icmpType !== undefined || f.icmpCode !== undefined) {
    return reject('icmp', 'icmpType/icmpCode on a non-ICMP entry');
  }
  const tcpFlags = flagBits(f.tcpFlags);
  if (tcpFlags === undefined) return reject('tcp_flags', 'tcpFlags', f.tcpFlags);
  const packets = decimal(f.packets, MAX_COUNT);
  if (packets === undefined) return reject('count', 'packets', f.packets);
  const bytes = decimal(f.bytes, MAX_COUNT);
  if (bytes === undefined) return reject('count', 'bytes', f.bytes);
  const times = [0, 0, 0, 0];
  const names = ['start', 'end', 'firstSeen', 'lastSeen'] as const;
  for (let i = 0; i < 4; i++) {
    const text = f[names[i]];
    const ms = ISO_TIME.test(text) ? Date.parse(text) : NaN;
    if (!(ms >= limits.nowMs - limits.maxAgeMs && ms <= limits.nowMs + limits.maxFutureMs)) return reject('time', names[i], text);
    times[i] = ms;
  }
  if (f.cgroup !== undefined && f.cgroup !== '' && !f.cgroup.startsWith('/')) return reject('unknown_field', 'cgroup', f.cgroup);
  const entry: DecodedEntry = {
    node: f.node,
    iface: f.iface,
    ifindex,
    meta: packMeta(direction, family, proto, icmpType, icmpCode),
    ports: packPorts(sport, dport),
    src,
    dst,
    packets,
    bytes,
    tcpFlags,
    startMs: times[0],
    endMs: times[1],
    firstSeenMs: times[2],
    lastSeenMs: times[3],
  };
  if (f.writer !== undefined) entry.writer = f.writer;
  return entry;
}

export const isReject = (d: object): d is EntryReject => 'reason' in d;

/**
 * Decodes an entry that is known to come from a flowscope agent (tests,
 * tools): the checks of validateEntry with its own node and no time bounds.
 */
export function decodeEntry(fields: string[]): DecodedEntry | undefined {
  let node = '';
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'node') node = fields[i + 1];
  const d = validateEntry(fields, { node, nowMs: 0, maxFutureMs: Infinity, maxAgeMs: Infinity });
  return isReject(d) ? undefined : d;
}

/** For tests and tools: the direction text of a packed meta. */
export const entryDirection = metaDirection;

/** An interfaces hash value (flowscope:{NODE}:interfaces) as the relay keeps it. */
export interface PublishedInterface {
  node: string;
  at?: string;
  iface: string;
  ifindex: number;
  hook: string;
  rx: PublishedCounters;
  tx: PublishedCounters;
}
export interface PublishedCounters {
  packets: number;
  bytes: number;
  pps: number;
  bps: number;
  otherPackets: number;
  otherBytes: number;
  overflowPackets: number;
  overflowBytes: number;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_COUNT;
/** rates: finite, not negative, below 2^53 */
const isRate = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX_COUNT;

function counters(v: unknown): PublishedCounters | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (!isCount(o.packets) || !isCount(o.bytes) || !isRate(o.pps) || !isRate(o.bps)) return undefined;
  const c: PublishedCounters = { packets: o.packets, bytes: o.bytes, pps: o.pps, bps: o.bps, otherPackets: 0, otherBytes: 0, overflowPackets: 0, overflowBytes: 0 };
  for (const k of ['otherPackets', 'otherBytes', 'overflowPackets', 'overflowBytes'] as const) {
    if (o[k] === undefined) continue;
    if (!isCount(o[k])) return undefined;
    c[k] = o[k];
  }
  return c;
}

/**
 * Checks one value of a node's interfaces hash (the JSON of an agent's
 * /api/v1/interfaces entry, with `node` and `at`): a clean copy with only the
 * known fields, every count an integer in [0, 2^53), or a reject.
 */
export function validateInterface(value: string, node: string): PublishedInterface | EntryReject {
  if (value.length > 4096) return reject('interfaces', 'value longer than 4096 characters');
  let o: unknown;
  try {
    o = JSON.parse(value);
  } catch {
    return reject('interfaces', 'not JSON', value);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return reject('interfaces', 'not an object', value);
  const r = o as Record<string, unknown>;
  if (typeof r.iface !== 'string' || !IFACE_NAME.test(r.iface)) return reject('interfaces', 'iface', String(r.iface));
  if (typeof r.ifindex !== 'number' || !Number.isInteger(r.ifindex) || r.ifindex < 0 || r.ifindex > 0xffffffff) return reject('interfaces', 'ifindex', String(r.ifindex));
  if (typeof r.hook !== 'string' || r.hook.length > 16) return reject('interfaces', 'hook', String(r.hook));
  const rx = counters(r.rx);
  const tx = counters(r.tx);
  if (!rx || !tx) return reject('interfaces', rx ? 'tx' : 'rx', JSON.stringify(rx ? r.tx : r.rx) ?? 'undefined');
  const out: PublishedInterface = { node, iface: r.iface, ifindex: r.ifindex, hook: r.hook, rx, tx };
  if (typeof r.at === 'string' && ISO_TIME.test(r.at)) out.at = r.at;
  return out;
}
