/**
 * A real SYN flood against the real agent (issue 10): `hping3 -S --flood
 * --rand-source` from a network namespace at the host side of a veth pair,
 * while `node dist/cli/main.js run` with its defaults watches that side.
 * Throughout the flood the agent's RSS stays <= 512 MiB and /healthz answers
 * within 1 s; afterwards a normal UDP flow is counted exactly.
 *
 * Containment: the flood's destination is the pair's host address, and every
 * packet the host sends from that address (SYN-ACKs and RSTs to the random
 * sources) is routed back into the veth by a policy rule of this test's own,
 * where the namespace (not a router) drops it: nothing reaches another network.
 * The namespace, the veth pair, the rule, hping3 and the agent are removed in
 * afterAll, also on failure.
 *
 * FLOWSCOPE_FLOOD_SECONDS sets the flood's length (default 20; the issue's
 * figure is 45). Needs root, hping3 and the built datapath; under CI=true a
 * missing prerequisite fails instead of skipping.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removePins, uniquePinPath } from '../helpers/pins.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DIST_MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const SRC_MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const ADDON = join(ROOT, 'native', 'build', 'Release', 'flowscope.node');
const BPF_OBJECT = join(ROOT, 'bpf', '.output', 'flowscope.bpf.o');
const FLOOD_SECONDS = Number(process.env.FLOWSCOPE_FLOOD_SECONDS ?? 20);
const RSS_LIMIT = 512 * 1024 * 1024;

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, BPF)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs iproute2 (ip)';
  if (spawnSync('hping3', ['--version']).error) return 'needs hping3 (scripts/apt-packages.txt)';
  if (!existsSync(ADDON)) return `needs the native addon (${ADDON}): npm run build`;
  if (!existsSync(BPF_OBJECT)) return `needs the BPF object (${BPF_OBJECT}): npm run build`;
  return undefined;
}

const missing = missingPrerequisite();
if (missing && process.env.CI === 'true') throw new Error(`test/e2e/flood.test.ts: prerequisite missing under CI: ${missing}`);
if (missing) console.warn(`[skip] test/e2e/flood.test.ts: ${missing}`);

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** The compiled agent when it is built from the current sources (as `npm test` does; tsx would add its own memory), else the sources. */
const useDist = existsSync(DIST_MAIN) && statSync(DIST_MAIN).mtimeMs >= newestSource(join(ROOT, 'src'));

