/**
 * The relay's decoder: stream entries, as places in a reply's bytes
 * (resp-reader.ts), checked and decoded straight into columns (DecodedRows)
 * with no string, object or array per field.
 *
 * Two paths, one answer. The fast path reads each field from the bytes and
 * accepts an entry only in the plain form an agent writes (names as written,
 * decimals, `2024-05-01T12:00:00.000Z` times, canonical addresses, ...). On
 * anything else it decides nothing: the entry goes to the slow path, the
 * reference checks of validateEntry (entry-encoding.ts) on the entry's fields
 * as strings, which accept or refuse it with a reason. So an entry is accepted
 * exactly when validateEntry accepts it, with the same values (tested against
 * each other, test/redis/entry-decoder.test.ts), and every refusal has
 * validateEntry's reason.
 *
 * Values that repeat are recognised by their bytes, not decoded again: the
 * node name, interface names, IPv6 texts already found canonical, and the
 * attribution labels of a node's cgroup ids (bounded caches).
 */
import type { AddressTable } from '../flow/address-table.js';
import { isIcmp, TCP_FLAG_NAMES } from '../flow/protocols.js';
import { packMeta, packPorts } from '../flow/tuple.js';
import { growFloat64, growUint16, growUint32 } from '../lib/typed-arrays.js';
import {
  canonicalAddress,
  IFACE_NAME,
  isReject,
  MAX_CGROUP_LENGTH,
  MAX_POD_PART_LENGTH,
  MAX_VALUE_LENGTH,
  MAX_WORKLOAD_LENGTH,
  validateEntry,
  type CgroupLabel,
  type DecodedEntry,
  type EntryLimits,
  type EntryReject,
} from './entry-encoding.js';
import type { EntryList } from './resp-reader.js';

/** Decoded entries of one node as columns; src/dst are address ids holding one reference each. */
export class DecodedRows {
  count = 0;
  ifindex = new Uint32Array(256);
  meta = new Uint32Array(256);
  ports = new Uint32Array(256);
  srcId = new Uint32Array(256);
  dstId = new Uint32Array(256);
  packets = new Float64Array(256);
  bytes = new Float64Array(256);
  tcpFlags = new Uint16Array(256);
  startMs = new Float64Array(256);
  endMs = new Float64Array(256);
  firstSeen = new Float64Array(256);
  lastSeen = new Float64Array(256);
  /** 0: none */
  cgroupId = new Float64Array(256);
  iface: string[] = [];
  label: (CgroupLabel | undefined)[] = [];

  constructor(readonly addresses: AddressTable) {}

  /** Room for one more row; returns its index. */
  add(): number {
    const i = this.count++;
    if (i === this.ifindex.length) {
      const n = i + 1;
      this.ifindex = growUint32(this.ifindex, n);
      this.meta = growUint32(this.meta, n);
      this.ports = growUint32(this.ports, n);
      this.srcId = growUint32(this.srcId, n);
      this.dstId = growUint32(this.dstId, n);
      this.packets = growFloat64(this.packets, n);
      this.bytes = growFloat64(this.bytes, n);
      this.tcpFlags = growUint16(this.tcpFlags, n);
      this.startMs = growFloat64(this.startMs, n);
      this.endMs = growFloat64(this.endMs, n);
      this.firstSeen = growFloat64(this.firstSeen, n);
      this.lastSeen = growFloat64(this.lastSeen, n);
      this.cgroupId = growFloat64(this.cgroupId, n);
    }
    return i;
  }

  /** Adds an entry decoded by validateEntry. */
  push(e: DecodedEntry): void {
    const i = this.add();
    this.ifindex[i] = e.ifindex;
    this.meta[i] = e.meta;
    this.ports[i] = e.ports;
    this.srcId[i] = this.addresses.intern(e.src);
    this.dstId[i] = this.addresses.intern(e.dst);
    this.packets[i] = e.packets;
    this.bytes[i] = e.bytes;
    this.tcpFlags[i] = e.tcpFlags;
    this.startMs[i] = e.startMs;
    this.endMs[i] = e.endMs;
    this.firstSeen[i] = e.firstSeenMs;
    this.lastSeen[i] = e.lastSeenMs;
    this.cgroupId[i] = e.cgroupId ?? 0;
    this.iface[i] = e.iface;
    this.label[i] = e.label;
  }

