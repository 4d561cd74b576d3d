/**
 * Packing of the small fields of a flow's identity into one 32-bit word, so
 * the tables keep them in a single Uint32Array column:
 *   bit 0      direction (0 ingress, 1 egress)
 *   bit 1      family (0 IPv4, 1 IPv6)
 *   bits 2-9   IP protocol
 *   bits 10-17 ICMP type
 *   bits 18-25 ICMP code
 * Ports pack as (sport << 16 | dport).
 */
import type { Direction } from '../datapath/types.js';

export function packMeta(direction: Direction, family: 4 | 6, proto: number, icmpType: number, icmpCode: number): number {
  return (
    (direction === 'egress' ? 1 : 0) |
    (family === 6 ? 2 : 0) |
    ((proto & 0xff) << 2) |
    ((icmpType & 0xff) << 10) |
    ((icmpCode & 0xff) << 18)
  );
}

export const metaDirection = (meta: number): Direction => ((meta & 1) === 1 ? 'egress' : 'ingress');
export const metaDirectionCode = (meta: number): 0 | 1 => (meta & 1) as 0 | 1;
export const metaFamily = (meta: number): 4 | 6 => ((meta & 2) === 2 ? 6 : 4);
export const metaProto = (meta: number): number => (meta >>> 2) & 0xff;
export const metaIcmpType = (meta: number): number => (meta >>> 10) & 0xff;
export const metaIcmpCode = (meta: number): number => (meta >>> 18) & 0xff;

export const packPorts = (sport: number, dport: number): number => (((sport & 0xffff) << 16) | (dport & 0xffff)) >>> 0;
export const portsSport = (ports: number): number => ports >>> 16;
export const portsDport = (ports: number): number => ports & 0xffff;
