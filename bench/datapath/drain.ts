/**
 * Drain throughput: flows per second from a full flow map into TypeScript,
 * next to two baselines on the same map in the same run:
 *   - a bare C loop of bpf_map_lookup_and_delete_batch (drain-baseline.c),
 *     the syscall's own limit;
 *   - `bpftool map dump`, what an operator would use by hand.
 * The map is filled by the real program through BPF_PROG_TEST_RUN with the
 * bench_flow_spread knob (N distinct flows), so it holds what production holds.
 *
 * flowscope's drain is measured three ways: the map walk alone (what the
 * baseline does, plus summing the CPUs' values and writing records), the whole
 * drain() call (the walk plus the generation flip, which waits one RCU grace
 * period: latency, not CPU), and drain() plus reading every field of every
 * flow in TypeScript (what the service does with a drain).
 *
 * The baselines run as processes of their own, started by a runner process
 * (process-runner.mjs) that this one starts before it allocates any buffer:
 * a fork of this process (execFileSync) would leave every page of the drain
 * buffers copy-on-write, and the next drain would pay a write fault per page
 * (measured: twice the walk's time at 1M flows). The agent never forks.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import { FLOW_KEY, FLOW_VALUE } from '../../src/datapath/layout.js';
import type { FlowBatch } from '../../src/datapath/types.js';
import { ETH_P_IP, IPPROTO, ethernet, ipv4, udp } from '../../test/helpers/frames.js';
import { machineLine, median, writeSection } from '../results.js';

const SIZES = [10_000, 100_000, 1_000_000];
const ROUNDS = 3;
const here = path.dirname(new URL(import.meta.url).pathname);
const BASELINE_BIN = path.join(here, '.output', 'drain-baseline');
const frame = ethernet(ETH_P_IP, ipv4({ src: '198.18.0.2', dst: '198.18.0.1', proto: IPPROTO.UDP, payload: udp(40000, 53, Buffer.alloc(18)) }));

function buildBaseline(): void {
  mkdirSync(path.dirname(BASELINE_BIN), { recursive: true });
  execFileSync('cc', ['-O2', '-o', BASELINE_BIN, path.join(here, 'drain-baseline.c'), ...execFileSync('pkg-config', ['--libs', 'libbpf'], { encoding: 'utf8' }).trim().split(/\s+/)]);
}

/** Reads every field of every flow, as the service's aggregation does. */
export function consume(f: FlowBatch): number {
  let acc = 0;
  for (let i = 0; i < f.count; i++) {
    acc += f.ifindex(i) + f.proto(i) + f.sport(i) + f.dport(i) + f.packets(i) + f.bytes(i) + f.tcpFlags(i) + f.icmpType(i);
    acc += f.firstSeenMs(i) + f.lastSeenMs(i) + f.key(i).length + f.src(i).length + f.dst(i).length + (f.direction(i) === 'ingress' ? 1 : 0);
  }
  return acc;
}

export interface DrainRow {
  flows: number;
  bareCNs: number;
  bpftoolNs: number;
  walkNs: number;
  drainNs: number;
  barrierNs: number;
  drainAndReadNs: number;
}

