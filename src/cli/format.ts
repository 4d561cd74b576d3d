/** Text output of the client commands. */
import type { FlowRecord } from '../flow/record.js';

export function endpoint(address: string, port: number, proto: string): string {
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** One line per record, like `hubble observe`. */
export function compactLine(r: FlowRecord): string {
  const icmp = r.icmpType !== undefined ? ` type ${r.icmpType} code ${r.icmpCode}` : '';
  const flags = r.tcpFlags.length > 0 ? ` [${r.tcpFlags.join(',')}]` : '';
  return `${r.end} ${r.iface} ${r.direction.padEnd(7)} ${endpoint(r.src, r.sport, r.proto)} -> ${endpoint(r.dst, r.dport, r.proto)} ${r.proto}${icmp} ${r.packets} packets ${r.bytes} bytes${flags}`;
}

/** Left-aligned columns, numbers right-aligned. */
export function table(header: string[], rows: (string | number)[][], widths?: number[]): string {
  const cells = rows.map((row) => row.map(String));
  const w = widths ?? header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i].length)));
  const line = (row: string[], numeric: boolean[]) =>
    row.map((cell, i) => (numeric[i] ? cell.padStart(w[i]) : cell.padEnd(w[i]))).join('  ').trimEnd();
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number'));
  return [line(header, numeric), ...cells.map((row) => line(row, numeric))].join('\n');
}

export const FLOW_TABLE_HEADER = ['TIME', 'IFACE', 'DIR', 'SOURCE', 'DESTINATION', 'PROTO', 'PACKETS', 'BYTES', 'FLAGS'];

export function flowRow(r: FlowRecord): (string | number)[] {
  const proto = r.icmpType !== undefined ? `${r.proto}/${r.icmpType}/${r.icmpCode}` : r.proto;
  return [r.end, r.iface, r.direction, endpoint(r.src, r.sport, r.proto), endpoint(r.dst, r.dport, r.proto), proto, r.packets, r.bytes, r.tcpFlags.join(',')];
}

/** Human units: 1.5k, 2.3M (SI). */
export function human(n: number): string {
  const units = ['', 'k', 'M', 'G', 'T', 'P'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? String(Math.round(v * 10) / 10) : `${v.toFixed(1)}${units[i]}`;
}
