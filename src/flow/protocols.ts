/** Names of IP protocols and TCP flags as they appear in flow records. */

const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };
const PROTO_NUMBERS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 };

export const PROTO_NAME_LIST = Object.keys(PROTO_NUMBERS);

/** Precomputed so the record path never builds a string for a protocol. */
const PROTO_TEXT: string[] = Array.from({ length: 256 }, (_, n) => PROTO_NAMES[n] ?? String(n));

/** `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, or the number as a string. */
export function protoName(proto: number): string {
  return PROTO_TEXT[proto & 0xff];
}

/** Protocol number for a name or a decimal string 0-255; undefined otherwise. */
export function protoNumber(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (lower in PROTO_NUMBERS) return PROTO_NUMBERS[lower];
  if (!/^\d{1,3}$/.test(lower)) return undefined;
  const n = Number(lower);
  return n <= 255 ? n : undefined;
}

export function isIcmp(proto: number): boolean {
  return proto === 1 || proto === 58;
}

/** TCP flag names in bit order (FIN=1 ... CWR=128, NS=256), as in bpf/flowscope.h. */
export const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'] as const;
export const TCP_FIN = 1;
export const TCP_SYN = 2;
export const TCP_RST = 4;
export const TCP_PSH = 8;
export const TCP_ACK = 16;
export const TCP_URG = 32;

const flagListCache = new Map<number, readonly string[]>();

/** Flag names for a bit set; the arrays are shared and frozen, so treat them as read-only. */
export function tcpFlagNames(bits: number): readonly string[] {
  let names = flagListCache.get(bits);
  if (!names) {
    const list: string[] = [];
    TCP_FLAG_NAMES.forEach((name, i) => {
      if (bits & (1 << i)) list.push(name);
    });
    names = Object.freeze(list);
    flagListCache.set(bits, names);
  }
  return names;
}
