/**
 * Parser edge cases: crafted frames through the real programs with
 * BPF_PROG_TEST_RUN, then a real drain. Every frame must be counted exactly
 * once per interface, and parsed right or not at all (never misparsed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import type { FailureName } from '../../src/datapath/types.js';
import { skipKernelTests } from '../helpers/kernel.js';
import {
  ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO, TCP,
  ethernet, icmp, ipv4, ipv6, tcp, udp,
} from '../helpers/frames.js';

const skip = skipKernelTests('datapath parser');

interface ExpectedFlow {
  family: 4 | 6;
  src: string;
  dst: string;
  proto: number;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  tcpFlags?: number;
}

interface Case {
  name: string;
  frame: Buffer;
  /** undefined: the frame is not a flow and lands in other_* */
  flow?: ExpectedFlow;
  failure?: FailureName;
  /** BPF_PROG_TEST_RUN refuses skbs whose IP header is shorter than 20/40 bytes (EINVAL), so these go through XDP only */
  xdpOnly?: boolean;
}

const v4 = { src: '198.18.0.2', dst: '198.18.0.1' };
const v6 = { src: 'fd00:f10c::2', dst: 'fd00:f10c::1' };
const payload = (n: number) => Buffer.alloc(n, 0x5a);
// Bytes that would read as ports 0x1111/0x2222 if a parser took them for a transport header.
const decoy = Buffer.from([0x11, 0x11, 0x22, 0x22, 0, 8, 0, 0, 1, 2, 3, 4]);

