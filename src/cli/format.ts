/** Text output of the client commands. */
import type { FlowRecord } from '../flow/record.js';

export function endpoint(address: string, port: number, proto: string): string {
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Who owns the flow's local socket: its workload label, else its cgroup path,
 * else (a cgroup that could not be resolved) its id; undefined when the record
 * carries no attribution (forwarded traffic, or attribution off).
 */
export function attribution(r: FlowRecord): string | undefined {
  if (r.workload) return r.workload;
  if (r.cgroup) return r.cgroup;
  if (r.cgroup === null) return r.cgroupId !== undefined ? `cgroup ${r.cgroupId}` : 'cgroup ?';
  return undefined;
}

/**
 * One line per record, like `hubble observe`. The workload is written next to
 * the local end: the source of what is sent (egress), the destination of what
 * is received (ingress).
 */
export function compactLine(r: FlowRecord): string {
  const icmp = r.icmpType !== undefined ? ` type ${r.icmpType} code ${r.icmpCode}` : '';
  const flags = r.tcpFlags.length > 0 ? ` [${r.tcpFlags.join(',')}]` : '';
  const owner = attribution(r);
  const src = endpoint(r.src, r.sport, r.proto) + (owner !== undefined && r.direction === 'egress' ? ` (${owner})` : '');
  const dst = endpoint(r.dst, r.dport, r.proto) + (owner !== undefined && r.direction !== 'egress' ? ` (${owner})` : '');
  return `${r.end} ${r.iface} ${r.direction.padEnd(7)} ${src} -> ${dst} ${r.proto}${icmp} ${r.packets} packets ${r.bytes} bytes${flags}`;
}

/** A number, or a quantity such as `1.2 MiB`, `≤ 3.4k`, `51.2 kbit/s`, `12.5%`, or `-`: right-aligned in a table. */
const QUANTITY = /^(-|[≤~]?\s?-?\d+(\.\d+)?(\s?[A-Za-z%/]+)?)$/;

/** Left-aligned columns, numbers and quantities right-aligned. */
export function table(header: string[], rows: (string | number)[][], widths?: number[]): string {
  const cells = rows.map((row) => row.map(String));
  const w = widths ?? header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const line = (row: string[], numeric: boolean[]) =>
    row.map((cell, i) => (numeric[i] ? cell.padStart(w[i]) : cell.padEnd(w[i]))).join('  ').trimEnd();
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number' || QUANTITY.test(row[i])) && !rows.every((row) => row[i] === '-'));
  return [line(header, numeric), ...cells.map((row) => line(row, numeric))].join('\n');
}

export const FLOW_TABLE_HEADER = ['TIME', 'IFACE', 'DIR', 'SOURCE', 'DESTINATION', 'PROTO', 'PACKETS', 'BYTES', 'FLAGS', 'WORKLOAD'];

export function flowRow(r: FlowRecord): (string | number)[] {
  const proto = r.icmpType !== undefined ? `${r.proto}/${r.icmpType}/${r.icmpCode}` : r.proto;
  return [r.end, r.iface, r.direction, endpoint(r.src, r.sport, r.proto), endpoint(r.dst, r.dport, r.proto), proto, r.packets, r.bytes, r.tcpFlags.join(','), attribution(r) ?? '-'];
}
