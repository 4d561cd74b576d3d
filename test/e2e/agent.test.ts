/**
 * End to end: the real agent process (`flowscope run`) on a veth pair whose
 * peer lives in a network namespace, real traffic from several source
 * addresses with known volumes, and the answers checked exactly: flows, top,
 * interfaces, the kernel's own interface counters, SSE, the CLI and /metrics.
 *
 * Needs root and the built datapath (npm run build). Under CI=true a missing
 * prerequisite fails the test; elsewhere the file is skipped with the reason.
 * The namespace and the veth pair are removed in afterAll, also on failure.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const DIST_MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const SRC_MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const ADDON = join(ROOT, 'native', 'build', 'Release', 'flowscope.node');
const BPF_OBJECT = join(ROOT, 'bpf', '.output', 'flowscope.bpf.o');

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, BPF)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'needs iproute2 (ip)';
  if (!existsSync(ADDON)) return `needs the native addon (${ADDON}): npm run build`;
  if (!existsSync(BPF_OBJECT)) return `needs the BPF object (${BPF_OBJECT}): npm run build`;
  return undefined;
}

const missing = missingPrerequisite();
if (missing && process.env.CI) throw new Error(`e2e prerequisite missing under CI: ${missing}`);
if (missing) console.log(`skipping test/e2e/agent.test.ts: ${missing}`);

/** Newest modification time of the .ts files under a directory. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** The compiled CLI when it is built from the current sources (as `npm test` does), else the sources through tsx. */
const useDist = existsSync(DIST_MAIN) && statSync(DIST_MAIN).mtimeMs >= newestSource(join(ROOT, 'src'));
const cliArgv = (args: string[]): string[] => (useDist ? [DIST_MAIN, ...args] : ['--import', 'tsx', SRC_MAIN, ...args]);