const cases: Case[] = [
  {
    name: 'IPv4 UDP',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, payload: udp(40000, 53, payload(30)) })),
    flow: { family: 4, ...v4, proto: 17, sport: 40000, dport: 53 },
  },
  {
    name: 'IPv4 TCP with SYN, ACK and NS',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.TCP, payload: tcp(443, 51000, TCP.SYN | TCP.ACK, payload(0), true) })),
    flow: { family: 4, ...v4, proto: 6, sport: 443, dport: 51000, tcpFlags: 0x2 | 0x10 | 0x100 },
  },
  {
    name: 'IPv4 with 12 bytes of options (IHL 8)',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, options: Buffer.from([0x94, 4, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0]), payload: udp(1234, 5678, payload(8)) })),
    flow: { family: 4, ...v4, proto: 17, sport: 1234, dport: 5678 },
  },
  {
    name: 'IPv4 ICMP echo request',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.ICMP, payload: icmp(8, 0, payload(56)) })),
    flow: { family: 4, ...v4, proto: 1, sport: 0, dport: 0, icmpType: 8, icmpCode: 0 },
  },
  {
    name: 'IPv4 ICMP port unreachable',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.ICMP, payload: icmp(3, 3, payload(28)) })),
    flow: { family: 4, ...v4, proto: 1, icmpType: 3, icmpCode: 3 },
  },
  {
    name: 'IPv4 first fragment (MF, offset 0): ports read',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, moreFragments: true, payload: udp(7000, 8000, payload(40)) })),
    flow: { family: 4, ...v4, proto: 17, sport: 7000, dport: 8000 },
  },
  {
    name: 'IPv4 non-first fragment: no transport header, ports 0',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, fragOffset: 185, payload: decoy })),
    flow: { family: 4, ...v4, proto: 17, sport: 0, dport: 0 },
    failure: 'fragment',
  },
  {
    name: 'IPv4 header cut short (10 of 20 bytes)',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, payload: udp(1, 2) }).subarray(0, 10)),
    failure: 'truncated_l3',
    xdpOnly: true,
  },
  {
    name: 'IPv4 with IHL 3 (invalid)',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, ihl: 3, payload: udp(1, 2) })),
    failure: 'truncated_l3',
  },
  {
    name: 'IPv4 options cut short: addresses kept, ports 0',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, ihl: 15, payload: decoy })),
    flow: { family: 4, ...v4, proto: 17, sport: 0, dport: 0 },
    failure: 'truncated_l3',
  },
  {
    name: 'IPv4 UDP header cut short (2 bytes)',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, payload: Buffer.from([0x11, 0x11]) })),
    flow: { family: 4, ...v4, proto: 17, sport: 0, dport: 0 },
    failure: 'truncated_l4',
  },
  {
    name: 'IPv4 TCP header cut short (12 bytes: no flags)',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.TCP, payload: tcp(80, 81, TCP.SYN).subarray(0, 12) })),
    flow: { family: 4, ...v4, proto: 6, sport: 0, dport: 0, tcpFlags: 0 },
    failure: 'truncated_l4',
  },
  {
    name: 'IPv4 SCTP',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.SCTP, payload: udp(3868, 3869, payload(16)) })),
    flow: { family: 4, ...v4, proto: 132, sport: 3868, dport: 3869 },
  },
  {
    name: 'IPv4 GRE: a protocol without ports',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.GRE, payload: decoy })),
    flow: { family: 4, ...v4, proto: 47, sport: 0, dport: 0 },
  },
  {
    name: 'ICMPv6 carried in IPv4 is not read as ICMP',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.ICMPV6, payload: icmp(128, 0) })),
    flow: { family: 4, ...v4, proto: 58, icmpType: 0, icmpCode: 0 },
  },
  {
    name: '802.1Q VLAN, IPv4 UDP',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, payload: udp(5000, 5001, payload(10)) }), [{ tpid: ETH_P_8021Q, vid: 100 }]),
    flow: { family: 4, ...v4, proto: 17, sport: 5000, dport: 5001 },
  },
  {
    name: '802.1ad + 802.1Q (QinQ), IPv6 UDP',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.UDP, payload: udp(5002, 5003, payload(10)) }), [
      { tpid: ETH_P_8021AD, vid: 10 },
      { tpid: ETH_P_8021Q, vid: 20 },
    ]),
    flow: { family: 6, ...v6, proto: 17, sport: 5002, dport: 5003 },
  },
  {
    name: 'three VLAN tags: beyond the parser, not a flow',
    frame: ethernet(ETH_P_IP, ipv4({ ...v4, proto: IPPROTO.UDP, payload: udp(1, 2) }), [
      { tpid: ETH_P_8021AD, vid: 1 },
      { tpid: ETH_P_8021Q, vid: 2 },
      { tpid: ETH_P_8021Q, vid: 3 },
    ]),
    failure: 'vlan_limit',
  },
  {
    name: 'VLAN tag cut short',
    frame: ethernet(ETH_P_8021Q, Buffer.from([0, 100])),
    failure: 'truncated_l2',
  },
  {
    name: 'IPv6 UDP',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.UDP, payload: udp(33000, 443, payload(100)) })),
    flow: { family: 6, ...v6, proto: 17, sport: 33000, dport: 443 },
  },
  {
    name: 'IPv6 addresses in RFC 5952 form',
    frame: ethernet(ETH_P_IPV6, ipv6({ src: '2001:db8:0:0:1:0:0:1', dst: '::ffff:198.18.0.9', nextHeader: IPPROTO.UDP, payload: udp(1, 2) })),
    flow: { family: 6, src: '2001:db8::1:0:0:1', dst: '::ffff:198.18.0.9', proto: 17, sport: 1, dport: 2 },
  },
  {
    name: 'IPv6 hop-by-hop + routing + destination options, then TCP',
    frame: ethernet(ETH_P_IPV6, ipv6({
      ...v6, nextHeader: IPPROTO.TCP, payload: tcp(22, 60000, TCP.ACK | TCP.PSH, payload(20)),
      ext: [{ type: IPPROTO.HOPOPTS, length: 8 }, { type: IPPROTO.ROUTING, length: 24 }, { type: IPPROTO.DSTOPTS, length: 16 }],
    })),
    flow: { family: 6, ...v6, proto: 6, sport: 22, dport: 60000, tcpFlags: 0x8 | 0x10 },
  },
  {
    name: 'IPv6 authentication header, then UDP',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.UDP, payload: udp(500, 4500), ext: [{ type: IPPROTO.AH, length: 24 }] })),
    flow: { family: 6, ...v6, proto: 17, sport: 500, dport: 4500 },
  },
  {
    name: 'IPv6 first fragment: ports read',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.UDP, payload: udp(9000, 9001, payload(64)), ext: [{ type: IPPROTO.FRAGMENT, fragOffset: 0 }] })),
    flow: { family: 6, ...v6, proto: 17, sport: 9000, dport: 9001 },
  },
  {
    name: 'IPv6 non-first fragment: ports 0',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.UDP, payload: decoy, ext: [{ type: IPPROTO.FRAGMENT, fragOffset: 100 }] })),
    flow: { family: 6, ...v6, proto: 17, sport: 0, dport: 0 },
    failure: 'fragment',
  },
  {
    name: 'IPv6 with 9 extension headers: beyond the walk, ports 0',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.UDP, payload: udp(1, 2), ext: Array.from({ length: 9 }, () => ({ type: IPPROTO.DSTOPTS })) })),
    flow: { family: 6, ...v6, proto: IPPROTO.DSTOPTS, sport: 0, dport: 0 },
    failure: 'ipv6_ext_limit',
  },
  {
    name: 'IPv6 extension header cut short',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.UDP, payload: Buffer.alloc(0), ext: [{ type: IPPROTO.HOPOPTS, length: 8 }] }).subarray(0, 41)),
    flow: { family: 6, ...v6, proto: IPPROTO.HOPOPTS, sport: 0, dport: 0 },
    failure: 'truncated_l4',
  },
  {
    name: 'IPv6 header cut short (20 of 40 bytes)',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.UDP, payload: udp(1, 2) }).subarray(0, 20)),
    failure: 'truncated_l3',
    xdpOnly: true,
  },
  {
    name: 'ICMPv6 echo request',
    frame: ethernet(ETH_P_IPV6, ipv6({ ...v6, nextHeader: IPPROTO.ICMPV6, payload: icmp(128, 0, payload(32)) })),
    flow: { family: 6, ...v6, proto: 58, icmpType: 128, icmpCode: 0 },
  },
  {
    name: 'ARP: not IP, counted as other',
    frame: ethernet(ETH_P_ARP, payload(28)),
  },
  {
    name: 'LLDP: not IP, counted as other',
    frame: ethernet(0x88cc, payload(40)),
  },
];

