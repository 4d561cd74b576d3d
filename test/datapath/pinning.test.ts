/**
 * Counting that outlives the process (issue 9), on the real kernel with real
 * traffic: pinned state handed from one datapath to the next loses and
 * doubles nothing, in every attach mode; one owner at a time; other tools'
 * tc filters and qdiscs survive every stop; iface_stats stays bounded under
 * interface churn; a drain that fails part-way keeps what it read.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource, PinnedStateOwnedError } from '../../src/datapath/flow-source.js';
import { kernelCounters } from '../../src/datapath/interfaces.js';
import type { DrainResult } from '../../src/datapath/types.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { eventually, hasClsact, hasXdp, loadedProgramIds, tcFilters } from '../helpers/kernel-objects.js';
import { createVethPair, quietLink, type VethPair } from '../helpers/netns.js';
import { removePins, uniquePinPath } from '../helpers/pins.js';
import { startHostSink, stop as stopChild, TRAFFIC, waitForOutput } from '../helpers/processes.js';

const skip = skipKernelTests('pinned state');
const CHILD = new URL('../helpers/attach-child.ts', import.meta.url).pathname;
const SINK_PORT = 41_777;
const NODE = 'node-a';

/** Sends `count` UDP datagrams of `payload` bytes from sport to the host side; resolves when sent. */
function sendUdp(pair: VethPair, count: number, payload: number, sport: number): void {
  pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, String(SINK_PORT), String(count), String(payload), String(sport)]);
}

/** Ingress packets and bytes of the UDP flow from sport in a drain. */
function udpFlow(d: DrainResult, pair: VethPair, sport: number): { packets: number; bytes: number } {
  const out = { packets: 0, bytes: 0 };
  const f = d.flows;
  for (let i = 0; i < f.count; i++) {
    if (f.direction(i) === 'ingress' && f.proto(i) === 17 && f.sport(i) === sport && f.src(i) === pair.peerV4) {
      out.packets += f.packets(i);
      out.bytes += f.bytes(i);
    }
  }
  return out;
}

/** Every frame of the interface in a drain, per direction. */
function ifaceTotals(d: DrainResult, ifindex: number) {
  const t = { rx: 0, tx: 0 };
  for (const i of d.interfaces) if (i.ifindex === ifindex) t[i.direction === 'ingress' ? 'rx' : 'tx'] += i.packets;
  return t;
}

const UDP_FRAME = (payload: number) => 14 + 20 + 8 + payload;

function nothingLeft(pair: VethPair, dir: string, progIds: number[]): void {
  expect(hasXdp(pair.hostIf)).toBe(false);
  expect(tcFilters(pair.hostIf, 'ingress')).toBe('');
  expect(tcFilters(pair.hostIf, 'egress')).toBe('');
  expect(hasClsact(pair.hostIf)).toBe(false);
  expect(existsSync(dir)).toBe(false);
  const loaded = loadedProgramIds();
  expect(progIds.filter((id) => loaded.has(id))).toEqual([]);
}

