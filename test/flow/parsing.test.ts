import { describe, expect, it } from 'vitest';
import { formatPrefix, parsePrefix, prefixContains, parseIp } from '../../src/lib/ip.js';
import { parseDuration, parseTimeParam, formatDuration } from '../../src/flow/duration.js';
import { readFileSync } from 'node:fs';
import { protoName, protoNumber, tcpFlagNames, TCP_FLAG_NAMES } from '../../src/flow/protocols.js';
import { parseFlowFilter, FilterError } from '../../src/flow/filter.js';

describe('CIDR matching', () => {
  const inside = (cidr: string, ip: string) => prefixContains(parsePrefix(cidr)!, ip);

  it('matches IPv4 prefixes at every boundary', () => {
    expect(inside('10.0.0.0/8', '10.255.255.255')).toBe(true);
    expect(inside('10.0.0.0/8', '11.0.0.0')).toBe(false);
    expect(inside('192.168.1.128/25', '192.168.1.128')).toBe(true);
    expect(inside('192.168.1.128/25', '192.168.1.127')).toBe(false);
    expect(inside('192.168.1.7/31', '192.168.1.6')).toBe(true);
    expect(inside('192.168.1.7/31', '192.168.1.8')).toBe(false);
    expect(inside('0.0.0.0/0', '1.2.3.4')).toBe(true);
    expect(inside('1.2.3.4', '1.2.3.4')).toBe(true);
    expect(inside('1.2.3.4', '1.2.3.5')).toBe(false);
  });

  it('matches IPv6 prefixes, whatever the text form', () => {
    expect(inside('2001:DB8::/32', '2001:db8:ffff::1')).toBe(true);
    expect(inside('2001:db8::/32', '2001:db9::1')).toBe(false);
    expect(inside('fe80::/10', 'febf::1')).toBe(true);
    expect(inside('fe80::/10', 'fec0::1')).toBe(false);
    expect(inside('::/0', '::1')).toBe(true);
    expect(inside('2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1')).toBe(true);
    expect(inside('::ffff:10.0.0.0/104', '::ffff:10.1.2.3')).toBe(true);
  });

  it('never matches across families', () => {
    expect(inside('0.0.0.0/0', '::1')).toBe(false);
    expect(inside('::/0', '10.0.0.1')).toBe(false);
  });

  it('writes prefixes canonically (cache keys, messages)', () => {
    expect(formatPrefix(parsePrefix('2001:DB8:0:0::1/32')!)).toBe('2001:db8::/32');
    expect(formatPrefix(parsePrefix('10.1.2.3/8')!)).toBe('10.0.0.0/8');
  });

  it('rejects malformed prefixes', () => {
    for (const bad of ['', '10.0.0.0/33', '10.0.0/8', '256.1.1.1', '1.2.3.4/', '1.2.3.4/-1', 'abc', '::g', '2001:db8::/129', '1::2::3', '1.2.3.4/8/8', '01.2.3.4x']) {
      expect(parsePrefix(bad), bad).toBeUndefined();
    }
  });

  it('parses addresses into bytes', () => {
    expect(Array.from(parseIp('::1')!.bytes)).toEqual([...new Array(15).fill(0), 1]);
    expect(Array.from(parseIp('10.1.2.3')!.bytes)).toEqual([10, 1, 2, 3]);
  });
});

describe('durations and times', () => {
  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration('1.5s')).toBe(1500);
  });

  it('rejects what is not a duration', () => {
    for (const bad of ['', '5', '5x', '-5m', 'm', '1e3s', ' 5m', '5m ', '5 m', 'PT5M']) expect(parseDuration(bad), bad).toBeUndefined();
  });

  it('formats durations it can parse back', () => {
    for (const ms of [500, 1000, 90_000, 3_600_000, 86_400_000]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });

  it('resolves since/until as ISO times or durations ago', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    expect(parseTimeParam('5m', now)).toBe(now - 300_000);
    expect(parseTimeParam('2024-05-01T11:00:00Z', now)).toBe(Date.parse('2024-05-01T11:00:00Z'));
    expect(parseTimeParam('2024-05-01T11:00:00.123+02:00', now)).toBe(Date.parse('2024-05-01T09:00:00.123Z'));
    expect(parseTimeParam('2024-05-01', now)).toBe(Date.parse('2024-05-01T00:00:00Z'));
    for (const bad of ['yesterday', '2024-13-45T99:00:00Z', '1714564800', '2024-05-01T11:00:00']) expect(parseTimeParam(bad, now), bad).toBeUndefined();
  });
});

describe('protocol and flag names', () => {
  it('names the contract protocols and numbers the rest', () => {
    expect([1, 6, 17, 58, 132, 47].map(protoName)).toEqual(['icmp', 'tcp', 'udp', 'icmpv6', 'sctp', '47']);
    expect(protoNumber('TCP')).toBe(6);
    expect(protoNumber('47')).toBe(47);
    expect(protoNumber('256')).toBeUndefined();
    expect(protoNumber('tcpx')).toBeUndefined();
  });

  it('names TCP flags in bit order', () => {
    expect(tcpFlagNames(0x12)).toEqual(['SYN', 'ACK']);
    expect(tcpFlagNames(0x1ff)).toEqual(['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS']);
    expect(tcpFlagNames(0)).toEqual([]);
  });

  it('names the bits of bpf/flowscope.h enum tcp_flag, in its order', () => {
    const header = readFileSync(new URL('../../bpf/flowscope.h', import.meta.url), 'utf8');
    const bits = [...header.matchAll(/TCP_FLAG_(\w+)\s*=\s*1\s*<<\s*(\d+)/g)].map((m) => [m[1], Number(m[2])]);
    expect(bits).toEqual(TCP_FLAG_NAMES.map((name, i) => [name, i]));
  });
});

describe('filter parsing', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');
  it('parses every contract filter', () => {
    const f = parseFlowFilter({ src: '10.0.0.0/8', dst: '::1', ip: '1.2.3.4', port: 53, sport: 1, dport: 2, proto: 'udp', iface: 'eth0', direction: 'egress', since: '5m', until: '1m' }, now);
    expect(f.src?.bits).toBe(8);
    expect(f.dst?.family).toBe(6);
    expect(f.proto).toBe(17);
    expect(f.direction).toBe(1);
    expect(f.sinceMs).toBe(now - 300_000);
    expect(f.untilMs).toBe(now - 60_000);
  });

  it('explains what is allowed when a filter is bad', () => {
    expect(() => parseFlowFilter({ src: '10.0.0.0/40' }, now)).toThrow(/src.*not an IP address or CIDR/);
    expect(() => parseFlowFilter({ proto: 'bogus' }, now)).toThrow(/one of icmp, tcp, udp, icmpv6, sctp or a protocol number/);
    expect(() => parseFlowFilter({ since: 'later' }, now)).toThrow(/ISO 8601.*duration/);
    expect(() => parseFlowFilter({ since: '1m', until: '5m' }, now)).toThrow(FilterError);
    expect(() => parseFlowFilter({ port: 70000 }, now)).toThrow(/0 to 65535/);
  });
});

describe('ipv4Number', () => {
  it('reads dotted quads and refuses the rest', async () => {
    const { ipv4Number } = await import('../../src/flow/address-table.js');
    expect(ipv4Number('10.1.2.3')).toBe(0x0a010203);
    expect(ipv4Number('255.255.255.255')).toBe(2 ** 32 - 1);
    expect(ipv4Number('0.0.0.0')).toBe(0);
    for (const bad of ['::1', '2001:db8::1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.', '1234.1.1.1', '']) expect(ipv4Number(bad), bad).toBe(-1);
  });
});