  /** Drops every row and its address references. */
  clear(): void {
    for (let i = 0; i < this.count; i++) {
      this.addresses.release(this.srcId[i]);
      this.addresses.release(this.dstId[i]);
      this.label[i] = undefined;
    }
    this.count = 0;
  }
}

// Field numbers, and their names' bytes.
const NAMES = ['node', 'iface', 'ifindex', 'direction', 'family', 'src', 'dst', 'proto', 'sport', 'dport', 'icmpType', 'icmpCode', 'packets', 'bytes', 'tcpFlags', 'start', 'end', 'firstSeen', 'lastSeen', 'writer', 'cgroupId', 'cgroup', 'workload', 'pod', 'container'] as const;
// as plain constants: property loads of a 25-key object in the per-field loop cost more than the fields
const F_NODE = 0;
const F_IFACE = 1;
const F_IFINDEX = 2;
const F_DIRECTION = 3;
const F_FAMILY = 4;
const F_SRC = 5;
const F_DST = 6;
const F_PROTO = 7;
const F_SPORT = 8;
const F_DPORT = 9;
const F_ICMP_TYPE = 10;
const F_ICMP_CODE = 11;
const F_PACKETS = 12;
const F_BYTES = 13;
const F_TCP_FLAGS = 14;
const F_START = 15;
const F_END = 16;
const F_FIRST_SEEN = 17;
const F_LAST_SEEN = 18;
const F_WRITER = 19;
const F_CGROUP_ID = 20;
const F_CGROUP = 21;
const F_WORKLOAD = 22;
const F_POD = 23;
const F_CONTAINER = 24;
const NAME_BYTES = NAMES.map((n) => Buffer.from(n, 'latin1'));
/** fields every entry has */
const REQUIRED = [F_NODE, F_IFACE, F_IFINDEX, F_DIRECTION, F_FAMILY, F_SRC, F_DST, F_PROTO, F_SPORT, F_DPORT, F_PACKETS, F_BYTES, F_TCP_FLAGS, F_START, F_END, F_FIRST_SEEN, F_LAST_SEEN].reduce((m, f) => m | (1 << f), 0);
const ATTRIBUTION_LABEL = (1 << F_CGROUP) | (1 << F_WORKLOAD) | (1 << F_POD) | (1 << F_CONTAINER);
/** longest value the fast path reads, in bytes, by field (the checks count characters: longer byte strings go to the slow path) */
const MAX_BYTES = NAMES.map((n) => (n === 'cgroup' ? MAX_CGROUP_LENGTH : n === 'workload' ? MAX_WORKLOAD_LENGTH : n === 'pod' ? 2 * MAX_POD_PART_LENGTH + 1 : MAX_VALUE_LENGTH));
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

const same = (b: Buffer, p: number, name: Buffer): boolean => {
  for (let k = 0; k < name.length; k++) if (b[p + k] !== name[k]) return false;
  return true;
};

/** The field number of the name at b[p, p + n), or -1. */
function fieldOf(b: Buffer, p: number, n: number): number {
  let f = -1;
  const c = b[p];
  switch (n) {
    case 3:
      f = c === 115 ? F_SRC : c === 100 ? F_DST : c === 101 ? F_END : c === 112 ? F_POD : -1;
      break;
    case 4:
      f = F_NODE;
      break;
    case 5:
      f = c === 105 ? F_IFACE : c === 112 ? F_PROTO : c === 100 ? F_DPORT : c === 98 ? F_BYTES : c === 115 ? (b[p + 1] === 112 ? F_SPORT : F_START) : -1;
      break;
    case 6:
      f = c === 102 ? F_FAMILY : c === 119 ? F_WRITER : c === 99 ? F_CGROUP : -1;
      break;
    case 7:
      f = c === 105 ? F_IFINDEX : c === 112 ? F_PACKETS : -1;
      break;
    case 8:
      f = c === 105 ? (b[p + 4] === 84 ? F_ICMP_TYPE : F_ICMP_CODE) : c === 116 ? F_TCP_FLAGS : c === 108 ? F_LAST_SEEN : c === 99 ? F_CGROUP_ID : c === 119 ? F_WORKLOAD : -1;
      break;
    case 9:
      f = c === 100 ? F_DIRECTION : c === 102 ? F_FIRST_SEEN : c === 99 ? F_CONTAINER : -1;
      break;
  }
  return f >= 0 && same(b, p, NAME_BYTES[f]) ? f : -1;
}