/** The runner process: runs a command and answers with its time (and output when asked). */
function startRunner(): { run(file: string, args: string[], keepStdout?: boolean): Promise<{ ns: number; stdout: string }>; close(): void } {
  const child = spawn(process.execPath, [path.join(here, 'process-runner.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    async run(file, args, keepStdout = false) {
      child.stdin!.write(JSON.stringify({ file, args, keepStdout }) + '\n');
      const { value, done } = await answers.next();
      if (done) throw new Error('the runner process ended');
      const answer = JSON.parse(value as string) as { ns: number; stdout: string; error?: string };
      if (answer.error) throw new Error(`${file}: ${answer.error}`);
      return answer;
    },
    close: () => child.stdin!.end(),
  };
}

export async function benchDrain(sizes = SIZES): Promise<DrainRow[]> {
  buildBaseline();
  const runner = startRunner();
  try {
    return await benchDrainWith(runner, sizes);
  } finally {
    runner.close();
  }
}

async function benchDrainWith(runner: ReturnType<typeof startRunner>, sizes: number[]): Promise<DrainRow[]> {
  const rows: DrainRow[] = [];
  for (const n of sizes) {
    const source = new KernelFlowSource({ flowMapEntries: n, benchFlowSpread: n });
    const dp = source.nativeDatapath;
    const activeMapId = () => dp.info().mapIds[dp.info().activeGen === 0 ? 'flows_gen0' : 'flows_gen1'];
    const fill = async () => {
      await dp.testRun('flowscope_xdp_ingress', frame, n);
    };
    const r: Record<'bareC' | 'bpftool' | 'walk' | 'drain' | 'barrier' | 'read', number[]> = { bareC: [], bpftool: [], walk: [], drain: [], barrier: [], read: [] };
    // The raw drain reuses one buffer, as the source does with its two.
    const target = new ArrayBuffer(n * (FLOW_KEY.size + FLOW_VALUE.size));
    try {
      // Warm-up, not measured: the first drains fault in the buffers' pages once.
      for (let i = 0; i < 2; i++) {
        await fill();
        await dp.drain(target);
        await fill();
        consume((await source.drain()).flows);
      }
      for (let round = 0; round < ROUNDS; round++) {
        await fill();
        const bare = JSON.parse((await runner.run(BASELINE_BIN, [String(activeMapId())], true)).stdout) as { entries: number; ns: number };
        if (bare.entries !== n) throw new Error(`baseline drained ${bare.entries} flows, expected ${n}`);
        r.bareC.push(bare.ns);

        await fill();
        r.bpftool.push((await runner.run('bpftool', ['map', 'dump', 'id', String(activeMapId())])).ns);

        // the map is still full: bpftool only read it
        const raw0 = process.hrtime.bigint();
        const raw = await dp.drain(target);
        const rawEnd = process.hrtime.bigint();
        if (raw.flowCount !== n) throw new Error(`drained ${raw.flowCount} flows, expected ${n}`);
        r.walk.push(raw.durationNs - raw.barrierNs);
        r.barrier.push(raw.barrierNs);
        r.drain.push(Number(rawEnd - raw0));

        await fill();
        const d0 = process.hrtime.bigint();
        const drained = await source.drain();
        consume(drained.flows);
        r.read.push(Number(process.hrtime.bigint() - d0));
        if (drained.flows.count !== n) throw new Error(`drained ${drained.flows.count} flows, expected ${n}`);
      }
    } finally {
      await source.close();
    }
    rows.push({
      flows: n, bareCNs: median(r.bareC), bpftoolNs: median(r.bpftool), walkNs: median(r.walk),
      drainNs: median(r.drain), barrierNs: median(r.barrier), drainAndReadNs: median(r.read),
    });
  }
  return rows;
}

const rate = (n: number, ns: number) => `${Math.round(n / (ns / 1e9)).toLocaleString('en-US')}/s`;
const ms = (ns: number) => `${(ns / 1e6).toFixed(1)} ms`;

export function drainMarkdown(rows: DrainRow[]): string {
  return [
    '## Datapath: drain throughput',
    '',
    `Command: \`npm run bench -- drain\` (bench/datapath/drain.ts). ${machineLine()}. Median of ${ROUNDS} rounds.`,
    'Baselines on the same map in the same run: a bare C loop of `bpf_map_lookup_and_delete_batch` (bench/datapath/drain-baseline.c,',
    'same batch size) and `bpftool map dump`. "map walk" is flowscope\'s own lookup_and_delete_batch loop with the per-CPU summing',
    'and record writing; "drain()" adds the generation flip, which waits one RCU grace period (sleeping, not computing);',
    '"drain() + read" also reads every field of every flow in TypeScript (addresses as text, the key string).',
    'Target: ≥ 0.8× the bare C loop.',
    '',
    '| flows | bare C loop | bpftool map dump | map walk | ×bare | drain() | of which flip | drain() + read in TS | ×bare |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) =>
      `| ${r.flows.toLocaleString('en-US')} | ${rate(r.flows, r.bareCNs)} (${ms(r.bareCNs)}) | ${rate(r.flows, r.bpftoolNs)} (${ms(r.bpftoolNs)}) | ` +
      `${rate(r.flows, r.walkNs)} (${ms(r.walkNs)}) | ${(r.bareCNs / r.walkNs).toFixed(2)} | ${ms(r.drainNs)} | ${ms(r.barrierNs)} | ` +
      `${rate(r.flows, r.drainAndReadNs)} (${ms(r.drainAndReadNs)}) | ${(r.bareCNs / r.drainAndReadNs).toFixed(2)} |`),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const md = drainMarkdown(await benchDrain());
  console.log(md);
  writeSection('datapath-drain', md);
}
