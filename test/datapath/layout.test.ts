/**
 * Locks the C structs of bpf/flowscope.h against the TypeScript decoder: the
 * offsets the compiler chose (reported by the addon with offsetof/sizeof) must
 * be the ones src/datapath/layout.ts reads, and a record written by the real
 * program must decode byte for byte.
 */
import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import { FLOW_KEY, FLOW_VALUE, IFACE_KEY, IFACE_RECORD, IFACE_TOTALS, IFACE_VALUE } from '../../src/datapath/layout.js';
import { FAILURE_NAMES } from '../../src/datapath/types.js';
import { loadNative } from '../../src/datapath/native.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { ETH_P_IPV6, IPPROTO, TCP, ethernet, ipBytes, ipv6, tcp } from '../helpers/frames.js';

describe('failure enum', () => {
  it('FAILURE_NAMES follows enum failure_kind in flowscope.h, in order', () => {
    const header = readFileSync(new URL('../../bpf/flowscope.h', import.meta.url), 'utf8');
    const body = /enum failure_kind \{([\s\S]*?)\};/.exec(header)![1];
    const entries = [...body.matchAll(/FAIL_([A-Z0-9_]+)\s*=\s*(\d+)/g)].map((m) => [m[1].toLowerCase(), Number(m[2])] as const);
    const kinds = entries.filter(([name]) => name !== 'kind_count');
    expect(kinds.map(([, n]) => n)).toEqual(kinds.map((_, i) => i));
    expect(kinds.map(([name]) => name)).toEqual([...FAILURE_NAMES]);
    expect(entries.find(([name]) => name === 'kind_count')?.[1]).toBe(FAILURE_NAMES.length);
  });
});

const skip = skipKernelTests('datapath layout');

describe.skipIf(skip)('struct layout', () => {
  let source: KernelFlowSource;
  beforeAll(() => {
    loadNative();
    source = new KernelFlowSource({ flowMapEntries: 64 });
  });
  afterAll(async () => source?.close());

  it('the compiled structs have the offsets the decoder reads', () => {
    const { layout } = source.nativeDatapath.info();
    expect(layout.flow_key).toEqual(FLOW_KEY);
    expect(layout.flow_value).toEqual(FLOW_VALUE);
    expect(layout.iface_key).toEqual(IFACE_KEY);
    expect(layout.iface_value).toEqual(IFACE_VALUE);
    expect(layout.iface_totals).toEqual(IFACE_TOTALS);
    expect(layout.iface_record).toEqual(IFACE_RECORD);
    expect(layout.failureKinds).toBe(FAILURE_NAMES.length);
  });

  it('a record written by the program decodes byte for byte', async () => {
    const src = '2001:db8::a';
    const dst = '2001:db8::b';
    const frame = ethernet(ETH_P_IPV6, ipv6({ src, dst, nextHeader: IPPROTO.TCP, payload: tcp(0x1234, 0xabcd, TCP.SYN | TCP.FIN) }));
    await source.nativeDatapath.testRun('flowscope_tc_egress', frame, 7);
    const raw = await source.nativeDatapath.drain(new ArrayBuffer(64 * (FLOW_KEY.size + FLOW_VALUE.size)));
    expect(raw.flowCount).toBe(1);
    const keys = Buffer.from(raw.flows, 0, FLOW_KEY.size);
    const v = Buffer.from(raw.flows, raw.flowCapacity * FLOW_KEY.size, FLOW_VALUE.size);

    const expected = Buffer.alloc(FLOW_KEY.size);
    expected.writeUInt32LE(1, FLOW_KEY.ifindex); // BPF_PROG_TEST_RUN runs on lo
    expected.writeUInt16LE(0x1234, FLOW_KEY.sport); // host byte order
    expected.writeUInt16LE(0xabcd, FLOW_KEY.dport);
    ipBytes(src).copy(expected, FLOW_KEY.src);
    ipBytes(dst).copy(expected, FLOW_KEY.dst);
    expected[FLOW_KEY.family] = 6;
    expected[FLOW_KEY.direction] = 1;
    expected[FLOW_KEY.proto] = 6;
    expect(keys.toString('hex')).toBe(expected.toString('hex'));

    expect(v.readBigUInt64LE(FLOW_VALUE.packets)).toBe(7n);
    expect(v.readBigUInt64LE(FLOW_VALUE.bytes)).toBe(BigInt(7 * frame.length));
    expect(v.readBigUInt64LE(FLOW_VALUE.first_seen_ns) > 0n).toBe(true);
    expect(v.readBigUInt64LE(FLOW_VALUE.last_seen_ns) >= v.readBigUInt64LE(FLOW_VALUE.first_seen_ns)).toBe(true);
    expect(v.readUInt16LE(FLOW_VALUE.tcp_flags)).toBe(0x3);
    expect(v.subarray(FLOW_VALUE.pad, FLOW_VALUE.cgroup_id).every((b) => b === 0)).toBe(true);
    // At egress the flow takes the cgroup of the skb's socket: BPF_PROG_TEST_RUN gives the frame one of the calling process's.
    expect(Number(v.readBigUInt64LE(FLOW_VALUE.cgroup_id))).toBe(ownCgroupId());

    const i = raw.ifaces.subarray(0, IFACE_RECORD.size);
    expect(raw.ifaceCount).toBe(1);
    expect(i.readUInt32LE(IFACE_KEY.ifindex)).toBe(1);
    expect(i[IFACE_KEY.direction]).toBe(1);
    expect(i.readBigUInt64LE(IFACE_RECORD.totals + IFACE_TOTALS.packets)).toBe(7n);
    expect(i.readBigUInt64LE(IFACE_RECORD.totals + IFACE_TOTALS.bytes)).toBe(BigInt(7 * frame.length));
  });
});

/** The cgroup v2 id (directory inode) of this process. */
function ownCgroupId(): number {
  const root = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2')!.split(' ')[1];
  const rel = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'))!.slice(3);
  return statSync(root + rel).ino;
}
