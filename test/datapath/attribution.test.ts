/**
 * Flows carry the cgroup of their local socket (issue 14), on the real
 * kernel: processes in cgroup v2 directories of their own send UDP out,
 * receive UDP in and hold a TCP connection; every flow of theirs carries
 * their cgroup's id (egress: the skb's socket; ingress: a socket lookup),
 * a second process in another cgroup is never mixed up with it, and traffic
 * with no local socket carries none. Counts stay exact.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import type { DrainResult } from '../../src/datapath/types.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { stop as stopChild, TRAFFIC, waitForOutput } from '../helpers/processes.js';

const skip = skipKernelTests('attribution');

/** The cgroup v2 mount (hybrid hosts mount it at /sys/fs/cgroup/unified). */
export function cgroup2Root(): string {
  const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
  if (!line) throw new Error('no cgroup2 mount in /proc/mounts');
  return line.split(' ')[1];
}

interface Flow {
  direction: string;
  proto: number;
  sport: number;
  dport: number;
  packets: number;
  cgroup: number;
}

function flows(d: DrainResult): Flow[] {
  const f = d.flows;
  const out: Flow[] = [];
  for (let i = 0; i < f.count; i++) {
    out.push({ direction: f.direction(i), proto: f.proto(i), sport: f.sport(i), dport: f.dport(i), packets: f.packets(i), cgroup: f.cgroupId!(i) });
  }
  return out;
}

