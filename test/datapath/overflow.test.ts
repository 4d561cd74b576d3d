/**
 * A full flow map loses nothing: frames that find no room are counted per
 * interface in overflow_* and in the flow_map_full failure counter, and the
 * interface totals still equal the kernel's counters.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource, FLOW_MAP_ENTRIES_MIN } from '../../src/datapath/flow-source.js';
import { kernelCounters } from '../../src/datapath/interfaces.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { counterDelta, drainUntilQuiet, expectMatchesKernel, sumFlows, sumInterface } from '../helpers/drain-until-quiet.js';
import { TRAFFIC, startHostSink, stop } from '../helpers/processes.js';

const skip = skipKernelTests('datapath overflow');

describe.skipIf(skip)('flow map full', () => {
  let pair: VethPair;
  let source: KernelFlowSource;
  let sink: ChildProcess | undefined;

  beforeAll(async () => {
    pair = createVethPair(3);
    source = new KernelFlowSource({ flowMapEntries: FLOW_MAP_ENTRIES_MIN });
    await source.attach(pair.hostIf, 'tc');
    sink = await startHostSink('udp-sink', 5995);
  });
  afterAll(async () => {
    stop(sink);
    await source?.close();
    pair?.destroy();
  });

  it('counts the frames that found no room, and the totals stay exact', async () => {
    await source.drain();
    const failuresBefore = (await source.drain()).failures.flow_map_full;
    const before = kernelCounters(pair.hostIf);
    const flowsSent = 200;
    const payload = 50;
    // explicit source ports 30000.. : 200 distinct flows (ephemeral ports could repeat)
    pair.exec(process.execPath, [TRAFFIC, 'udp-many', pair.hostV4, '5995', String(flowsSent), String(payload), '30000']);
    const { drains, after } = await drainUntilQuiet(source, pair.hostIf);
    const { total, violations } = sumInterface(drains, source.attachments()[0].ifindex);
    const flows = sumFlows(drains, source.attachments()[0].ifindex);

    expect(violations).toEqual([]);
    expect(expectMatchesKernel(total, counterDelta(before, after))).toEqual([]);

    // 200 distinct flows into a 16-entry map within one drain interval.
    const udpFlows = [...flows.values()].filter((f) => f.direction === 'ingress' && f.proto === 17 && f.dport === 5995 && f.sport >= 30000 && f.sport < 30000 + flowsSent);
    expect(udpFlows.length).toBeLessThanOrEqual(FLOW_MAP_ENTRIES_MIN);
    const udpCounted = udpFlows.reduce((n, f) => n + f.packets, 0);
    expect(total.ingress.overflow).toBeGreaterThanOrEqual(flowsSent - FLOW_MAP_ENTRIES_MIN);
    expect(udpCounted + total.ingress.overflow).toBeGreaterThanOrEqual(flowsSent);
    const overflowAll = total.ingress.overflow + total.egress.overflow;
    expect(drains.at(-1)!.failures.flow_map_full - failuresBefore).toBe(overflowAll);
  });

  it('has room again after a drain', async () => {
    await drainUntilQuiet(source, pair.hostIf);
    pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, '5995', '10', '50', '42000']);
    const { drains } = await drainUntilQuiet(source, pair.hostIf);
    const flows = sumFlows(drains, source.attachments()[0].ifindex);
    const f = [...flows.values()].find((x) => x.sport === 42000);
    expect(f?.packets).toBe(10);
    expect(sumInterface(drains, source.attachments()[0].ifindex).total.ingress.overflow).toBe(0);
  });
});
