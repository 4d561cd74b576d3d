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
  /** cgroup id of the flow's local socket (0: none) */
  readonly cgroup: Float64Array;
  /** names what a cgroup id stands for in the records this batch builds (the agent sets it) */
  labels?: CgroupLabeler;

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
    this.cgroup = new Float64Array(capacity);
  }

  /** The contract record for entry i (allocates: for sinks that serialize). */
  toRecord(i: number): FlowRecord {
    return buildRecord({
      node: this.node,
      iface: this.ifaceName(this.ifindex[i]),
      ifindex: this.ifindex[i],
      meta: this.meta[i],
      ports: this.ports[i],
      src: this.addresses.text(this.srcId[i]),
      dst: this.addresses.text(this.dstId[i]),
      packets: this.packets[i],
      bytes: this.bytes[i],
      tcpFlags: this.tcpFlags[i],
      startMs: this.startMs,
      endMs: this.endMs,
      firstSeenMs: this.firstSeen[i],
      lastSeenMs: this.lastSeen[i],
      cgroupId: this.cgroup[i],
      labels: this.labels,
    });
  }
}

/** What a cgroup id stands for: its path (relative to the cgroup v2 root) and workload; undefined when unknown. */
export type CgroupLabeler = (cgroupId: number) => { path: string; workload: string; pod?: { namespace: string; name: string }; container?: string } | undefined;

/** One record's packed column values, with its address texts and interface name resolved. */
export interface RecordFields {
  node: string;
  iface: string;
  ifindex: number;
  /** direction, family, proto, ICMP type/code packed as in tuple.ts */
  meta: number;
  /** sport << 16 | dport */
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
  /** cgroup id of the flow's local socket; 0 or absent: none */
  cgroupId?: number;
  labels?: CgroupLabeler;
}

/** Builds a contract FlowRecord from the packed column values. */
export function buildRecord(f: RecordFields): FlowRecord {
  const { meta, ports } = f;
  const proto = metaProto(meta);
  const record: FlowRecord = {
    node: f.node,
    iface: f.iface,
    ifindex: f.ifindex,
    direction: metaDirection(meta),
    family: metaFamily(meta),
    src: f.src,
    dst: f.dst,
    proto: protoName(proto),
    sport: portsSport(ports),
    dport: portsDport(ports),
    packets: f.packets,
    bytes: f.bytes,
    tcpFlags: tcpFlagNames(f.tcpFlags) as string[],
    start: new Date(f.startMs).toISOString(),
    end: new Date(f.endMs).toISOString(),
    firstSeen: new Date(f.firstSeenMs).toISOString(),
    lastSeen: new Date(f.lastSeenMs).toISOString(),
  };
  if (isIcmp(proto)) {
    record.icmpType = metaIcmpType(meta);
    record.icmpCode = metaIcmpCode(meta);
  }
  if (f.cgroupId) {
    // Attribution (contract, "Attribution"): the cgroup path when known (a cgroup removed
    // before it was read has none); the id always, as the kernel gave it.
    const label = f.labels?.(f.cgroupId);
    record.cgroupId = f.cgroupId;
    record.cgroup = label?.path ?? null;
    if (label) {
      record.workload = label.workload;
      if (label.pod) record.pod = label.pod;
      if (label.container) record.container = label.container;
    }
  }
  return record;
}
