/**
 * Flow records as Redis stream entries: every contract field, as a string
 * (shared/contract.md, "Redis streams"; docs/redis.md has the table).
 *
 *   numbers    decimal text ("1500")
 *   times      ISO 8601 UTC ("2024-05-01T12:00:00.000Z")
 *   tcpFlags   flag names joined by commas ("SYN,ACK"; "" when none)
 *   icmpType, icmpCode   only on icmp/icmpv6 records
 *   cgroupId, cgroup, workload, pod, container   attribution, only on
 *              records of a local socket (cgroupId), the others where known
 *
 * The sink encodes a record straight into the RESP bytes of its field/value
 * pairs, written into the queue's byte arena (entry-queue.ts): no string,
 * object or argument array per record. Constant runs (field names, the node
 * and writer pairs, an interface's pairs, direction and family, protocol)
 * are precomputed byte strings that are copied; numbers and ISO times are
 * written digit by digit. The relay decodes entries back into the packed
 * columns the service's record store uses.
 */
import type { CgroupLabeler, RecordBatch, RecordFields } from '../flow/record-batch.js';
import { protoName, protoNumber, tcpFlagNames, TCP_FLAG_NAMES, isIcmp } from '../flow/protocols.js';
import { metaDirection, metaFamily, metaIcmpCode, metaIcmpType, metaProto, packMeta, packPorts, portsDport, portsSport } from '../flow/tuple.js';
import { formatIPv4, formatIPv6, parseIp } from '../lib/ip.js';
import type { EntryQueue } from './entry-queue.js';

/** RESP bulk string of any text (node and interface names may be UTF-8). */
export const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');
const field = (name: string): string => bulk(name);

/** Field/value pairs of a record without and with the ICMP fields (plus one with a writer id). */
export const PAIRS_PLAIN = 17;
export const PAIRS_ICMP = 19;

const SRC = bytes(field('src'));
const DST = bytes(field('dst'));
const DPORT = bytes(field('dport'));
const ICMP_TYPE = bytes(field('icmpType'));
const ICMP_CODE = bytes(field('icmpCode'));
const PACKETS = bytes(field('packets'));
const BYTES = bytes(field('bytes'));
const FIRST_SEEN = bytes(field('firstSeen'));
const LAST_SEEN = bytes(field('lastSeen'));
/** direction and family pairs, by direction bit and family */
const DIR_FAM = [0, 1].map((d) => ({ 4: bytes(field('direction') + bulk(d ? 'egress' : 'ingress') + field('family') + bulk('4')), 6: bytes(field('direction') + bulk(d ? 'egress' : 'ingress') + field('family') + bulk('6')) }));
/** the proto pair and the sport field name, by protocol number */
const PROTO_SPORT = Array.from({ length: 256 }, (_, p) => bytes(field('proto') + bulk(protoName(p)) + field('sport')));
const FLAGS_VALUE = new Map<number, Buffer>();

/** What a cgroup id stands for (record-batch.ts: CgroupLabeler). */
export type CgroupLabel = NonNullable<ReturnType<CgroupLabeler>>;

/** Longest attribution values an entry may carry (the relay refuses longer ones; the sink leaves them out). */
export const MAX_CGROUP_LENGTH = 4096;
export const MAX_WORKLOAD_LENGTH = 512;
/** Kubernetes: a namespace is a DNS label (63), a pod name a DNS subdomain (253) */
export const MAX_POD_PART_LENGTH = 253;

/** The attribution pairs of a cgroup id as last encoded, reused while its label stays the same. */
interface AttributionPairs {
  label: CgroupLabel | undefined;
  bytes: Buffer;
  pairs: number;
}

const sameLabel = (a: CgroupLabel | undefined, b: CgroupLabel | undefined): boolean =>
  a === b ||
  (a !== undefined &&
    b !== undefined &&
    a.path === b.path &&
    a.workload === b.workload &&
    a.container === b.container &&
    a.pod?.namespace === b.pod?.namespace &&
    a.pod?.name === b.pod?.name);