/** A plain decimal in [0, max] (no sign, leading zero or more than 16 digits), or -1. */
function decimal(b: Buffer, p: number, n: number, max: number): number {
  if (n < 1 || n > 16 || (n > 1 && b[p] === 48)) return -1;
  let v = 0;
  for (let k = 0; k < n; k++) {
    const d = b[p + k] - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v <= max ? v : -1;
}

const DAYS_BEFORE_MONTH = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
const digit2 = (b: Buffer, p: number): number => {
  const h = b[p] - 48;
  const l = b[p + 1] - 48;
  return h >= 0 && h <= 9 && l >= 0 && l <= 9 ? h * 10 + l : -1;
};

/** `YYYY-MM-DDTHH:MM:SS.mmmZ` (Date.toISOString's form) as epoch ms, or NaN for any other text or an out-of-range part. */
function isoTime(b: Buffer, p: number, n: number): number {
  if (n !== 24 || b[p + 4] !== 45 || b[p + 7] !== 45 || b[p + 10] !== 84 || b[p + 13] !== 58 || b[p + 16] !== 58 || b[p + 19] !== 46 || b[p + 23] !== 90) return NaN;
  const y1 = digit2(b, p);
  const y2 = digit2(b, p + 2);
  const month = digit2(b, p + 5);
  const day = digit2(b, p + 8);
  const hour = digit2(b, p + 11);
  const minute = digit2(b, p + 14);
  const second = digit2(b, p + 17);
  const m1 = b[p + 20] - 48;
  const m2 = digit2(b, p + 21);
  if (y1 < 0 || y2 < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || m1 < 0 || m1 > 9 || m2 < 0) return NaN;
  const year = y1 * 100 + y2;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  if (day > monthDays) return NaN;
  // days since 1970-01-01 of the proleptic Gregorian calendar (as Date.UTC)
  const y = year - 1;
  const days = 365 * (year - 1970) + (Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400) - 477) + DAYS_BEFORE_MONTH[month - 1] + (month > 2 && leap ? 1 : 0) + day - 1;
  return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + m1 * 100 + m2;
}

/** A canonical dotted quad (no leading zeros) as a number, or -1. */
function ipv4(b: Buffer, p: number, n: number): number {
  if (n < 7 || n > 15) return -1;
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let k = 0; k <= n; k++) {
    const c = k === n ? 46 : b[p + k];
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9 || (digits === 1 && part === 0)) return -1;
    part = part * 10 + d;
    digits++;
  }
  return dots === 4 ? v : -1;
}

/** ASCII text without `%` (what a canonical IPv6 address is made of), or undefined. */
function asciiAddress(b: Buffer, p: number, n: number): string | undefined {
  if (n < 2 || n > 45) return undefined;
  for (let k = 0; k < n; k++) {
    const c = b[p + k];
    if (c < 33 || c > 126 || c === 37) return undefined;
  }
  return b.toString('latin1', p, p + n);
}

const PROTO_BY_NAME: [Buffer, number][] = [
  [Buffer.from('tcp'), 6],
  [Buffer.from('udp'), 17],
  [Buffer.from('icmp'), 1],
  [Buffer.from('icmpv6'), 58],
  [Buffer.from('sctp'), 132],
];
const NAMED_PROTOS = new Set(PROTO_BY_NAME.map(([, p]) => p));

/** A protocol as an agent writes it (its name, or the number of one without a name), or -1. */
function protocol(b: Buffer, p: number, n: number): number {
  const c = b[p];
  if (c >= 48 && c <= 57) {
    const v = decimal(b, p, n, 255);
    return v >= 0 && !NAMED_PROTOS.has(v) ? v : -1;
  }
  for (let k = 0; k < PROTO_BY_NAME.length; k++) {
    const name = PROTO_BY_NAME[k][0];
    if (name.length === n && same(b, p, name)) return PROTO_BY_NAME[k][1];
  }
  return -1;
}

const FLAG_NAME_BYTES = TCP_FLAG_NAMES.map((name) => Buffer.from(name));

