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
import type { RecordBatch } from '../service/record-batch.js';
import { protoName, protoNumber, tcpFlagNames, TCP_FLAG_NAMES, isIcmp } from '../service/protocols.js';
import { metaDirection, metaFamily, metaIcmpCode, metaIcmpType, metaProto, packMeta, packPorts, portsDport, portsSport } from '../service/tuple.js';

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
};

/** Field/value pairs of a record without and with the ICMP fields. */
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
  /** "iface" and "ifindex" pairs by ifindex: names are stable while attached */
  private readonly ifacePairs = new Map<number, string>();
  private ifaceNameOf: ((ifindex: number) => string) | undefined;

  constructor(readonly node: string) {
    this.nodePair = F.node + bulk(node);
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
      emit(flatten(s), icmp ? PAIRS_ICMP : PAIRS_PLAIN);
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
}

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

const isCount = (n: number): boolean => Number.isFinite(n) && n >= 0 && Number.isInteger(n);
const isPort = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535;

/**
 * Decodes one entry's [field, value, field, value, ...] list. Unknown fields
 * are ignored (writers may add some); a missing or malformed contract field
 * makes the entry undefined (the relay counts it as bad and skips it).
 */
export function decodeEntry(fields: string[]): DecodedEntry | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
  const proto = f.proto === undefined ? undefined : protoNumber(f.proto);
  const family = f.family === '4' ? 4 : f.family === '6' ? 6 : undefined;
  const direction = f.direction === 'ingress' || f.direction === 'egress' ? f.direction : undefined;
  const tcpFlags = f.tcpFlags === undefined ? undefined : flagBits(f.tcpFlags);
  if (proto === undefined || family === undefined || direction === undefined || tcpFlags === undefined) return undefined;
  if (f.node === undefined || f.iface === undefined || f.src === undefined || f.dst === undefined) return undefined;
  const ifindex = Number(f.ifindex);
  const sport = Number(f.sport);
  const dport = Number(f.dport);
  const packets = Number(f.packets);
  const bytes = Number(f.bytes);
  const startMs = Date.parse(f.start);
  const endMs = Date.parse(f.end);
  const firstSeenMs = Date.parse(f.firstSeen);
  const lastSeenMs = Date.parse(f.lastSeen);
  if (!isCount(ifindex) || !isPort(sport) || !isPort(dport) || !isCount(packets) || !isCount(bytes)) return undefined;
  if (Number.isNaN(startMs) || Number.isNaN(endMs) || Number.isNaN(firstSeenMs) || Number.isNaN(lastSeenMs)) return undefined;
  const icmpType = isIcmp(proto) ? Number(f.icmpType ?? 0) & 0xff : 0;
  const icmpCode = isIcmp(proto) ? Number(f.icmpCode ?? 0) & 0xff : 0;
  return {
    node: f.node,
    iface: f.iface,
    ifindex,
    meta: packMeta(direction, family, proto, icmpType, icmpCode),
    ports: packPorts(sport, dport),
    src: f.src,
    dst: f.dst,
    packets,
    bytes,
    tcpFlags,
    startMs,
    endMs,
    firstSeenMs,
    lastSeenMs,
  };
}

/** For tests and tools: the direction text of a packed meta. */
export const entryDirection = metaDirection;