/** A label the relay would accept (no agent writes longer values; a truncated one would be wrong). */
const labelFits = (l: CgroupLabel): boolean =>
  l.path.length <= MAX_CGROUP_LENGTH &&
  l.workload.length > 0 &&
  l.workload.length <= MAX_WORKLOAD_LENGTH &&
  (l.pod === undefined || (l.pod.namespace.length <= MAX_POD_PART_LENGTH && l.pod.name.length <= MAX_POD_PART_LENGTH && !`${l.pod.namespace}${l.pod.name}`.includes('/')));

/**
 * `cgroupId`, and where the id has a label, `cgroup` (path), `workload`,
 * `pod` (`NAMESPACE/NAME`) and `container`.
 */
function attributionPairs(id: number, label: CgroupLabel | undefined): AttributionPairs {
  let text = field('cgroupId') + bulk(String(id));
  let pairs = 1;
  if (label !== undefined && labelFits(label)) {
    text += field('cgroup') + bulk(label.path) + field('workload') + bulk(label.workload);
    pairs += 2;
    if (label.pod) {
      text += field('pod') + bulk(`${label.pod.namespace}/${label.pod.name}`);
      pairs++;
    }
    if (label.container) {
      text += field('container') + bulk(label.container);
      pairs++;
    }
  }
  return { label, bytes: bytes(text), pairs };
}

function flagsValue(bits: number): Buffer {
  let v = FLAGS_VALUE.get(bits);
  if (v === undefined) FLAGS_VALUE.set(bits, (v = bytes(field('tcpFlags') + bulk(tcpFlagNames(bits).join(',')))));
  return v;
}

/** Copies a small constant (a loop beats Buffer.copy's call overhead below ~64 bytes). */
function put(buf: Buffer, pos: number, src: Uint8Array): number {
  const n = src.length;
  if (n > 64) {
    buf.set(src, pos);
    return pos + n;
  }
  for (let k = 0; k < n; k++) buf[pos + k] = src[k];
  return pos + n;
}

/** Number of decimal digits of a non-negative integer below 2^53. */
function digits(v: number): number {
  let n = 1;
  while (v >= 10) {
    v = Math.floor(v / 10);
    n++;
  }
  return n;
}

/** Writes the decimal digits of a non-negative integer below 2^53; returns the position after them. */
function putDecimal(buf: Buffer, pos: number, v: number): number {
  const n = digits(v);
  let at = pos + n - 1;
  while (v >= 10) {
    const q = Math.floor(v / 10);
    buf[at--] = 48 + (v - q * 10);
    v = q;
  }
  buf[at] = 48 + v;
  return pos + n;
}

/** `$<digits>\r\n<v>\r\n` for a non-negative integer below 2^53. */
function putBulkDecimal(buf: Buffer, pos: number, v: number): number {
  buf[pos++] = 36; // $
  pos = putDecimal(buf, pos, digits(v));
  buf[pos++] = 13;
  buf[pos++] = 10;
  pos = putDecimal(buf, pos, v);
  buf[pos++] = 13;
  buf[pos++] = 10;
  return pos;
}

/** `$<len>\r\n<s>\r\n` for an ASCII text (addresses). */
function putBulkAscii(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  buf[pos++] = 36;
  pos = putDecimal(buf, pos, n);
  buf[pos++] = 13;
  buf[pos++] = 10;
  for (let k = 0; k < n; k++) buf[pos + k] = s.charCodeAt(k);
  pos += n;
  buf[pos++] = 13;
  buf[pos++] = 10;
  return pos;
}

const MS_PER_DAY = 86_400_000;
/** toISOString's plain form covers years 0000-9999; outside it (never from a real clock) it is longer */
const MAX_PLAIN_ISO_MS = 253_402_300_800_000;
let isoDay = -1;
const isoDayBytes = Buffer.alloc(11);

