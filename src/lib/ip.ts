/**
 * IP addresses as bytes and as text. Filters (`src=`, `dst=`, `ip=` of the
 * API and the CLI) are parsed by the `ip-address` package (parsePrefix);
 * addresses are then compared as bytes, so `2001:DB8::1` in a filter matches
 * `2001:db8::1` in a record.
 *
 * Two hand-written codecs stay, for the paths that run per flow or per entry
 * rather than per request: parseIp (text -> bytes, per distinct address or
 * top-talkers key a filter tests, per Redis entry the relay decodes) and
 * formatIPv4/formatIPv6 (bytes -> the contract's text, per new flow of a
 * drain). bench/lib/ip.ts measures them against `ip-address`
 * (bench/RESULTS.md, "IP text codecs"); the formatter also writes IPv4-mapped
 * addresses as ::ffff:a.b.c.d, as the contract does, which `ip-address` does not.
 */
import { Address4, Address6 } from 'ip-address';
import { isIPv4, isIPv6 } from 'node:net';

export interface IpPrefix {
  family: 4 | 6;
  /** network address bytes (4 or 16) with the host bits cleared */
  bytes: Uint8Array;
  /** prefix length in bits */
  bits: number;
}

function parseIPv4(text: string, out: Uint8Array, offset: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^\d{1,3}$/.test(p)) return false;
    const v = Number(p);
    if (v > 255) return false;
    out[offset + i] = v;
  }
  return true;
}

function parseIPv6(text: string, out: Uint8Array): boolean {
  if (!isIPv6(text)) return false;
  const lower = text.toLowerCase().replace(/%.*$/, '');
  const halves = lower.split('::');
  if (halves.length > 2) return false;
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  // An embedded IPv4 address (::ffff:1.2.3.4) occupies the last two groups.
  const words: number[] = [];
  const pushGroups = (list: string[], target: number[]): boolean => {
    for (const g of list) {
      if (g.includes('.')) {
        const v4 = new Uint8Array(4);
        if (!parseIPv4(g, v4, 0)) return false;
        target.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        target.push(parseInt(g, 16));
      }
    }
    return true;
  };
  const headWords: number[] = [];
  const tailWords: number[] = [];
  if (!pushGroups(head, headWords) || !pushGroups(tail, tailWords)) return false;
  const zeros = 8 - headWords.length - tailWords.length;
  if (halves.length === 1 ? zeros !== 0 : zeros < 1) return false;
  words.push(...headWords, ...new Array<number>(zeros).fill(0), ...tailWords);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i] >> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  return true;
}

/** Parses an IPv4 or IPv6 address into its bytes, or returns undefined. */
export function parseIp(text: string): { family: 4 | 6; bytes: Uint8Array } | undefined {
  if (isIPv4(text)) {
    const bytes = new Uint8Array(4);
    return parseIPv4(text, bytes, 0) ? { family: 4, bytes } : undefined;
  }
  const bytes = new Uint8Array(16);
  return parseIPv6(text, bytes) ? { family: 6, bytes } : undefined;
}

/** An address or ADDRESS/BITS parsed by `ip-address`: the bytes, and the prefix length (the family's width without /BITS). */
function parseAddress(text: string): { ip: { family: 4 | 6; bytes: Uint8Array }; bits: number } | undefined {
  if (Address4.isValid(text)) {
    const a = new Address4(text);
    return { ip: { family: 4, bytes: Uint8Array.from(a.toArray()) }, bits: a.subnetMask };
  }
  if (Address6.isValid(text)) {
    const a = new Address6(text);
    const raw = a.toUnsignedByteArray();
    const bytes = new Uint8Array(16);
    bytes.set(raw, 16 - raw.length);
    return { ip: { family: 6, bytes }, bits: a.subnetMask };
  }
  return undefined;
}

/**
 * Parses `ADDRESS` or `ADDRESS/BITS` (IPv4 or IPv6) with `ip-address`. A bare
 * address is a host prefix (/32 or /128). Host bits set in a CIDR are
 * ignored, as `ip route` does. Returns undefined for anything malformed.
 */
export function parsePrefix(text: string): IpPrefix | undefined {
  const slash = text.indexOf('/');
  // ip-address reads a few forms more than an address and /BITS (zones before the slash, %-escapes): not in a filter
  if (slash >= 0 && !/^\d{1,3}$/.test(text.slice(slash + 1))) return undefined;
  const parsed = parseAddress(text);
  if (!parsed) return undefined;
  const { family, bytes } = parsed.ip;
  const maxBits = family === 4 ? 32 : 128;
  const bits = slash < 0 ? maxBits : parsed.bits;
  for (let bit = bits; bit < maxBits; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family, bytes, bits };
}

/** True when `address` (text) lies inside `prefix`. Malformed addresses never match. */
export function prefixContains(prefix: IpPrefix, address: string): boolean {
  const parsed = parseIp(address);
  if (!parsed || parsed.family !== prefix.family) return false;
  const full = prefix.bits >> 3;
  for (let i = 0; i < full; i++) if (parsed.bytes[i] !== prefix.bytes[i]) return false;
  const rest = prefix.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (parsed.bytes[full] & mask) === prefix.bytes[full];
}

/** Text form of a prefix, canonical (RFC 5952): for messages and cache keys. */
export function formatPrefix(prefix: IpPrefix): string {
  const address = prefix.family === 4 ? formatIPv4(prefix.bytes, 0) : formatIPv6(prefix.bytes, 0);
  return `${address}/${prefix.bits}`;
}

/**
 * Canonical text of IP addresses read from raw bytes: dotted quad for IPv4,
 * RFC 5952 for IPv6 (lowercase, no leading zeros, the longest run of two or
 * more zero groups as "::", the first such run on a tie, and IPv4-mapped
 * addresses as ::ffff:a.b.c.d).
 */
export function formatIPv4(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

export function formatIPv6(bytes: Uint8Array, offset: number): string {
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = (bytes[offset + 2 * i] << 8) | bytes[offset + 2 * i + 1];

  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  }

  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return groups.map((g) => g.toString(16)).join(':');
  const head = groups.slice(0, bestStart).map((g) => g.toString(16)).join(':');
  const tail = groups.slice(bestStart + bestLen).map((g) => g.toString(16)).join(':');
  return `${head}::${tail}`;
}
