/**
 * Lossless drain: traffic runs while the test drains as fast as it can; the
 * sum of all drained deltas equals the kernel's interface counters exactly,
 * and every single drain is self-consistent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import { kernelCounters } from '../../src/datapath/interfaces.js';
import type { DrainResult } from '../../src/datapath/types.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { counterDelta, drainUntilQuiet, expectMatchesKernel, snapshot, sumInterface } from '../helpers/drain-until-quiet.js';
import { TRAFFIC, startHostSink, stop, waitForOutput } from '../helpers/processes.js';

const skip = skipKernelTests('datapath lossless drain');

describe.skipIf(skip).each(['tc', 'xdp'] as const)('drain under load (%s)', (mode) => {
  let pair: VethPair;
  let source: KernelFlowSource;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    pair = createVethPair(mode === 'tc' ? 4 : 5);
    source = new KernelFlowSource({ flowMapEntries: 8192 });
    await source.attach(pair.hostIf, mode);
  });
  afterAll(async () => {
    children.forEach(stop);
    await source?.close();
    pair?.destroy();
  });

  it('loses and double-counts nothing while draining repeatedly', async () => {
    const iperfServer = spawn('iperf3', ['-s', '-1', '--forceflush', '-B', pair.hostV4, '-p', '5994'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(iperfServer);
    await waitForOutput(iperfServer, 'Server listening');
    children.push(await startHostSink('udp-sink', 5993));

    await source.drain();
    const before = kernelCounters(pair.hostIf);
    const drains: DrainResult[] = [];
    const tcp = pair.spawn('iperf3', ['-c', pair.hostV4, '-p', '5994', '-t', '3', '-P', '2']);
    const udp = pair.spawn(process.execPath, [TRAFFIC, 'udp-many', pair.hostV4, '5993', '3000', '64']);
    children.push(tcp, udp);
    const finished = Promise.all([tcp, udp].map((c) => new Promise((r) => c.once('exit', r))));
    let running = true;
    void finished.then(() => (running = false));
    while (running) drains.push(snapshot(await source.drain()));
    expect(tcp.exitCode).toBe(0);
    expect(udp.exitCode).toBe(0);

    const quiet = await drainUntilQuiet(source, pair.hostIf);
    drains.push(...quiet.drains);
    const after = quiet.after;
    const { total, violations } = sumInterface(drains, source.attachments()[0].ifindex);

    console.info(`[${mode}] ${drains.length} drains under load, ${total.ingress.packets} ingress + ${total.egress.packets} egress frames, all accounted for`);
    expect(drains.length).toBeGreaterThan(20);
    expect(violations).toEqual([]);
    expect(total.ingress.overflow + total.egress.overflow).toBe(0);
    // see traffic.test.ts: veth's XDP path counts rx bytes without the Ethernet header
    expect(expectMatchesKernel(total, counterDelta(before, after), mode === 'xdp' ? 14 : 0)).toEqual([]);
    expect(total.ingress.packets).toBeGreaterThan(3000);
  });
});
