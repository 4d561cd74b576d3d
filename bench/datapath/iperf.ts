/**
 * Overhead on real traffic: iperf3 UDP (small datagrams, as many as the
 * sender can make) from a namespace over a veth pair to the host, received
 * packets/s on the host side, with nothing attached, with an empty program at
 * the same hooks, and with flowscope, alternated A/B/C round by round in one
 * run so that drift hits every variant alike.
 *
 *   npm run bench -- iperf [rounds] [seconds]
 *
 * tc: programs at TC ingress and egress of the host's veth; xdp: XDP at
 * ingress, TC at egress (flowscope's --hook xdp). flowscope runs as the agent
 * does: a KernelFlowSource drained every second, attribution on.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import { createVethPair, quietLink, type VethPair } from '../../test/helpers/netns.js';
import { iproute2BpffsCleanup } from '../../test/helpers/iproute2-bpffs.js';
import { machineLine, median, writeSection } from '../results.js';

const rounds = Number(process.argv[2] ?? 5);
const seconds = Number(process.argv[3] ?? 5);
const PORT = 45_201;
const PAYLOAD = 64;

const here = path.dirname(new URL(import.meta.url).pathname);
const work = mkdtempSync(path.join(tmpdir(), 'flowscope-iperf-'));
const emptyObj = path.join(work, 'empty.bpf.o');
const multiarch = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8' }).trim();
execFileSync('clang', ['-g', '-O2', '-target', 'bpf', `-I/usr/include/${multiarch}`, '-c', path.join(here, 'empty.bpf.c'), '-o', emptyObj]);

// tc and ip load the empty program through iproute2, which makes its directories under /sys/fs/bpf
const removeBpffsDirs = iproute2BpffsCleanup();
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** Received datagrams per second at the host's iperf3 server over one run. */
async function measure(pair: VethPair): Promise<number> {
  const server = spawn('iperf3', ['-s', '-1', '-p', String(PORT), '-B', pair.hostV4, '-J'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  await new Promise((r) => setTimeout(r, 300));
  pair.exec('iperf3', ['-c', pair.hostV4, '-p', String(PORT), '-u', '-b', '0', '-l', String(PAYLOAD), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 30) * 1000 });
  await done;
  const r = JSON.parse(out) as { end: { sum: { packets: number; lost_packets: number; seconds: number } } };
  return (r.end.sum.packets - r.end.sum.lost_packets) / r.end.sum.seconds;
}

type Variant = { name: string; setUp(pair: VethPair): Promise<() => Promise<void>> };

const none: Variant = { name: 'nothing attached', setUp: async () => async () => undefined };

const emptyAt = (hook: 'tc' | 'xdp'): Variant => ({
  name: `empty program (${hook})`,
  async setUp(pair) {
    sh('tc', ['qdisc', 'add', 'dev', pair.hostIf, 'clsact']);
    sh('tc', ['filter', 'add', 'dev', pair.hostIf, 'egress', 'bpf', 'da', 'obj', emptyObj, 'sec', 'tc']);
    if (hook === 'tc') sh('tc', ['filter', 'add', 'dev', pair.hostIf, 'ingress', 'bpf', 'da', 'obj', emptyObj, 'sec', 'tc']);
    else sh('ip', ['link', 'set', 'dev', pair.hostIf, 'xdpdrv', 'obj', emptyObj, 'sec', 'xdp']);
    return async () => {
      if (hook === 'xdp') sh('ip', ['link', 'set', 'dev', pair.hostIf, 'xdpdrv', 'off']);
      sh('tc', ['qdisc', 'del', 'dev', pair.hostIf, 'clsact']);
    };
  },
});

const flowscopeAt = (hook: 'tc' | 'xdp'): Variant => ({
  name: `flowscope (${hook})`,
  async setUp(pair) {
    const source = new KernelFlowSource({ flowMapEntries: 65_536 });
    await source.attach(pair.hostIf, hook);
    const timer = setInterval(() => void source.drain(), 1000);
    return async () => {
      clearInterval(timer);
      await source.close();
    };
  },
});

const pair = createVethPair(71);
const results = new Map<string, number[]>();
try {
  quietLink(pair);
  for (const hook of ['tc', 'xdp'] as const) {
    const variants = [none, emptyAt(hook), flowscopeAt(hook)];
    for (let r = 0; r < rounds; r++) {
      for (const v of variants) {
        const tearDown = await v.setUp(pair);
        try {
          const pps = await measure(pair);
          const key = `${hook}|${v.name}`;
          results.set(key, [...(results.get(key) ?? []), pps]);
          console.log(`${hook} round ${r + 1}: ${v.name}: ${Math.round(pps)} packets/s`);
        } finally {
          await tearDown();
        }
      }
    }
  }
} finally {
  pair.destroy();
  rmSync(work, { recursive: true, force: true });
  removeBpffsDirs();
}

const fmt = (n: number) => `${Math.round(n).toLocaleString('en-US')}`;
const rows: string[] = [];
for (const hook of ['tc', 'xdp'] as const) {
  const base = median(results.get(`${hook}|nothing attached`)!);
  const empty = median(results.get(`${hook}|empty program (${hook})`)!);
  const ours = median(results.get(`${hook}|flowscope (${hook})`)!);
  rows.push(`| ${hook} | ${fmt(base)} | ${fmt(empty)} (${((empty / base) * 100).toFixed(1)}%) | ${fmt(ours)} (${((ours / base) * 100).toFixed(1)}%) | ${((ours / empty) * 100).toFixed(1)}% |`);
}
writeSection(
  'datapath-iperf',
  `## Datapath: overhead on real traffic

Command: \`npm run bench -- iperf ${rounds} ${seconds}\` (bench/datapath/iperf.ts). ${machineLine()}.
iperf3 UDP, ${PAYLOAD}-byte datagrams at full speed (\`-b 0\`) for ${seconds} s from a namespace over a veth pair; datagrams/s received by
the host's iperf3. Variants alternated round by round (${rounds} rounds), median. "empty program": the cheapest program at the same
hooks (bench/datapath/empty.bpf.c); flowscope as the agent runs it (drained every second, attribution on). The sender and receiver
share the machine's 2 cores with the programs, so what a hook costs shows as fewer datagrams/s.

| hook | nothing attached | empty program | flowscope | flowscope / empty program |
|---|---:|---:|---:|---:|
${rows.join('\n')}

Reading: iperf3 sends one datagram per system call, so the sender, not the hooks, sets the rate (tens of thousands of
datagrams/s, tens of µs each), and the round-to-round spread is ±20%: in one run "nothing attached" came out below the empty
program. What a hook adds per packet (40-50 ns, see the per-packet section) is 0.2% at this rate, far below that spread. Two
runs on the shared machine gave flowscope / empty program 106.7% and 94.4% at TC, 101.4% and 80.1% at XDP: this bench cannot
resolve the difference, and the earlier "XDP 30% below the empty program" is within its noise. One real XDP-specific cost on a
veth is the same for both programs: with any XDP program attached, the peer's transmit goes through the veth's ptr_ring and a
NAPI poll. A packet generator (pktgen) rather than iperf3 would be needed to measure the hooks on real traffic.`,
);