/** TCP flag names joined by commas as bits, or -1. */
function flagBits(b: Buffer, p: number, n: number): number {
  if (n === 0) return 0;
  let bits = 0;
  let from = p;
  const end = p + n;
  while (from <= end) {
    let to = from;
    while (to < end && b[to] !== 44) to++;
    let bit = -1;
    for (let f = 0; f < FLAG_NAME_BYTES.length; f++) {
      const name = FLAG_NAME_BYTES[f];
      if (name.length === to - from && same(b, from, name)) {
        bit = 1 << f;
        break;
      }
    }
    if (bit < 0) return -1;
    bits |= bit;
    from = to + 1;
  }
  return bits;
}

/** A value is equal to a cached value's bytes. */
const equalBytes = (b: Buffer, p: number, n: number, value: Buffer | undefined): boolean => value !== undefined && value.length === n && same(b, p, value);

const LABEL_REQUIRED = (1 << F_CGROUP) | (1 << F_WORKLOAD);

/** equalBytes for values that may be long (paths, container ids): memcmp past a few bytes. */
const longEqual = (b: Buffer, p: number, n: number, value: Buffer | undefined): boolean =>
  value !== undefined && value.length === n && (n < 24 ? same(b, p, value) : b.compare(value, 0, n, p, p + n) === 0);

interface KnownLabel {
  label: CgroupLabel;
  path: Buffer;
  workload: Buffer;
  pod: Buffer | undefined;
  container: Buffer | undefined;
}

/** labels remembered by their bytes, all nodes together */
const MAX_KNOWN_LABELS = 16_384;
const MAX_KNOWN_TEXTS = 65_536;

export class EntryDecoder {
  /** per field: where its value is in the entry being decoded (valid where the field's bit is set) */
  private readonly at = new Int32Array(NAMES.length);
  private readonly len = new Int32Array(NAMES.length);
  private nodeText = '';
  private nodeBytes = Buffer.alloc(0);
  private readonly ifaces: { bytes: Buffer; name: string }[] = [];
  /** IPv6 texts found canonical */
  private readonly canonical6 = new Set<string>();
  /** per node: cgroup id -> the label its entries gave, by the bytes they gave it in */
  private readonly labels = new Map<string, Map<number, KnownLabel>>();
  private knownLabels = 0;
  /** entries that took the slow path (tests, the bench) */
  slow = 0;

  constructor(private readonly addresses: AddressTable) {}

  /**
   * Decodes entries [from, to) of a list from `limits.node`'s stream into
   * rows; each refused entry is reported with validateEntry's reason.
   */
  decode(list: EntryList, from: number, to: number, limits: EntryLimits, rows: DecodedRows, onReject: (i: number, r: EntryReject) => void): void {
    if (limits.node !== this.nodeText) {
      this.nodeText = limits.node;
      this.nodeBytes = Buffer.from(limits.node, 'utf8');
    }
    for (let i = from; i < to; i++) {
      if (this.fast(list, i, limits, rows)) continue;
      this.slow++;
      const d = validateEntry(list.fieldStrings(i), limits);
      if (isReject(d)) onReject(i, d);
      else {
        rows.push(d);
        if (d.cgroupId && d.label) this.remember(limits.node, d.cgroupId, d.label);
      }
    }
  }

