/**
 * The records of one export, as columns. This is what leaves the collector
 * through every RecordSink: no object per record unless a sink asks for one
 * with toRecord(i), so the in-memory store copies numbers and nothing else.
 *
 * A batch is reused by the collector: a sink must copy what it needs during
 * write() and not keep the batch.
 */
import type { AddressTable } from './address-table.js';
import type { FlowRecord } from './record.js';
import { protoName, tcpFlagNames, isIcmp } from './protocols.js';
import { metaDirection, metaFamily, metaProto, metaIcmpType, metaIcmpCode, portsSport, portsDport } from './tuple.js';

/** Resolves an interface index to its name (the attachments know them). */
export type IfaceNamer = (ifindex: number) => string;

export class RecordBatch {
  count = 0;
  /** interval covered by every record of the batch (epoch ms) */
  startMs = 0;
  endMs = 0;
  /** the collector's flow-table slot: stable while the flow is tracked (see FlowTable.releaseRetired) */
  readonly flowId: Uint32Array;
  readonly ifindex: Uint32Array;
  /** direction, family, proto, ICMP type/code packed as in tuple.ts */
  readonly meta: Uint32Array;
  /** sport << 16 | dport */
  readonly ports: Uint32Array;
  /** ids in `addresses`; valid while the batch is being written */
  readonly srcId: Uint32Array;
  readonly dstId: Uint32Array;
  readonly packets: Float64Array;
  readonly bytes: Float64Array;
  readonly tcpFlags: Uint16Array;
  readonly firstSeen: Float64Array;
  readonly lastSeen: Float64Array;

  constructor(
    readonly capacity: number,
    readonly addresses: AddressTable,
    readonly ifaceName: IfaceNamer,
    readonly node: string,
  ) {
    this.flowId = new Uint32Array(capacity);
    this.ifindex = new Uint32Array(capacity);
    this.meta = new Uint32Array(capacity);
    this.ports = new Uint32Array(capacity);
    this.srcId = new Uint32Array(capacity);
    this.dstId = new Uint32Array(capacity);
    this.packets = new Float64Array(capacity);
    this.bytes = new Float64Array(capacity);
    this.tcpFlags = new Uint16Array(capacity);
    this.firstSeen = new Float64Array(capacity);
    this.lastSeen = new Float64Array(capacity);
  }

  /** The contract record for entry i (allocates: for sinks that serialize). */
  toRecord(i: number): FlowRecord {
    return buildRecord(
      this.node,
      this.ifaceName(this.ifindex[i]),
      this.ifindex[i],
      this.meta[i],
      this.ports[i],
      this.addresses.text(this.srcId[i]),
      this.addresses.text(this.dstId[i]),
      this.packets[i],
      this.bytes[i],
      this.tcpFlags[i],
      this.startMs,
      this.endMs,
      this.firstSeen[i],
      this.lastSeen[i],
    );
  }
}

/** Builds a contract FlowRecord from the packed column values. */
export function buildRecord(
  node: string,
  iface: string,
  ifindex: number,
  meta: number,
  ports: number,
  src: string,
  dst: string,
  packets: number,
  bytes: number,
  tcpFlags: number,
  startMs: number,
  endMs: number,
  firstSeenMs: number,
  lastSeenMs: number,
): FlowRecord {
  const proto = metaProto(meta);
  const record: FlowRecord = {
    node,
    iface,
    ifindex,
    direction: metaDirection(meta),
    family: metaFamily(meta),
    src,
    dst,
    proto: protoName(proto),
    sport: portsSport(ports),
    dport: portsDport(ports),
    packets,
    bytes,
    tcpFlags: tcpFlagNames(tcpFlags) as string[],
    start: new Date(startMs).toISOString(),
    end: new Date(endMs).toISOString(),
    firstSeen: new Date(firstSeenMs).toISOString(),
    lastSeen: new Date(lastSeenMs).toISOString(),
  };
  if (isIcmp(proto)) {
    record.icmpType = metaIcmpType(meta);
    record.icmpCode = metaIcmpCode(meta);
  }
  return record;
}