const tag = `${process.pid % 100000}`;
const NS = `fsflood${tag}`;
const HOST_IF = `fsf${tag}a`;
const PEER_IF = `fsf${tag}b`;
const NET = `10.202.${process.pid % 250}`;
const HOST_IP = `${NET}.1`;
const PEER_IP = `${NET}.2`;
const RULE_TABLE = String(20_000 + (process.pid % 10_000));
const FLOOD_PORT = 80;
const UDP_PORT = 41_000 + (process.pid % 20_000);

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
const nsExec = (...args: string[]) => execFileSync('ip', ['netns', 'exec', NS, ...args], { stdio: 'pipe' });
const quiet = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setupNetwork(): void {
  ip('netns', 'add', NS);
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', PEER_IF, 'netns', NS);
  execFileSync('sysctl', ['-qw', `net.ipv6.conf.${HOST_IF}.disable_ipv6=1`]);
  nsExec('sysctl', '-qw', `net.ipv6.conf.${PEER_IF}.disable_ipv6=1`);
  ip('addr', 'add', `${HOST_IP}/24`, 'dev', HOST_IF);
  ip('-n', NS, 'addr', 'add', `${PEER_IP}/24`, 'dev', PEER_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('-n', NS, 'link', 'set', PEER_IF, 'up');
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  // Everything the host sends from HOST_IP (answers to random sources) goes back into the veth.
  ip('route', 'add', 'default', 'via', PEER_IP, 'dev', HOST_IF, 'table', RULE_TABLE);
  ip('rule', 'add', 'from', HOST_IP, 'table', RULE_TABLE, 'priority', RULE_TABLE);
  const mac = (dev: string, netns?: string) =>
    JSON.parse((netns ? nsExec('ip', '-j', 'link', 'show', dev) : ip('-j', 'link', 'show', dev)).toString())[0].address as string;
  ip('neigh', 'replace', PEER_IP, 'lladdr', mac(PEER_IF, NS), 'nud', 'permanent', 'dev', HOST_IF);
  ip('-n', NS, 'neigh', 'replace', HOST_IP, 'lladdr', mac(HOST_IF), 'nud', 'permanent', 'dev', PEER_IF);
}

function teardownNetwork(): void {
  while (quiet('ip', ['rule', 'del', 'from', HOST_IP, 'table', RULE_TABLE]).status === 0);
  quiet('ip', ['route', 'flush', 'table', RULE_TABLE]);
  quiet('ip', ['netns', 'del', NS]);
  quiet('ip', ['link', 'del', HOST_IF]);
}

function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

let agent: ChildProcess | undefined;
let flood: ChildProcess | undefined;
let agentLog = '';
let server = '';
const pinPath = uniquePinPath();

async function api<T>(path: string): Promise<T> {
  const r = await fetch(`${server}${path}`, { signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

interface Status {
  polls: number;
  flowsTracked: number;
  flowsExpired: Record<string, number>;
  overflowPackets: number;
}

describe.skipIf(missing !== undefined)(`a ${FLOOD_SECONDS} s SYN flood (hping3 --rand-source) against the agent`, () => {
  beforeAll(async () => {
    teardownNetwork();
    setupNetwork();
    const main = useDist ? [DIST_MAIN] : ['--import', 'tsx', SRC_MAIN];
    // The agent's defaults, but for where it listens and pins.
    agent = spawn(process.execPath, [...main, 'run', '--iface', HOST_IF, '--listen', '127.0.0.1:0', '--log-format', 'json', '--pin-path', pinPath, '--node', `flood-${tag}`], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.stdout!.on('data', (d) => (agentLog += d));
    agent.stderr!.on('data', (d) => (agentLog += d));
    for (let i = 0; i < 300 && !server; i++) {
      await sleep(100);
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(agentLog);
      if (m) server = m[1];
      if (agent.exitCode !== null) break;
    }
    if (!server) throw new Error(`the agent did not start:\n${agentLog}`);
    for (let i = 0; i < 100; i++) {
      if ((await fetch(`${server}/readyz`)).status === 200) break;
      await sleep(100);
    }
  }, 60_000);

  afterAll(async () => {
    await stopChild(flood, 'SIGINT');
    await stopChild(agent, 'SIGTERM');
    removePins(pinPath);
    teardownNetwork();
  }, 60_000);

  it(`keeps RSS <= 512 MiB and /healthz <= 1 s throughout, then counts a normal flow exactly`, async () => {
    const pid = agent!.pid!;
    const rssBefore = rssOf(pid);
    let rssMax = rssBefore;
    let healthMax = 0;
    let samples = 0;
    let floodOutput = '';
    flood = spawn('ip', ['netns', 'exec', NS, 'hping3', '-S', '--flood', '--rand-source', '-q', '-p', String(FLOOD_PORT), HOST_IP], { stdio: ['ignore', 'pipe', 'pipe'] });
    flood.stdout!.on('data', (d) => (floodOutput += d));
    flood.stderr!.on('data', (d) => (floodOutput += d));
    const end = Date.now() + FLOOD_SECONDS * 1000;
    while (Date.now() < end) {
      expect(flood.exitCode, `hping3 stopped: ${floodOutput}`).toBeNull();
      const t0 = performance.now();
      const res = await fetch(`${server}/healthz`, { signal: AbortSignal.timeout(5000) });
      const took = performance.now() - t0;
      expect(res.status).toBe(200);
      healthMax = Math.max(healthMax, took);
      const rss = rssOf(pid);
      rssMax = Math.max(rssMax, rss);
      if (process.env.FLOWSCOPE_FLOOD_TRACE && samples % 25 === 0) console.log(`t+${(FLOOD_SECONDS - (end - Date.now()) / 1000).toFixed(0)} s: rss ${(rss / 2 ** 20).toFixed(0)} MiB, /healthz ${took.toFixed(0)} ms`);
      samples++;
      await sleep(200);
    }
    const during = await api<Status>('/api/v1/status');
    await stopChild(flood, 'SIGINT');
    const sent = /(\d+) packets transmitted/.exec(floodOutput);
    // Two polls after the flood, still within the bound.
    const polls = during.polls;
    for (let i = 0; i < 100 && (await api<Status>('/api/v1/status')).polls < polls + 3; i++) await sleep(100);
    rssMax = Math.max(rssMax, rssOf(pid));
    const after = await api<Status>('/api/v1/status');
    const metrics = await (await fetch(`${server}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^flowscope_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN) / 2 ** 20;
    console.log(
      `agent memory after the flood: heap used ${metric('nodejs_heap_size_used_bytes').toFixed(0)} MiB of ${metric('nodejs_heap_size_total_bytes').toFixed(0)} MiB, ` +
        `external ${metric('nodejs_external_memory_bytes').toFixed(0)} MiB, rss ${metric('process_resident_memory_bytes').toFixed(0)} MiB`,
    );
    if (process.env.FLOWSCOPE_FLOOD_TRACE) console.log(metrics.split('\n').filter((l) => /gc_duration|eventloop_lag|poll_duration/.test(l) && !l.startsWith('#')).join('\n'));
    console.log(
      `flood ${FLOOD_SECONDS} s: hping3 sent ${sent ? sent[1] : '?'} SYNs; agent RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, ` +
        `max ${(rssMax / 2 ** 20).toFixed(0)} MiB; /healthz max ${healthMax.toFixed(0)} ms over ${samples} samples; ` +
        `tracked ${after.flowsTracked}, expired ${JSON.stringify(after.flowsExpired)}, map overflow ${after.overflowPackets} packets`,
    );
    expect(rssMax).toBeLessThanOrEqual(RSS_LIMIT);
    expect(healthMax).toBeLessThanOrEqual(1000);
    expect(after.flowsExpired.evicted + after.flowsExpired.syn).toBeGreaterThan(0);

    // A normal flow afterwards, counted to the packet and byte.
    const count = 50;
    const payload = 300;
    const script = `
      const s = require('node:dgram').createSocket('udp4');
      s.bind({ address: '${PEER_IP}', port: 0 }, async () => {
        const buf = Buffer.alloc(${payload}, 120);
        for (let i = 0; i < ${count}; i++) await new Promise((r) => s.send(buf, ${UDP_PORT}, '${HOST_IP}', r));
        console.log(s.address().port);
        s.close();
      });`;
    const sport = Number(nsExec(process.execPath, '-e', script).toString().trim());
    let got = { packets: 0, bytes: 0 };
    for (let i = 0; i < 100; i++) {
      await sleep(200);
      const page = await api<{ flows: { packets: number; bytes: number }[] }>(
        `/api/v1/flows?iface=${HOST_IF}&direction=ingress&proto=udp&src=${PEER_IP}&sport=${sport}&dport=${UDP_PORT}&limit=1000`,
      );
      got = page.flows.reduce((s, r) => ({ packets: s.packets + r.packets, bytes: s.bytes + r.bytes }), { packets: 0, bytes: 0 });
      if (got.packets >= count) break;
    }
    // 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + payload per datagram
    expect(got).toEqual({ packets: count, bytes: count * (42 + payload) });
  }, (FLOOD_SECONDS + 90) * 1000);
});