const programs = [
  { program: 'flowscope_tc_ingress', direction: 'ingress' },
  { program: 'flowscope_tc_egress', direction: 'egress' },
  { program: 'flowscope_xdp_ingress', direction: 'ingress' },
] as const;

describe.skipIf(skip)('parser edge cases through BPF_PROG_TEST_RUN', () => {
  let source: KernelFlowSource;
  let lastFailures: Record<FailureName, number>;

  beforeAll(async () => {
    source = new KernelFlowSource({ flowMapEntries: 1024 });
    lastFailures = (await source.drain()).failures;
  });
  afterAll(async () => {
    await source?.close();
  });

  for (const { program, direction } of programs) {
    for (const c of cases.filter((c) => !c.xdpOnly || program.includes('xdp'))) {
      it(`${program}: ${c.name}`, async () => {
        const repeat = 3;
        const run = await source.nativeDatapath.testRun(program, c.frame, repeat);
        expect(run.retval).toBe(program.includes('xdp') ? 2 /* XDP_PASS */ : -1 /* TC_ACT_UNSPEC */);
        const d = await source.drain();

        // Exactly this frame, `repeat` times, on the test device (lo, ifindex 1).
        expect(d.interfaces).toEqual([{
          ifindex: 1, direction,
          packets: repeat, bytes: repeat * c.frame.length,
          otherPackets: c.flow ? 0 : repeat, otherBytes: c.flow ? 0 : repeat * c.frame.length,
          overflowPackets: 0, overflowBytes: 0,
        }]);

        const changed = Object.entries(d.failures).filter(([k, v]) => v !== lastFailures[k as FailureName]).map(([k, v]) => [k, v - lastFailures[k as FailureName]]);
        lastFailures = d.failures;
        expect(changed).toEqual(c.failure ? [[c.failure, repeat]] : []);

        if (!c.flow) {
          expect(d.flows.count).toBe(0);
          return;
        }
        expect(d.flows.count).toBe(1);
        const f = d.flows;
        const got = {
          family: f.family(0), src: f.src(0), dst: f.dst(0), proto: f.proto(0),
          sport: f.sport(0), dport: f.dport(0), icmpType: f.icmpType(0), icmpCode: f.icmpCode(0), tcpFlags: f.tcpFlags(0),
        };
        expect(got).toEqual({ sport: 0, dport: 0, icmpType: 0, icmpCode: 0, tcpFlags: 0, ...c.flow });
        expect(f.ifindex(0)).toBe(1);
        expect(f.direction(0)).toBe(direction);
        expect(f.packets(0)).toBe(repeat);
        expect(f.bytes(0)).toBe(repeat * c.frame.length);
        expect(f.firstSeenMs(0)).toBeLessThanOrEqual(f.lastSeenMs(0));
        expect(Math.abs(f.lastSeenMs(0) - Date.now())).toBeLessThan(60_000);
      });
    }
  }
});