function put2(buf: Buffer, pos: number, v: number): void {
  const t = (v / 10) | 0;
  buf[pos] = 48 + t;
  buf[pos + 1] = 48 + v - t * 10;
}

/** `$24\r\n2024-05-01T12:00:00.000Z\r\n`, as Date.toISOString() writes it. */
function putBulkIso(buf: Buffer, pos: number, ms: number): number {
  if (!(ms >= 0 && ms < MAX_PLAIN_ISO_MS)) return putBulkAscii(buf, pos, new Date(ms).toISOString());
  const day = Math.floor(ms / MS_PER_DAY);
  if (day !== isoDay) {
    isoDayBytes.write(new Date(day * MS_PER_DAY).toISOString().slice(0, 11), 0, 'latin1');
    isoDay = day;
  }
  let r = ms - day * MS_PER_DAY;
  buf[pos] = 36; // $24\r\n
  buf[pos + 1] = 50;
  buf[pos + 2] = 52;
  buf[pos + 3] = 13;
  buf[pos + 4] = 10;
  pos += 5;
  for (let k = 0; k < 11; k++) buf[pos + k] = isoDayBytes[k];
  const h = Math.floor(r / 3_600_000);
  r -= h * 3_600_000;
  const m = Math.floor(r / 60_000);
  r -= m * 60_000;
  const s = Math.floor(r / 1000);
  const milli = r - s * 1000;
  put2(buf, pos + 11, h);
  buf[pos + 13] = 58; // :
  put2(buf, pos + 14, m);
  buf[pos + 16] = 58;
  put2(buf, pos + 17, s);
  buf[pos + 19] = 46; // .
  const c = (milli / 100) | 0;
  buf[pos + 20] = 48 + c;
  put2(buf, pos + 21, milli - c * 100);
  buf[pos + 23] = 90; // Z
  buf[pos + 24] = 13;
  buf[pos + 25] = 10;
  return pos + 26;
}

/** cgroup ids whose attribution pairs the encoder keeps */
const MAX_CACHED_CGROUPS = 16_384;

/** Encodes the records of a batch into the sink's queue. */
export class EntryEncoder {
  private readonly nodePair: Buffer;
  private readonly extraPairs: number;
  /** "iface" and "ifindex" pairs by ifindex: names are stable while attached */
  private readonly ifacePairs = new Map<number, Buffer>();
  private ifaceNameOf: ((ifindex: number) => string) | undefined;
  /** most bytes a record can take besides its interface and attribution pairs */
  private readonly maxFixed: number;
  /** attribution pairs by cgroup id (flows of one socket share them) */
  private readonly attribution = new Map<number, AttributionPairs>();

  /**
   * `writer`: an id of the writing process, stored in every entry (field
   * `writer`), so that the sink can tell its own entries from another
   * writer's on an ID clash (stream-sink.ts).
   */
  constructor(
    readonly node: string,
    readonly writer?: string,
  ) {
    this.nodePair = bytes(field('node') + bulk(node) + (writer === undefined ? '' : field('writer') + bulk(writer)));
    this.extraPairs = writer === undefined ? 0 : 1;
    // constants ~300 bytes, two addresses <= 2 x 52, six numbers <= 6 x 24, four times <= 4 x 40
    this.maxFixed = this.nodePair.length + 1024;
  }

  private ifacePair(batch: RecordBatch, ifindex: number): Buffer {
    if (this.ifaceNameOf !== batch.ifaceName) {
      // a different namer (a new agent in tests) may name indexes differently
      this.ifacePairs.clear();
      this.ifaceNameOf = batch.ifaceName;
    }
    let pair = this.ifacePairs.get(ifindex);
    if (pair === undefined) {
      pair = bytes(field('iface') + bulk(batch.ifaceName(ifindex)) + field('ifindex') + bulk(String(ifindex)));
      this.ifacePairs.set(ifindex, pair);
    }
    return pair;
  }

