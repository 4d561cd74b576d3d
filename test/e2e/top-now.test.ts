/**
 * Top talkers answer now (issue 11): the real agent, default 10 s buckets and
 * 1 s polls, four sources with known volumes through a veth pair; 2.5 s after
 * the last packet /api/v1/top and `flowscope top` rank them with exact
 * counts, although the bucket holding the traffic has not closed.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, quietLink, type VethPair } from '../helpers/netns.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';

const skip = skipKernelTests('top talkers answer now (e2e)');
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const NET = '10.78.51';
const HOST = `${NET}.1`;
const SOURCES = [2, 3, 4, 5].map((i) => `${NET}.${i}`);
/** datagrams and payload per source: every count and every rank differs */
const VOLUMES = [[40, 300], [25, 900], [60, 100], [10, 1200]] as const;
const PORT = 47_111;
/** L2 frame of a UDP/IPv4 datagram: 14 + 20 + 8 + payload */
const frame = (payload: number) => 42 + payload;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TopAnswer {
  entries: { key: { src: string }; bytes: number; packets: number; bytesMax: number; packetsMax: number }[];
  exact: boolean;
  to: string;
}

describe.skipIf(skip)('top talkers answer now, on a veth pair', () => {
  let pair: VethPair;
  let agent: AgentProcess;

  beforeAll(async () => {
    pair = createVethPair(51);
    quietLink(pair);
    execFileSyncQuiet('ip', ['addr', 'add', `${HOST}/24`, 'dev', pair.hostIf]);
    for (const s of SOURCES) pair.exec('ip', ['addr', 'add', `${s}/24`, 'dev', pair.peerIf]);
    const peerMac = pair.exec('cat', [`/sys/class/net/${pair.peerIf}/address`]).trim();
    for (const s of SOURCES) execFileSyncQuiet('ip', ['neigh', 'replace', s, 'lladdr', peerMac, 'dev', pair.hostIf, 'nud', 'permanent']);
    const hostMac = readFileSync(`/sys/class/net/${pair.hostIf}/address`, 'utf8').trim();
    pair.exec('ip', ['neigh', 'replace', HOST, 'lladdr', hostMac, 'dev', pair.peerIf, 'nud', 'permanent']);
    agent = await startAgent(['--iface', pair.hostIf, '--node', 'top-now']);
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    pair?.destroy();
  });

  it('/api/v1/top and flowscope top are exact 2.5 s after the last packet', async () => {
    // The host has no socket on PORT: the datagrams still cross the ingress hook (the ICMP errors are limited and egress).
    const script = `
      const dgram = require('node:dgram');
      const volumes = ${JSON.stringify(VOLUMES)}, sources = ${JSON.stringify(SOURCES)};
      (async () => {
        for (let i = 0; i < sources.length; i++) {
          const s = dgram.createSocket('udp4');
          await new Promise((r) => s.bind({ address: sources[i], port: 0 }, r));
          const buf = Buffer.alloc(volumes[i][1], 120);
          for (let n = 0; n < volumes[i][0]; n++) await new Promise((r) => s.send(buf, ${PORT}, '${HOST}', r));
          s.close();
        }
      })();`;
    pair.exec(process.execPath, ['-e', script]);
    const lastPacketAt = Date.now();
    await sleep(2500 - (Date.now() - lastPacketAt));

    const query = `by=src&window=1m&iface=${pair.hostIf}&direction=ingress&proto=udp&dport=${PORT}`;
    const expected = SOURCES.map((src, i) => ({ src, packets: VOLUMES[i][0], bytes: VOLUMES[i][0] * frame(VOLUMES[i][1]) })).sort((a, b) => b.bytes - a.bytes);
    const answer = await agent.get<TopAnswer>(`/api/v1/top?${query}`);
    expect(answer.entries.map((e) => ({ src: e.key.src, packets: e.packets, bytes: e.bytes }))).toEqual(expected);
    expect(answer.exact).toBe(true);
    for (const e of answer.entries) expect([e.bytesMax, e.packetsMax]).toEqual([e.bytes, e.packets]);
    // The window ends at the last poll, after the last packet.
    expect(Date.parse(answer.to)).toBeGreaterThanOrEqual(lastPacketAt - 1000);

    const cli = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', MAIN, 'top', '--server', agent.url, '--by', 'src', '--window', '1m', '--iface', pair.hostIf, '--direction', 'ingress', '--protocol', 'udp', '--to-port', String(PORT), '-o', 'json'], { timeout: 20_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const fromCli = JSON.parse(cli) as TopAnswer;
    expect(fromCli.entries.map((e) => ({ src: e.key.src, packets: e.packets, bytes: e.bytes }))).toEqual(expected);
  }, 60_000);
});

function execFileSyncQuiet(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: 'pipe' });
}