describe.skipIf(skip)('flows attributed to the cgroup of their local socket', () => {
  let pair: VethPair;
  const cgroups: string[] = [];
  const children: ChildProcess[] = [];

  /** A new cgroup v2 directory and its id (the directory's inode number). */
  const makeCgroup = (name: string) => {
    const dir = path.join(cgroup2Root(), `flowscope-test-${process.pid}-${name}`);
    mkdirSync(dir);
    cgroups.push(dir);
    return { dir, id: statSync(dir).ino };
  };

  /** Runs traffic.mjs ARGS in a cgroup: the shell joins it before node creates any socket. */
  const inCgroup = (dir: string, args: string[]) => {
    const child = spawn('sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec "$0" "$@"`, process.execPath, TRAFFIC, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    return child;
  };
  const finished = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));

  beforeAll(() => {
    pair = createVethPair(65);
  });
  afterAll(async () => {
    children.forEach(stopChild);
    await Promise.all(children.map(finished));
    pair?.destroy();
    for (const dir of cgroups) {
      try {
        rmdirSync(dir);
      } catch {
        /* a process still inside: gone in a moment */
      }
    }
  });

  it('UDP out, UDP in and a TCP connection of a process carry its cgroup; another cgroup is kept apart; no socket, no cgroup', async () => {
    const a = makeCgroup('a');
    const b = makeCgroup('b');
    const source = new KernelFlowSource({ flowMapEntries: 1024 });
    try {
      await source.attach(pair.hostIf, 'tc');
      const collected: Flow[] = [];
      const drain = async () => collected.push(...flows(await source.drain()));

      // Receivers on the host: UDP 44001 and TCP 44002 in cgroup a, UDP 44003 in cgroup b.
      const udpA = inCgroup(a.dir, ['udp-sink', '44001', '20']);
      const tcpA = inCgroup(a.dir, ['tcp-sink', '44002', '20']);
      const udpB = inCgroup(b.dir, ['udp-sink', '44003', '20']);
      await Promise.all([waitForOutput(udpA, 'ready'), waitForOutput(tcpA, 'ready'), waitForOutput(udpB, 'ready')]);
      // A sink in the namespace for what cgroup a sends out.
      const nsSink = pair.spawn(process.execPath, [TRAFFIC, 'udp-sink', '44004', '20']);
      children.push(nsSink);
      await waitForOutput(nsSink, 'ready');

      pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, '44001', '25', '80', '45001']);
      pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, '44003', '15', '80', '45003']);
      pair.exec(process.execPath, [TRAFFIC, 'tcp', pair.hostV4, '44002', '200000']);
      const sender = inCgroup(a.dir, ['udp', pair.peerV4, '44004', '30', '80', '45004']);
      await finished(sender);
      // No local socket: datagrams to a port nobody listens on (answered by ICMP, which has no socket either).
      pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, '44999', '5', '80', '45999']);
      await new Promise((r) => setTimeout(r, 200));
      await drain();
      await drain();

      const of = (pred: (f: Flow) => boolean) => collected.filter(pred);
      const sum = (list: Flow[]) => list.reduce((n, f) => n + f.packets, 0);
      const udpIn = of((f) => f.direction === 'ingress' && f.proto === 17 && f.dport === 44001);
      expect(sum(udpIn)).toBe(25);
      expect(new Set(udpIn.map((f) => f.cgroup))).toEqual(new Set([a.id]));
      const udpInB = of((f) => f.direction === 'ingress' && f.proto === 17 && f.dport === 44003);
      expect(sum(udpInB)).toBe(15);
      expect(new Set(udpInB.map((f) => f.cgroup))).toEqual(new Set([b.id]));
      const udpOut = of((f) => f.direction === 'egress' && f.proto === 17 && f.sport === 45004);
      expect(sum(udpOut)).toBe(30);
      expect(new Set(udpOut.map((f) => f.cgroup))).toEqual(new Set([a.id]));
      const tcp = of((f) => f.proto === 6 && (f.dport === 44002 || f.sport === 44002));
      expect(tcp.some((f) => f.direction === 'ingress') && tcp.some((f) => f.direction === 'egress')).toBe(true);
      expect(new Set(tcp.map((f) => f.cgroup))).toEqual(new Set([a.id]));
      const noSocket = of((f) => f.direction === 'ingress' && f.proto === 17 && f.dport === 44999);
      expect(sum(noSocket)).toBe(5);
      expect(new Set(noSocket.map((f) => f.cgroup))).toEqual(new Set([0]));
    } finally {
      await source.close();
    }
  });

  it('forwarded traffic to a port a local wildcard socket listens on carries no cgroup', async () => {
    // Traffic routed through the host: from the namespace to an address beyond the host that is not
    // the host's own. A local socket bound to 0.0.0.0:44005 must not claim it.
    const c = makeCgroup('c');
    const listener = inCgroup(c.dir, ['udp-sink', '44005', '20']);
    await waitForOutput(listener, 'ready');
    const beyond = '198.18.250.9';
    execFileSync('ip', ['route', 'replace', `${beyond}/32`, 'dev', pair.hostIf]);
    pair.exec('ip', ['route', 'replace', `${beyond}/32`, 'via', pair.hostV4]);
    const source = new KernelFlowSource({ flowMapEntries: 1024 });
    try {
      await source.attach(pair.hostIf, 'tc');
      pair.exec(process.execPath, [TRAFFIC, 'udp', beyond, '44005', '6', '40', '45005']);
      await new Promise((r) => setTimeout(r, 100));
      const got = [...flows(await source.drain()), ...flows(await source.drain())].filter((f) => f.direction === 'ingress' && f.dport === 44005);
      expect(got.reduce((n, f) => n + f.packets, 0)).toBe(6);
      expect(new Set(got.map((f) => f.cgroup))).toEqual(new Set([0]));
    } finally {
      await source.close();
      execFileSync('ip', ['route', 'del', `${beyond}/32`, 'dev', pair.hostIf]);
    }
  });

  it('attribution off: no cgroup at all', async () => {
    const d = makeCgroup('d');
    const rx = inCgroup(d.dir, ['udp-sink', '44006', '20']);
    await waitForOutput(rx, 'ready');
    const source = new KernelFlowSource({ flowMapEntries: 1024, attribution: false });
    try {
      await source.attach(pair.hostIf, 'tc');
      pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, '44006', '4', '40', '45006']);
      await new Promise((r) => setTimeout(r, 100));
      const got = [...flows(await source.drain()), ...flows(await source.drain())].filter((f) => f.dport === 44006);
      expect(got.reduce((n, f) => n + f.packets, 0)).toBe(4);
      expect(new Set(got.map((f) => f.cgroup))).toEqual(new Set([0]));
    } finally {
      await source.close();
    }
  });
});