  /** The attribution pairs of a record's cgroup id, as its batch labels it now. */
  private attributionOf(batch: RecordBatch, id: number): AttributionPairs {
    const label = batch.labels?.(id);
    let a = this.attribution.get(id);
    if (a === undefined || !sameLabel(a.label, label)) {
      // ids of cgroups long gone would pile up: start afresh past a node's worth of cgroups
      if (this.attribution.size >= MAX_CACHED_CGROUPS) this.attribution.clear();
      a = attributionPairs(id, label);
      this.attribution.set(id, a);
    }
    return a;
  }

  /** Encodes every record of the batch into the queue; returns how many did not fit (queue full). */
  encode(batch: RecordBatch, queue: EntryQueue): number {
    const interval = bytes(field('start') + bulk(new Date(batch.startMs).toISOString()) + field('end') + bulk(new Date(batch.endMs).toISOString()));
    const addresses = batch.addresses;
    const endMs = batch.endMs;
    const nodePair = this.nodePair;
    const cgroup = batch.cgroup;
    for (let i = 0; i < batch.count; i++) {
      const iface = this.ifacePair(batch, batch.ifindex[i]);
      // flows without a local socket (cgroup id 0) cost nothing more
      const attribution = cgroup[i] === 0 ? undefined : this.attributionOf(batch, cgroup[i]);
      const room = queue.reserve(this.maxFixed + iface.length + (attribution === undefined ? 0 : attribution.bytes.length));
      if (!room) return batch.count - i;
      const buf = room.buf;
      const start = room.pos;
      const meta = batch.meta[i];
      const ports = batch.ports[i];
      const proto = metaProto(meta);
      const icmp = isIcmp(proto);
      let p = start + nodePair.copy(buf, start);
      p = put(buf, p, iface);
      p = put(buf, p, DIR_FAM[meta & 1][metaFamily(meta)]);
      p = put(buf, p, SRC);
      p = putBulkAscii(buf, p, addresses.text(batch.srcId[i]));
      p = put(buf, p, DST);
      p = putBulkAscii(buf, p, addresses.text(batch.dstId[i]));
      p = put(buf, p, PROTO_SPORT[proto]);
      p = putBulkDecimal(buf, p, portsSport(ports));
      p = put(buf, p, DPORT);
      p = putBulkDecimal(buf, p, portsDport(ports));
      if (icmp) {
        p = put(buf, p, ICMP_TYPE);
        p = putBulkDecimal(buf, p, metaIcmpType(meta));
        p = put(buf, p, ICMP_CODE);
        p = putBulkDecimal(buf, p, metaIcmpCode(meta));
      }
      p = put(buf, p, PACKETS);
      p = putBulkDecimal(buf, p, batch.packets[i]);
      p = put(buf, p, BYTES);
      p = putBulkDecimal(buf, p, batch.bytes[i]);
      p = put(buf, p, flagsValue(batch.tcpFlags[i]));
      p += interval.copy(buf, p);
      p = put(buf, p, FIRST_SEEN);
      p = putBulkIso(buf, p, batch.firstSeen[i]);
      p = put(buf, p, LAST_SEEN);
      p = putBulkIso(buf, p, batch.lastSeen[i]);
      let pairs = (icmp ? PAIRS_ICMP : PAIRS_PLAIN) + this.extraPairs;
      if (attribution !== undefined) {
        p += attribution.bytes.copy(buf, p);
        pairs += attribution.pairs;
      }
      queue.commit(p - start, pairs, endMs);
    }
    return 0;
  }
}

