/**
 * Datapath cost per packet: BPF_PROG_TEST_RUN of the real programs on one
 * frame, repeated 1e6 times (the kernel reports the mean time of one run),
 * next to an empty program of the same type loaded from the same object in
 * the same run. "hot" is one flow hit again and again; "64k flows" walks
 * 65,536 distinct flows (bench_flow_spread knob) in a map that holds them all.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import { ETH_P_IP, ETH_P_IPV6, IPPROTO, ethernet, ipv4, ipv6, udp } from '../../test/helpers/frames.js';
import { machineLine, median, writeSection } from '../results.js';

const REPEAT = 1_000_000;
const ROUNDS = 7;
const SPREAD = 65_536;

const frames = {
  IPv4: ethernet(ETH_P_IP, ipv4({ src: '198.18.0.2', dst: '198.18.0.1', proto: IPPROTO.UDP, payload: udp(40000, 53, Buffer.alloc(18)) })),
  IPv6: ethernet(ETH_P_IPV6, ipv6({ src: 'fd00:f10c::2', dst: 'fd00:f10c::1', nextHeader: IPPROTO.UDP, payload: udp(40000, 53, Buffer.alloc(18)) })),
};

async function timeProgram(source: KernelFlowSource, program: string, frame: Buffer): Promise<number> {
  await source.nativeDatapath.testRun(program, frame, REPEAT); // warm: fills the map, faults in the pages
  const runs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    runs.push((await source.nativeDatapath.testRun(program, frame, REPEAT)).durationNs);
    await source.drain(); // keeps the 64k case at 64k entries per generation, not growing
    await source.nativeDatapath.testRun(program, frame, Math.min(REPEAT, SPREAD)); // refill before the next round
  }
  return median(runs);
}

/**
 * What creating entries costs: SPREAD packets of distinct flows into empty
 * maps, so every packet creates its flow's entry (and, with attribution on,
 * looks up its socket once). Median ns per packet.
 */
async function timeNewFlows(source: KernelFlowSource, program: string, frame: Buffer): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    await source.drain();
    await source.drain(); // both generations empty
    runs.push((await source.nativeDatapath.testRun(program, frame, SPREAD)).durationNs);
  }
  return median(runs);
}

/**
 * The minimal per-CPU hash counters of baselines.bpf.c, run with bpftool's
 * BPF_PROG_TEST_RUN on the same frame: what the map alone costs per key size.
 */
function timeBaselineCounters(frame: Buffer): { u32KeyNs: number; flowKeyNs: number } {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const work = mkdtempSync(path.join(tmpdir(), 'flowscope-bench-'));
  const pin = `/sys/fs/bpf/flowscope-bench-${process.pid}`;
  try {
    const obj = path.join(work, 'baselines.bpf.o');
    const multiarch = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
    execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-I/usr/include/${multiarch}`, `-I${path.join(here, '../../bpf')}`, '-c', path.join(here, 'baselines.bpf.c'), '-o', obj]);
    execFileSync('bpftool', ['prog', 'loadall', obj, pin], { stdio: 'ignore' });
    const data = path.join(work, 'frame.bin');
    writeFileSync(data, frame);
    const run = (prog: string) => {
      const runs: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const out = execFileSync('bpftool', ['prog', 'run', 'pinned', `${pin}/${prog}`, 'data_in', data, 'repeat', String(REPEAT)], { encoding: 'utf8' });
        runs.push(Number(/duration \(average\): (\d+)ns/.exec(out)![1]));
      }
      return median(runs);
    };
    return { u32KeyNs: run('counter_u32_key'), flowKeyNs: run('counter_flow_key') };
  } finally {
    rmSync(pin, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

export interface PerPacketRow {
  hook: string;
  family: string;
  emptyNs: number;
  hotNs: number;
  spreadNs: number;
  /** SPREAD new flows into empty maps, attribution off and on */
  newOffNs: number;
  newOnNs: number;
  /** minimal per-CPU hash counters (XDP), 4-byte key and 48-byte key */
  minU32KeyNs: number;
  minFlowKeyNs: number;
}

export async function benchPerPacket(): Promise<PerPacketRow[]> {
  const hot = new KernelFlowSource({ flowMapEntries: 1024, loadBenchPrograms: true });
  const spread = new KernelFlowSource({ flowMapEntries: SPREAD * 2, benchFlowSpread: SPREAD, loadBenchPrograms: true });
  const spreadOff = new KernelFlowSource({ flowMapEntries: SPREAD * 2, benchFlowSpread: SPREAD, loadBenchPrograms: true, attribution: false });
  const rows: PerPacketRow[] = [];
  try {
    for (const [hook, program, empty] of [
      ['tc', 'flowscope_tc_ingress', 'flowscope_bench_empty_tc'],
      ['xdp', 'flowscope_xdp_ingress', 'flowscope_bench_empty_xdp'],
    ] as const) {
      for (const [family, frame] of Object.entries(frames)) {
        const minimal = timeBaselineCounters(frame);
        rows.push({
          hook, family, minU32KeyNs: minimal.u32KeyNs, minFlowKeyNs: minimal.flowKeyNs,
          emptyNs: await timeProgram(hot, empty, frame),
          hotNs: await timeProgram(hot, program, frame),
          spreadNs: await timeProgram(spread, program, frame),
          newOffNs: await timeNewFlows(spreadOff, program, frame),
          newOnNs: await timeNewFlows(spread, program, frame),
        });
      }
    }
  } finally {
    await hot.close();
    await spread.close();
    await spreadOff.close();
  }
  return rows;
}

export function perPacketMarkdown(rows: PerPacketRow[]): string {
  const lines = [
    '## Datapath: cost per packet',
    '',
    `Command: \`npm run bench -- per-packet\` (bench/datapath/per-packet.ts). ${machineLine()}.`,
    `BPF_PROG_TEST_RUN, repeat ${REPEAT.toExponential(0)}, median of ${ROUNDS} rounds; ns per packet as the kernel reports it.`,
    'The empty program of the same type, loaded from the same object, is the baseline; "added" is what flowscope costs on top of it.',
    'Two more baselines put the map in context (bench/datapath/baselines.bpf.c, XDP, same frame, same run): a minimal per-CPU hash',
    'counter (lookup-or-insert, two adds) with a 4-byte key, and the same counter with a key of struct flow_key\'s 48 bytes.',
    'Target: ≤ 40 ns per packet for a hot flow.',
    '"64k new flows": 65,536 distinct flows into empty maps, so every packet creates its entry; with attribution on (the default)',
    'each creation also takes its socket\'s cgroup (at TC/XDP ingress a socket lookup, which finds none for these crafted frames), off',
    'with `--attribution false`. Attribution costs nothing on packets of existing flows: it runs once per entry and generation.',
    '',
    '| hook | family | empty program | hot flow | added (hot) | 64k distinct flows | added (64k) | 64k new flows, attribution off | on | min. counter, 4-byte key | min. counter, 48-byte key |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.hook} | ${r.family} | ${r.emptyNs} ns | ${r.hotNs} ns | ${r.hotNs - r.emptyNs} ns | ${r.spreadNs} ns | ${r.spreadNs - r.emptyNs} ns | ${r.newOffNs} ns | ${r.newOnNs} ns | ${r.minU32KeyNs} ns | ${r.minFlowKeyNs} ns |`),
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await benchPerPacket();
  const md = perPacketMarkdown(rows);
  console.log(md);
  writeSection('datapath-per-packet', md);
}