describe.skipIf(skip)('pinned state: a datapath hands its counters and attachments to the next', () => {
  let pair: VethPair;
  let sink: ChildProcess | undefined;
  const children: ChildProcess[] = [];
  const pinPaths: string[] = [];
  const pinDir = () => {
    const p = uniquePinPath();
    pinPaths.push(p);
    return path.join(p, NODE);
  };

  beforeAll(async () => {
    pair = createVethPair(61);
    // Every frame on the link is one the test sent (no ARP however long the churn test runs).
    quietLink(pair);
    sink = await startHostSink('udp-sink', SINK_PORT, 600);
  });
  afterAll(() => {
    children.forEach(stopChild);
    stopChild(sink);
    for (const p of pinPaths) removePins(p);
    pair?.destroy();
  });

  it.each([
    ['tc', 'tcx'],
    ['tc', 'clsact'],
    ['xdp', 'tcx'],
  ] as const)('%s via %s: a keep-attached close and a new start count every frame exactly once', async (mode, mechanism) => {
    const dir = pinDir();
    const before = kernelCounters(pair.hostIf);
    const first = new KernelFlowSource({ flowMapEntries: 256, tcMechanism: mechanism, pinDir: dir });
    const firstProgs = Object.values(first.nativeDatapath.info().progIds).filter((id) => id > 0);
    const a = await first.attach(pair.hostIf, mode);
    const counted = { rx: 0, tx: 0, flow: 0, bytes: 0 };
    const add = (d: DrainResult) => {
      const t = ifaceTotals(d, a.ifindex);
      counted.rx += t.rx;
      counted.tx += t.tx;
      const f = udpFlow(d, pair, 41_001);
      counted.flow += f.packets;
      counted.bytes += f.bytes;
    };
    sendUdp(pair, 30, 100, 41_001);
    add(await first.drain());
    sendUdp(pair, 20, 100, 41_001);
    add(await first.drain());
    await first.close({ keepAttached: true });
    expect(existsSync(dir)).toBe(true);

    // No agent: the kernel keeps counting into the pinned maps.
    sendUdp(pair, 25, 100, 41_001);

    const second = new KernelFlowSource({ flowMapEntries: 4096, tcMechanism: mechanism, pinDir: dir });
    const secondProgs = Object.values(second.nativeDatapath.info().progIds).filter((id) => id > 0);
    try {
      const pinned = second.stats().pinned!;
      expect(pinned).toMatchObject({ adopted: true, adoptedInterfaces: [pair.hostIf], unconfirmedDrains: 2, problems: [] });
      // The pinned maps keep their size; the option applies to a fresh start.
      expect(second.stats().flowMapCapacity).toBe(256);
      expect(second.attachments()).toEqual([{ iface: pair.hostIf, ifindex: a.ifindex, mode, tcMechanism: mechanism, adopted: true }]);
      // Asking for the same interface again keeps what counts (no detach, no second attachment).
      await second.attach(pair.hostIf, mode);
      if (mechanism === 'clsact') expect(tcFilters(pair.hostIf, 'ingress').match(/handle 0xf10c/g)).toHaveLength(1);
      // The new program runs; the old one is gone.
      await eventually(() => firstProgs.every((id) => !loadedProgramIds().has(id)), 'the first datapath\'s programs unloaded');
      add(await second.drain());
      sendUdp(pair, 10, 100, 41_001);
      await new Promise((r) => setTimeout(r, 100));
      const after = kernelCounters(pair.hostIf);
      add(await second.drain());
      add(await second.drain());
      expect(counted.flow).toBe(85);
      expect(counted.bytes).toBe(85 * UDP_FRAME(100));
      expect(counted.rx).toBe(after.rxPackets - before.rxPackets);
      expect(counted.tx).toBe(after.txPackets + after.txDropped - (before.txPackets + before.txDropped));
    } finally {
      await second.close();
    }
    nothingLeft(pair, dir, [...firstProgs, ...secondProgs]);
  });

  it('a second datapath for the same pinned state is refused, naming the owner', async () => {
    const dir = pinDir();
    const owner = new KernelFlowSource({ flowMapEntries: 256, pinDir: dir });
    try {
      owner.setOwnerApi('http://127.0.0.1:9797');
      let error: Error | undefined;
      try {
        new KernelFlowSource({ flowMapEntries: 256, pinDir: dir });
      } catch (err) {
        error = err as Error;
      }
      expect(error).toBeInstanceOf(PinnedStateOwnedError);
      expect(error!.message).toContain(`pid ${process.pid}`);
      expect(error!.message).toContain('API http://127.0.0.1:9797');
      expect(error!.message.split('\n')).toHaveLength(1);
    } finally {
      await owner.close();
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('a SIGKILLed owner leaves its attachments counting, and the next start takes them over exactly', async () => {
    const dir = pinDir();
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, pair.hostIf, 'tc', 'tcx', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    await waitForOutput(child, 'attached', 30_000);
    sendUdp(pair, 5, 50, 41_002);
    await new Promise((r) => setTimeout(r, 300)); // the child drains (and loses) those
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
    sendUdp(pair, 40, 50, 41_003);
    const next = new KernelFlowSource({ flowMapEntries: 256, pinDir: dir });
    try {
      expect(next.stats().pinned).toMatchObject({ adopted: true, adoptedInterfaces: [pair.hostIf] });
      const first = await next.drain();
      const second = await next.drain();
      expect(udpFlow(first, pair, 41_003).packets + udpFlow(second, pair, 41_003).packets).toBe(40);
    } finally {
      await next.close();
    }
    expect(existsSync(dir)).toBe(false);
  });

  it("another tool's tc filter and clsact qdisc survive start, stop, kill -9 and start", async () => {
    const other = createVethPair(62);
    const dir = pinDir();
    // (This kernel has cls_u32 but not cls_matchall: u32 stands in for any other tool.)
    const foreign = () => tcFilters(other.hostIf, 'ingress').includes('u32');
    try {
      execFileSync('tc', ['qdisc', 'add', 'dev', other.hostIf, 'clsact']);
      execFileSync('tc', ['filter', 'add', 'dev', other.hostIf, 'ingress', 'prio', '3', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'flowid', '1:1']);
      const s1 = new KernelFlowSource({ flowMapEntries: 256, tcMechanism: 'clsact', pinDir: dir });
      await s1.attach(other.hostIf, 'tc');
      await s1.close();
      expect(foreign()).toBe(true);
      expect(hasClsact(other.hostIf)).toBe(true);

      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, other.hostIf, 'tc', 'clsact', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await waitForOutput(child, 'attached', 30_000);
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
      expect(foreign()).toBe(true);
      const s2 = new KernelFlowSource({ flowMapEntries: 256, tcMechanism: 'clsact', pinDir: dir });
      expect(s2.attachments()).toHaveLength(1);
      await s2.close();
      expect(foreign()).toBe(true);
      expect(tcFilters(other.hostIf, 'ingress')).not.toContain('flowscope');
      expect(hasClsact(other.hostIf)).toBe(true);

      // flowscope created the qdisc, another tool added a filter later: the qdisc stays with that filter.
      execFileSync('tc', ['qdisc', 'del', 'dev', other.hostIf, 'clsact']);
      const s3 = new KernelFlowSource({ flowMapEntries: 256, tcMechanism: 'clsact', pinDir: dir });
      await s3.attach(other.hostIf, 'tc');
      execFileSync('tc', ['filter', 'add', 'dev', other.hostIf, 'ingress', 'prio', '3', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'flowid', '1:1']);
      await s3.close();
      expect(foreign()).toBe(true);
      expect(hasClsact(other.hostIf)).toBe(true);
    } finally {
      other.destroy();
    }
  });

  it('iface_stats stays bounded while interfaces come and go, and the last one counts exactly', async () => {
    // 64 entries hold 16 interfaces (2 directions x 2 generations each): without
    // the clean-up the 17th attach would fail.
    const cycles = Number(process.env.FLOWSCOPE_TEST_CHURN_CYCLES ?? 3000);
    const perRound = 16;
    const source = new KernelFlowSource({ flowMapEntries: 256, ifaceMapEntries: 64 });
    const tag = `fc${process.pid.toString(36).slice(-3)}`;
    const ip = (lines: string[]) => execFileSync('ip', ['-batch', '-'], { input: lines.join('\n') });
    try {
      let maxEntries = 0;
      for (let done = 0; done < cycles; done += perRound) {
        const names = Array.from({ length: Math.min(perRound, cycles - done) }, (_, i) => `${tag}${i}`);
        ip(names.flatMap((n) => [`link add ${n} type veth peer name ${n}p`, `link set ${n} up`]));
        try {
          for (const n of names) await source.attach(n, 'tc');
          maxEntries = Math.max(maxEntries, source.nativeDatapath.ifaceStatsIfindexes().length);
          for (const n of names) await source.detach(n);
        } finally {
          ip(names.map((n) => `link del ${n}`));
        }
        await source.drain();
        await source.drain();
        await source.drain();
      }
      expect(maxEntries).toBeLessThanOrEqual(perRound);
      expect(source.nativeDatapath.ifaceStatsIfindexes()).toEqual([]);
      expect(source.retiredInterfaces).toEqual([]);

      const a = await source.attach(pair.hostIf, 'tc');
      sendUdp(pair, 12, 64, 41_004);
      let n = 0;
      for (let i = 0; i < 3; i++) n += udpFlow(await source.drain(), pair, 41_004).packets;
      expect(n).toBe(12);
      expect(source.nativeDatapath.ifaceStatsIfindexes()).toEqual([a.ifindex]);
    } finally {
      await source.close();
    }
  }, 600_000);

  it.each(['flows', 'iface-lookup', 'iface-reset'] as const)(
    'a drain that fails part-way at %s keeps what it read; the rest comes later; nothing lost, nothing twice',
    async (site) => {
      const source = new KernelFlowSource({ flowMapEntries: 256, drainBatch: 2 });
      try {
        const a = await source.attach(pair.hostIf, 'tc');
        await source.drain();
        await source.drain();
        const before = kernelCounters(pair.hostIf);
        // 12 flows, and non-IP frames for the interface's other counters.
        for (let p = 0; p < 12; p++) sendUdp(pair, 3, 20, 41_100 + p);
        pair.exec('python3', ['-c', NON_IP_FRAMES, pair.peerIf, '7']);
        await new Promise((r) => setTimeout(r, 50));
        const native = source.nativeDatapath;
        native.injectDrainFault(site, site === 'flows' ? 3 : 1);
        const drains: DrainResult[] = [await source.drain()];
        native.injectDrainFault(site, 0);
        expect(drains[0].partialError).toMatch(/EIO/);
        for (let i = 0; i < 4; i++) drains.push(await source.drain());
        expect(drains.slice(1).every((d) => d.partialError === undefined)).toBe(true);
        const after = kernelCounters(pair.hostIf);
        let rx = 0;
        let flows = 0;
        let other = 0;
        for (const d of drains) {
          rx += ifaceTotals(d, a.ifindex).rx;
          for (let p = 0; p < 12; p++) flows += udpFlow(d, pair, 41_100 + p).packets;
          for (const i of d.interfaces) if (i.ifindex === a.ifindex && i.direction === 'ingress') other += i.otherPackets;
        }
        expect(flows).toBe(36);
        expect(other).toBe(7);
        expect(rx).toBe(after.rxPackets - before.rxPackets);
        expect(source.stats().partialDrains).toBe(1);
      } finally {
        await source.close();
      }
    },
  );
});

/** Sends N Ethernet frames of an experimental EtherType (not IP) out of IFACE. */
const NON_IP_FRAMES = `
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for i in range(int(sys.argv[2])):
    s.send(b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x01' + b'\\x88\\xb5' + bytes(46))
`;