/** A stream entry decoded into the packed form of the service's columns (a record's fields, as buildRecord takes them). */
export interface DecodedEntry extends RecordFields {
  /** the writing process's id (stream-sink.ts), when the entry has one */
  writer?: string;
  /** what the entry says its cgroupId stands for (cgroup, workload, pod, container), when it says */
  label?: CgroupLabel;
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
  'attribution',
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

/** Every field a flowscope agent writes (the contract's, `writer`, and the attribution's). */
export const KNOWN_FIELDS = new Set([
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
  'cgroupId',
  'cgroup',
  'workload',
  'pod',
  'container',
]);
const REQUIRED_FIELDS = ['node', 'iface', 'ifindex', 'direction', 'family', 'src', 'dst', 'proto', 'sport', 'dport', 'packets', 'bytes', 'tcpFlags', 'start', 'end', 'firstSeen', 'lastSeen'];
export const MAX_VALUE_LENGTH = 256;
/** longest value of a field, where it is not MAX_VALUE_LENGTH */
export const MAX_LENGTH_OF: Record<string, number> = { cgroup: MAX_CGROUP_LENGTH, workload: MAX_WORKLOAD_LENGTH, pod: 2 * MAX_POD_PART_LENGTH + 1 };
const CONTAINER_ID = /^[0-9a-f]{64}$/;

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

export const IFACE_NAME = /^[^\s/:]{1,15}$/;

/** The canonical text of an address of the family (RFC 5952 for IPv6), or undefined. */
export function canonicalAddress(text: string, family: 4 | 6): string | undefined {
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
    if (value.length > (MAX_LENGTH_OF[name] ?? MAX_VALUE_LENGTH)) return reject('oversized', name);
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
  const attribution = attributionOf(f);
  if (attribution !== undefined && 'reason' in attribution) return attribution;
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
  if (attribution !== undefined) {
    entry.cgroupId = attribution.cgroupId;
    if (attribution.label) entry.label = attribution.label;
  }
  return entry;
}

/**
 * The attribution fields of an entry: none, or `cgroupId` (a decimal in
 * [1, 2^53)) alone (the agent could not resolve the id: the record's cgroup
 * is null), or with `cgroup` (an absolute path without NUL) and `workload`
 * (1-512 characters without NUL), and optionally `pod` (`NAMESPACE/NAME`)
 * and `container` (64 hex digits). Anything else is refused.
 */
function attributionOf(f: Record<string, string>): { cgroupId: number; label?: CgroupLabel } | EntryReject | undefined {
  const { cgroupId: idText, cgroup, workload, pod, container } = f;
  if (idText === undefined) {
    if (cgroup === undefined && workload === undefined && pod === undefined && container === undefined) return undefined;
    return reject('attribution', 'cgroup, workload, pod or container without cgroupId');
  }
  const cgroupId = decimal(idText, MAX_COUNT);
  if (!cgroupId) return reject('attribution', 'cgroupId', idText);
  if (cgroup === undefined) {
    if (workload === undefined && pod === undefined && container === undefined) return { cgroupId };
    return reject('attribution', 'workload, pod or container without cgroup');
  }
  if (!cgroup.startsWith('/') || cgroup.includes('\0')) return reject('attribution', 'cgroup', cgroup);
  if (workload === undefined) return reject('attribution', 'cgroup without workload');
  if (workload === '' || workload.includes('\0')) return reject('attribution', 'workload', workload);
  const label: CgroupLabel = { path: cgroup, workload };
  if (pod !== undefined) {
    const slash = pod.indexOf('/');
    const namespace = pod.slice(0, slash);
    const name = pod.slice(slash + 1);
    if (slash < 1 || name === '' || name.includes('/') || pod.includes('\0') || namespace.length > MAX_POD_PART_LENGTH || name.length > MAX_POD_PART_LENGTH) return reject('attribution', 'pod', pod);
    label.pod = { namespace, name };
  }
  if (container !== undefined) {
    if (!CONTAINER_ID.test(container)) return reject('attribution', 'container', container);
    label.container = container;
  }
  return { cgroupId, label };
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
