/**
 * Attribution through the real agent (issue 14): flows of processes in cgroup
 * v2 directories of their own carry the cgroup path and workload in
 * /api/v1/flows; the cgroup= and workload= filters select them exactly; flows
 * with no local socket carry none; /api/v1/top?by=cgroup ranks them, and
 * /api/v1/top takes the same filters.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { eventually } from '../helpers/eventually.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, quietLink, type VethPair } from '../helpers/netns.js';
import { stop as stopChild, TRAFFIC, waitForOutput } from '../helpers/processes.js';

const skip = skipKernelTests('attribution through the agent');

interface Record {
  direction: string;
  proto: string;
  sport: number;
  dport: number;
  packets: number;
  cgroup?: string | null;
  cgroupId?: number;
  workload?: string;
}

function cgroup2Root(): string {
  return readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2')!.split(' ')[1];
}

describe.skipIf(skip)('attribution through the agent', () => {
  let pair: VethPair;
  let agent: AgentProcess | undefined;
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  const name = (tag: string) => `flowscope-e2e-${process.pid}-${tag}`;

  const inCgroup = (dir: string, args: string[]) => {
    const child = spawn('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec "$0" "$@"`, process.execPath, TRAFFIC, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    return child;
  };

  beforeAll(() => {
    pair = createVethPair(66);
    quietLink(pair);
  });
  afterAll(async () => {
    await agent?.stop();
    children.forEach(stopChild);
    await new Promise((r) => setTimeout(r, 200));
    pair?.destroy();
    for (const d of dirs) {
      try {
        rmdirSync(d);
      } catch {
        /* its process is still leaving */
      }
    }
  });

  it('records carry the cgroup path and workload; cgroup= and workload= select them; no socket, no cgroup', async () => {
    const a = path.join(cgroup2Root(), name('a'));
    const b = path.join(cgroup2Root(), name('b'));
    for (const d of [a, b]) {
      mkdirSync(d);
      dirs.push(d);
    }
    agent = await startAgent(['--iface', pair.hostIf, '--poll-interval', '200ms']);
    const rxA = inCgroup(a, ['udp-sink', '46001', '30']);
    const rxB = inCgroup(b, ['udp-sink', '46002', '30']);
    await Promise.all([waitForOutput(rxA, 'ready'), waitForOutput(rxB, 'ready')]);
    pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, '46001', '21', '60', '47001']);
    pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, '46002', '13', '60', '47002']);
    pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, '46999', '5', '60', '47999']); // nobody listens

    const flows = async (query: string) => (await agent!.get<{ flows: Record[] }>(`/api/v1/flows?iface=${pair.hostIf}&proto=udp&direction=ingress&limit=10000${query}`)).flows;
    const sum = (list: Record[]) => list.reduce((n, f) => n + f.packets, 0);
    await eventually(async () => sum(await flows('')) === 39, 'all 39 datagrams recorded');

    const ofA = await flows(`&cgroup=/${name('a')}`);
    expect(sum(ofA)).toBe(21);
    expect(new Set(ofA.map((f) => f.dport))).toEqual(new Set([46001]));
    expect(ofA.every((f) => f.cgroup === `/${name('a')}` && f.workload === name('a') && typeof f.cgroupId === 'number')).toBe(true);
    expect(sum(await flows(`&workload=${name('b')}`))).toBe(13);
    const none = (await flows('')).filter((f) => f.dport === 46999);
    expect(sum(none)).toBe(5);
    expect(none.every((f) => f.cgroup === undefined && f.workload === undefined)).toBe(true);

    // A prefix matches whole components only.
    expect(await flows(`&cgroup=/${name('')}`)).toEqual([]);
    const bad = await fetch(`${agent.url}/api/v1/flows?cgroup=relative`);
    expect(bad.status).toBe(400);
    interface Top { entries: { key: { cgroup?: string | null; workload?: string | null; dport?: number }; packets: number }[]; exact: boolean }
    const top = (query: string) => agent!.get<Top>(`/api/v1/top?metric=packets&window=5m&iface=${pair.hostIf}&direction=ingress&proto=udp${query}`);
    const byCgroup = await top('&by=cgroup');
    expect(byCgroup.exact).toBe(true);
    expect(byCgroup.entries.map((e) => [e.key.cgroup, e.packets])).toEqual([[`/${name('a')}`, 21], [`/${name('b')}`, 13], [null, 5]]);
    expect((await top('&by=workload')).entries.map((e) => [e.key.workload, e.packets])).toEqual([[name('a'), 21], [name('b'), 13], [null, 5]]);
    expect((await top(`&by=dport&cgroup=/${name('a')}`)).entries.map((e) => [e.key.dport, e.packets])).toEqual([[46001, 21]]);
    expect((await top(`&by=dport&workload=${name('b')}`)).entries.map((e) => [e.key.dport, e.packets])).toEqual([[46002, 13]]);
  });
});