  /** The fast path: true when the entry was decoded into a row, false when the slow path must look at it. */
  private fast(list: EntryList, i: number, limits: EntryLimits, rows: DecodedRows): boolean {
    const items = list.items[i];
    if (items <= 0 || (items & 1) !== 0 || items > 2 * NAMES.length) return false;
    const b = list.buf;
    const at = this.at;
    const len = this.len;
    let seen = 0;
    let p = list.fields[i];
    for (let k = 0; k < items; k += 2) {
      // the name: $<one digit>\r\n (every known name has 3-9 bytes)
      if (b[p] !== 36 || b[p + 2] !== 13) return false;
      const nameLen = b[p + 1] - 48;
      const f = fieldOf(b, p + 4, nameLen);
      if (f < 0 || (seen & (1 << f)) !== 0) return false;
      p += 4 + nameLen + 2;
      // the value: $<length>\r\n<bytes>\r\n
      if (b[p] !== 36) return false;
      let q = p + 1;
      let n = 0;
      for (let c = b[q]; c !== 13; c = b[++q]) {
        const d = c - 48;
        if (d < 0 || d > 9) return false;
        n = n * 10 + d;
      }
      if (n > MAX_BYTES[f]) return false;
      at[f] = q + 2;
      len[f] = n;
      p = q + 4 + n;
      seen |= 1 << f;
    }
    if ((seen & REQUIRED) !== REQUIRED) return false;
    if (!equalBytes(b, at[F_NODE], len[F_NODE], this.nodeBytes)) return false;
    const iface = this.iface(b, at[F_IFACE], len[F_IFACE]);
    if (iface === undefined) return false;
    const ifindex = decimal(b, at[F_IFINDEX], len[F_IFINDEX], 0xffffffff);
    const dirLen = len[F_DIRECTION];
    const egress = dirLen === 6 && same(b, at[F_DIRECTION], NAME_EGRESS);
    if (ifindex < 0 || !(egress || (dirLen === 7 && same(b, at[F_DIRECTION], NAME_INGRESS)))) return false;
    if (len[F_FAMILY] !== 1) return false;
    const familyByte = b[at[F_FAMILY]];
    const family = familyByte === 52 ? 4 : familyByte === 54 ? 6 : 0;
    if (family === 0) return false;
    const proto = protocol(b, at[F_PROTO], len[F_PROTO]);
    const sport = decimal(b, at[F_SPORT], len[F_SPORT], 65535);
    const dport = decimal(b, at[F_DPORT], len[F_DPORT], 65535);
    if (proto < 0 || sport < 0 || dport < 0) return false;
    let icmpType = 0;
    let icmpCode = 0;
    const icmpFields = seen & ((1 << F_ICMP_TYPE) | (1 << F_ICMP_CODE));
    if (isIcmp(proto)) {
      if (icmpFields !== ((1 << F_ICMP_TYPE) | (1 << F_ICMP_CODE))) return false;
      icmpType = decimal(b, at[F_ICMP_TYPE], len[F_ICMP_TYPE], 255);
      icmpCode = decimal(b, at[F_ICMP_CODE], len[F_ICMP_CODE], 255);
      if (icmpType < 0 || icmpCode < 0) return false;
    } else if (icmpFields !== 0) return false;
    const tcpFlags = flagBits(b, at[F_TCP_FLAGS], len[F_TCP_FLAGS]);
    const packets = decimal(b, at[F_PACKETS], len[F_PACKETS], MAX_COUNT);
    const bytes = decimal(b, at[F_BYTES], len[F_BYTES], MAX_COUNT);
    if (tcpFlags < 0 || packets < 0 || bytes < 0) return false;
    const lo = limits.nowMs - limits.maxAgeMs;
    const hi = limits.nowMs + limits.maxFutureMs;
    const startMs = isoTime(b, at[F_START], len[F_START]);
    const endMs = isoTime(b, at[F_END], len[F_END]);
    const firstSeen = isoTime(b, at[F_FIRST_SEEN], len[F_FIRST_SEEN]);
    const lastSeen = isoTime(b, at[F_LAST_SEEN], len[F_LAST_SEEN]);
    // NaN fails these too
    if (!(startMs >= lo && startMs <= hi && endMs >= lo && endMs <= hi && firstSeen >= lo && firstSeen <= hi && lastSeen >= lo && lastSeen <= hi)) return false;
    let cgroupId = 0;
    let label: CgroupLabel | undefined;
    if ((seen & (1 << F_CGROUP_ID)) !== 0) {
      cgroupId = decimal(b, at[F_CGROUP_ID], len[F_CGROUP_ID], MAX_COUNT);
      if (cgroupId <= 0) return false;
      if ((seen & ATTRIBUTION_LABEL) !== 0) {
        label = this.knownLabel(b, seen, limits.node, cgroupId);
        if (label === undefined) return false;
      }
    } else if ((seen & ATTRIBUTION_LABEL) !== 0) return false;
    // addresses last: interning takes references
    let src6: string | undefined;
    let dst6: string | undefined;
    let src4 = -1;
    let dst4 = -1;
    if (family === 4) {
      src4 = ipv4(b, at[F_SRC], len[F_SRC]);
      dst4 = ipv4(b, at[F_DST], len[F_DST]);
      if (src4 < 0 || dst4 < 0) return false;
    } else {
      src6 = this.ipv6(b, at[F_SRC], len[F_SRC]);
      dst6 = this.ipv6(b, at[F_DST], len[F_DST]);
      if (src6 === undefined || dst6 === undefined) return false;
    }
    const r = rows.add();
    rows.srcId[r] = src6 === undefined ? this.addresses.internV4(src4) : this.addresses.intern(src6);
    rows.dstId[r] = dst6 === undefined ? this.addresses.internV4(dst4) : this.addresses.intern(dst6);
    rows.ifindex[r] = ifindex;
    rows.meta[r] = packMeta(egress ? 'egress' : 'ingress', family, proto, icmpType, icmpCode);
    rows.ports[r] = packPorts(sport, dport);
    rows.packets[r] = packets;
    rows.bytes[r] = bytes;
    rows.tcpFlags[r] = tcpFlags;
    rows.startMs[r] = startMs;
    rows.endMs[r] = endMs;
    rows.firstSeen[r] = firstSeen;
    rows.lastSeen[r] = lastSeen;
    rows.cgroupId[r] = cgroupId;
    rows.iface[r] = iface;
    rows.label[r] = label;
    return true;
  }