const tag = `${process.pid % 100000}`;
const NS = `fse2e${tag}`;
const HOST_IF = `fse${tag}a`;
const PEER_IF = `fse${tag}b`;
const NET = `10.201.${process.pid % 250}`;
const HOST_IP = `${NET}.1`;
const SENDERS = [`${NET}.2`, `${NET}.3`, `${NET}.4`, `${NET}.5`];
const UDP_PORT = 40000 + (process.pid % 20000);
/** L2 overhead of a UDP/IPv4 datagram on Ethernet: 14 + 20 + 8 */
const UDP_OVERHEAD = 42;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
const nsExec = (...args: string[]) => execFileSync('ip', ['netns', 'exec', NS, ...args], { stdio: 'pipe' });
const sysfs = (name: string) => Number(readFileSync(`/sys/class/net/${HOST_IF}/statistics/${name}`, 'utf8'));
const counters = () => ({ rxPackets: sysfs('rx_packets'), rxBytes: sysfs('rx_bytes'), txPackets: sysfs('tx_packets'), txBytes: sysfs('tx_bytes') });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setupNetwork(): void {
  ip('netns', 'add', NS);
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', PEER_IF, 'netns', NS);
  // No IPv6 and static neighbours: the link carries only the test's traffic (no RS/DAD/ARP).
  execFileSync('sysctl', ['-qw', `net.ipv6.conf.${HOST_IF}.disable_ipv6=1`]);
  nsExec('sysctl', '-qw', `net.ipv6.conf.${PEER_IF}.disable_ipv6=1`);
  ip('addr', 'add', `${HOST_IP}/24`, 'dev', HOST_IF);
  for (const a of SENDERS) ip('-n', NS, 'addr', 'add', `${a}/24`, 'dev', PEER_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('-n', NS, 'link', 'set', PEER_IF, 'up');
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  const mac = (dev: string, netns?: string) =>
    JSON.parse((netns ? nsExec('ip', '-j', 'link', 'show', dev) : ip('-j', 'link', 'show', dev)).toString())[0].address as string;
  const hostMac = mac(HOST_IF);
  const peerMac = mac(PEER_IF, NS);
  for (const a of SENDERS) ip('neigh', 'replace', a, 'lladdr', peerMac, 'nud', 'permanent', 'dev', HOST_IF);
  ip('-n', NS, 'neigh', 'replace', HOST_IP, 'lladdr', hostMac, 'nud', 'permanent', 'dev', PEER_IF);
}

function teardownNetwork(): void {
  // Deleting the namespace deletes the peer and with it the whole veth pair.
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', HOST_IF], { stdio: 'ignore' });
}

/** Sends `count` UDP datagrams of `payload` bytes from `src` (inside the namespace) to the host. */
function sendUdp(src: string, count: number, payload: number): void {
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    s.bind({ address: '${src}', port: 0 }, async () => {
      const buf = Buffer.alloc(${payload}, 120);
      for (let i = 0; i < ${count}; i++) await new Promise((r) => s.send(buf, ${UDP_PORT}, '${HOST_IP}', r));
      s.close();
    });`;
  nsExec(process.execPath, '-e', script);
}

let agent: ChildProcess | undefined;
let agentLog = '';
let server = '';
let sink: Socket | undefined;
let before = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0 };

async function api<T>(path: string): Promise<T> {
  const r = await fetch(`${server}${path}`);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, cliArgv([...args, '--server', server]), { cwd: ROOT, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Waits until the agent has polled at least twice more (so everything sent is drained and exported). */
async function settle(): Promise<void> {
  const start = (await api<{ polls: number }>('/api/v1/status')).polls;
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    if ((await api<{ polls: number }>('/api/v1/status')).polls >= start + 3) break;
  }
  await sleep(1100); // and one top-talkers bucket (1s) closes
}

interface Rec {
  src: string;
  dst: string;
  iface: string;
  direction: string;
  proto: string;
  packets: number;
  bytes: number;
}

describe.skipIf(missing !== undefined)('agent end to end on a veth pair', () => {
  beforeAll(async () => {
    teardownNetwork();
    setupNetwork();
    sink = createSocket('udp4');
    await new Promise<void>((resolve) => sink!.bind(UDP_PORT, HOST_IP, resolve));
    before = counters();
    agent = spawn(process.execPath, cliArgv(['run', '--iface', HOST_IF, '--listen', '127.0.0.1:0', '--poll-interval', '200ms', '--top-bucket', '1s', '--log-format', 'json', '--node', 'e2e-node']), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.stdout!.on('data', (d) => (agentLog += d));
    agent.stderr!.on('data', (d) => (agentLog += d));
    for (let i = 0; i < 150 && !server; i++) {
      await sleep(100);
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(agentLog);
      if (m) server = m[1];
      if (agent.exitCode !== null) break;
    }
    if (!server) throw new Error(`the agent did not start:\n${agentLog}`);
    for (let i = 0; i < 50; i++) {
      if ((await fetch(`${server}/readyz`)).status === 200) break;
      await sleep(100);
    }
    // Known traffic: three senders with different volumes, and a ping.
    sendUdp(SENDERS[0], 10, 100);
    sendUdp(SENDERS[1], 20, 200);
    sendUdp(SENDERS[2], 5, 50);
    nsExec('ping', '-c', '3', '-i', '0.2', '-I', SENDERS[0], HOST_IP);
    await settle();
  }, 60_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => {
        const timer = setTimeout(() => {
          agent!.kill('SIGKILL');
          r(undefined);
        }, 5000);
        agent!.once('exit', () => {
          clearTimeout(timer);
          r(undefined);
        });
      });
    }
    sink?.close();
    teardownNetwork();
  });

  it('reports each sender\'s flow exactly', async () => {
    const page = await api<{ flows: Rec[]; total: number }>(`/api/v1/flows?iface=${HOST_IF}&direction=ingress&proto=udp&limit=10000`);
    const bySrc = new Map<string, { packets: number; bytes: number }>();
    for (const r of page.flows) {
      expect(r.dst).toBe(HOST_IP);
      const e = bySrc.get(r.src) ?? { packets: 0, bytes: 0 };
      e.packets += r.packets;
      e.bytes += r.bytes;
      bySrc.set(r.src, e);
    }
    expect(Object.fromEntries(bySrc)).toEqual({
      [SENDERS[0]]: { packets: 10, bytes: 10 * (100 + UDP_OVERHEAD) },
      [SENDERS[1]]: { packets: 20, bytes: 20 * (200 + UDP_OVERHEAD) },
      [SENDERS[2]]: { packets: 5, bytes: 5 * (50 + UDP_OVERHEAD) },
    });
    const icmp = await api<{ flows: (Rec & { icmpType: number })[] }>(`/api/v1/flows?iface=${HOST_IF}&proto=icmp&limit=10000`);
    const echo = icmp.flows.filter((r) => r.direction === 'ingress' && r.icmpType === 8).reduce((s, r) => s + r.packets, 0);
    const reply = icmp.flows.filter((r) => r.direction === 'egress' && r.icmpType === 0).reduce((s, r) => s + r.packets, 0);
    expect([echo, reply]).toEqual([3, 3]);
  });

  it('ranks the senders in top talkers', async () => {
    const top = await api<{ entries: { key: { src: string }; bytes: number; packets: number; share: number }[]; exact: boolean }>(
      `/api/v1/top?by=src&metric=bytes&window=5m&iface=${HOST_IF}&direction=ingress&proto=udp`,
    );
    expect(top.entries.map((e) => [e.key.src, e.packets, e.bytes])).toEqual([
      [SENDERS[1], 20, 20 * 242],
      [SENDERS[0], 10, 10 * 142],
      [SENDERS[2], 5, 5 * 92],
    ]);
    expect(top.exact).toBe(true);
    expect(top.entries.reduce((s, e) => s + e.share, 0)).toBeCloseTo(1, 10);
  });

  it('sums of records and the interface accounting equal the kernel counters', async () => {
    const after = counters();
    const flows = await api<{ flows: Rec[]; total: number; truncated: boolean }>(`/api/v1/flows?iface=${HOST_IF}&limit=10000`);
    expect(flows.truncated).toBe(false);
    const sum = (direction: string, field: 'packets' | 'bytes') => flows.flows.filter((r) => r.direction === direction).reduce((s, r) => s + r[field], 0);
    const [iface] = await api<{ iface: string; hook: string; rx: Record<string, number>; tx: Record<string, number> }[]>('/api/v1/interfaces');
    expect(iface.iface).toBe(HOST_IF);
    expect(iface.hook).toBe('tc');
    // the agent's totals equal the kernel's own counters over the same period
    expect(iface.rx.packets).toBe(after.rxPackets - before.rxPackets);
    expect(iface.rx.bytes).toBe(after.rxBytes - before.rxBytes);
    expect(iface.tx.packets).toBe(after.txPackets - before.txPackets);
    expect(iface.tx.bytes).toBe(after.txBytes - before.txBytes);
    // and the records account for every counted frame
    expect(sum('ingress', 'packets') + iface.rx.otherPackets + iface.rx.overflowPackets).toBe(after.rxPackets - before.rxPackets);
    expect(sum('ingress', 'bytes') + iface.rx.otherBytes + iface.rx.overflowBytes).toBe(after.rxBytes - before.rxBytes);
    expect(sum('egress', 'packets') + iface.tx.otherPackets + iface.tx.overflowPackets).toBe(after.txPackets - before.txPackets);
    expect(sum('egress', 'bytes') + iface.tx.otherBytes + iface.tx.overflowBytes).toBe(after.txBytes - before.txBytes);
    const status = await api<{ node: string; ready: boolean; overflowPackets: number }>('/api/v1/status');
    expect(status).toMatchObject({ node: 'e2e-node', ready: true, overflowPackets: 0 });
  });

  it('delivers new records over SSE', async () => {
    const abort = new AbortController();
    const response = await fetch(`${server}/api/v1/flows/stream?src=${SENDERS[3]}`, { signal: abort.signal });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    await reader.read(); // the opening comment: subscribed
    sendUdp(SENDERS[3], 7, 10);
    const seen = { packets: 0, bytes: 0 };
    const deadline = Date.now() + 10_000;
    while (seen.packets < 7 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
      const events = text.split('\n\n');
      text = events.pop()!;
      for (const e of events) {
        if (!e.startsWith('data: ')) continue;
        const r = JSON.parse(e.slice(6)) as Rec;
        expect(r.src).toBe(SENDERS[3]);
        seen.packets += r.packets;
        seen.bytes += r.bytes;
      }
    }
    abort.abort();
    expect(seen).toEqual({ packets: 7, bytes: 7 * (10 + UDP_OVERHEAD) });
  });

  it('flowscope observe and top print them', async () => {
    const observed = await cli(['observe', '--from-ip', SENDERS[1], '--protocol', 'udp', '--last', '1000', '-o', 'json']);
    expect(observed.stderr).toBe('');
    const records = observed.stdout.trim().split('\n').map((l) => JSON.parse(l) as Rec);
    expect(records.reduce((s, r) => s + r.packets, 0)).toBe(20);
    const compact = await cli(['observe', '--from-ip', SENDERS[0], '--protocol', 'udp']);
    expect(compact.stdout).toContain(`${HOST_IF} ingress ${SENDERS[0]}:`);
    // The receiving socket is the test's own: its workload (this process's cgroup) follows the local end.
    expect(compact.stdout).toMatch(new RegExp(`-> ${HOST_IP.replace(/\./g, '\\.')}:${UDP_PORT}( \\([^)]+\\))? udp`));
    const top = await cli(['top', '--by', 'src', '--window', '5m', '--iface', HOST_IF, '--direction', 'ingress', '--protocol', 'udp', '-k', '1']);
    expect(top.code).toBe(0);
    expect(top.stdout.trim().split('\n')[2]).toMatch(new RegExp(`^1\\s+${SENDERS[1].replace(/\./g, '\\.')}\\s+4840\\s+20\\s`));
    const ifaces = await cli(['interfaces']);
    expect(ifaces.stdout).toContain(HOST_IF);
  });

  it('/metrics of the real agent passes promtool', async () => {
    const text = await (await fetch(`${server}/metrics`)).text();
    expect(text).toContain(`flowscope_interface_packets_total{iface="${HOST_IF}",direction="ingress"}`);
    if (existsSync('/usr/bin/promtool')) {
      const r = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
    } else if (process.env.CI) {
      throw new Error('/usr/bin/promtool missing (Debian package prometheus)');
    }
  });

  it('stops cleanly on SIGTERM and leaves no program attached', async () => {
    agent!.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => agent!.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    const links = spawnSync('bpftool', ['net', 'show', 'dev', HOST_IF], { encoding: 'utf8' });
    if (links.status === 0) expect(links.stdout).not.toMatch(/flowscope/);
  });
});
