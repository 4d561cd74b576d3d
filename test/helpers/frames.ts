/**
 * Builds Ethernet frames byte by byte for BPF_PROG_TEST_RUN: the parser tests
 * describe a packet, this writes it with correct lengths and checksum-free
 * headers (the programs never check checksums).
 */
import { isIP } from 'node:net';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;
export const IPPROTO = { HOPOPTS: 0, ICMP: 1, TCP: 6, UDP: 17, ROUTING: 43, FRAGMENT: 44, GRE: 47, AH: 51, ICMPV6: 58, NONE: 59, DSTOPTS: 60, SCTP: 132 } as const;

export function ipBytes(addr: string): Buffer {
  if (isIP(addr) === 4) return Buffer.from(addr.split('.').map(Number));
  const embedded = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (embedded) {
    const v4 = ipBytes(embedded[2]);
    const head = ipBytes(`${embedded[1]}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`);
    return head;
  }
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function ethernet(etherType: number, payload: Buffer, vlanTags: { tpid: number; vid: number }[] = []): Buffer {
  const head = Buffer.alloc(12 + 4 * vlanTags.length + 2);
  Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]).copy(head, 0);
  let at = 12;
  for (const tag of vlanTags) {
    head.writeUInt16BE(tag.tpid, at);
    head.writeUInt16BE(tag.vid, at + 2);
    at += 4;
  }
  head.writeUInt16BE(etherType, at);
  return Buffer.concat([head, payload]);
}

export interface IPv4Options {
  src: string;
  dst: string;
  proto: number;
  payload: Buffer;
  /** IP options, padded to 4 bytes */
  options?: Buffer;
  /** fragment offset in 8-byte units */
  fragOffset?: number;
  moreFragments?: boolean;
  /** override the IHL field (to make it lie) */
  ihl?: number;
}

export function ipv4(o: IPv4Options): Buffer {
  const options = o.options ?? Buffer.alloc(0);
  const head = Buffer.alloc(20 + options.length);
  head[0] = 0x40 | (o.ihl ?? head.length / 4);
  head.writeUInt16BE(head.length + o.payload.length, 2);
  head.writeUInt16BE(((o.moreFragments ? 1 : 0) << 13) | (o.fragOffset ?? 0), 6);
  head[8] = 64;
  head[9] = o.proto;
  ipBytes(o.src).copy(head, 12);
  ipBytes(o.dst).copy(head, 16);
  options.copy(head, 20);
  return Buffer.concat([head, o.payload]);
}

/** An IPv6 extension header: type, and body length (total length is padded as the type requires). */
export interface ExtHeader {
  type: number;
  /** for FRAGMENT: the fragment offset in 8-byte units */
  fragOffset?: number;
  /** bytes of the header in total, for HOPOPTS/ROUTING/DSTOPTS (multiple of 8) and AH (multiple of 4) */
  length?: number;
}

export function ipv6(o: { src: string; dst: string; nextHeader: number; payload: Buffer; ext?: ExtHeader[] }): Buffer {
  const ext = o.ext ?? [];
  const parts: Buffer[] = [];
  for (let i = 0; i < ext.length; i++) {
    const h = ext[i];
    const next = i + 1 < ext.length ? ext[i + 1].type : o.nextHeader;
    let b: Buffer;
    if (h.type === IPPROTO.FRAGMENT) {
      b = Buffer.alloc(8);
      b.writeUInt16BE((h.fragOffset ?? 0) << 3, 2);
    } else if (h.type === IPPROTO.AH) {
      const len = h.length ?? 12;
      b = Buffer.alloc(len);
      b[1] = len / 4 - 2;
    } else {
      const len = h.length ?? 8;
      b = Buffer.alloc(len);
      b[1] = len / 8 - 1;
    }
    b[0] = next;
    parts.push(b);
  }
  const body = Buffer.concat([...parts, o.payload]);
  const head = Buffer.alloc(40);
  head[0] = 0x60;
  head.writeUInt16BE(body.length, 4);
  head[6] = ext.length ? ext[0].type : o.nextHeader;
  head[7] = 64;
  ipBytes(o.src).copy(head, 8);
  ipBytes(o.dst).copy(head, 24);
  return Buffer.concat([head, body]);
}

export function udp(sport: number, dport: number, payload = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

/** flags: the 8-bit TCP flags byte; ns: the NS bit */
export function tcp(sport: number, dport: number, flags: number, payload = Buffer.alloc(0), ns = false): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h[12] = (5 << 4) | (ns ? 1 : 0);
  h[13] = flags;
  return Buffer.concat([h, payload]);
}

export function icmp(type: number, code: number, payload = Buffer.alloc(4)): Buffer {
  return Buffer.concat([Buffer.from([type, code, 0, 0]), payload]);
}

export const TCP = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ECE: 64, CWR: 128 } as const;