  /** An interface name seen before by its bytes, or a new one that passes the checks (1-15 characters without white space, `/` or `:`). */
  private iface(b: Buffer, p: number, n: number): string | undefined {
    const ifaces = this.ifaces;
    for (let k = 0; k < ifaces.length; k++) if (equalBytes(b, p, n, ifaces[k].bytes)) return ifaces[k].name;
    if (n < 1 || n > 60) return undefined;
    const name = b.toString('utf8', p, p + n);
    // bytes that are not UTF-8 decode to U+FFFD: the slow path sees the same string, so the same answer
    if (!IFACE_NAME.test(name)) return undefined;
    if (ifaces.length >= 64) ifaces.length = 0;
    ifaces.push({ bytes: Buffer.from(b.subarray(p, p + n)), name });
    return name;
  }

  /** An IPv6 address in canonical text, or undefined. */
  private ipv6(b: Buffer, p: number, n: number): string | undefined {
    const text = asciiAddress(b, p, n);
    if (text === undefined) return undefined;
    if (this.canonical6.has(text)) return text;
    if (canonicalAddress(text, 6) !== text) return undefined;
    if (this.canonical6.size >= MAX_KNOWN_TEXTS) this.canonical6.clear();
    this.canonical6.add(text);
    return text;
  }

  /** The label a node's entries gave its cgroup id before, when this entry gives it in the same bytes. */
  private knownLabel(b: Buffer, seen: number, node: string, cgroupId: number): CgroupLabel | undefined {
    const known = this.labels.get(node)?.get(cgroupId);
    if (known === undefined || (seen & LABEL_REQUIRED) !== LABEL_REQUIRED) return undefined;
    const at = this.at;
    const len = this.len;
    if (!longEqual(b, at[F_CGROUP], len[F_CGROUP], known.path) || !longEqual(b, at[F_WORKLOAD], len[F_WORKLOAD], known.workload)) return undefined;
    if ((seen & (1 << F_POD)) !== 0 ? !longEqual(b, at[F_POD], len[F_POD], known.pod) : known.pod !== undefined) return undefined;
    if ((seen & (1 << F_CONTAINER)) !== 0 ? !longEqual(b, at[F_CONTAINER], len[F_CONTAINER], known.container) : known.container !== undefined) return undefined;
    return known.label;
  }

  /** Remembers a label the slow path accepted, by the bytes an agent writes it in. */
  private remember(node: string, cgroupId: number, label: CgroupLabel): void {
    if (this.knownLabels >= MAX_KNOWN_LABELS) {
      this.labels.clear();
      this.knownLabels = 0;
    }
    let byId = this.labels.get(node);
    if (!byId) this.labels.set(node, (byId = new Map()));
    if (!byId.has(cgroupId)) this.knownLabels++;
    byId.set(cgroupId, {
      label,
      path: Buffer.from(label.path, 'utf8'),
      workload: Buffer.from(label.workload, 'utf8'),
      pod: label.pod ? Buffer.from(`${label.pod.namespace}/${label.pod.name}`, 'utf8') : undefined,
      container: label.container !== undefined ? Buffer.from(label.container, 'utf8') : undefined,
    });
  }
}

const NAME_EGRESS = Buffer.from('egress');
const NAME_INGRESS = Buffer.from('ingress');
