/**
 * How the agent stops (issue 9). A stop that detaches ends the counting
 * before its last drain, so no frame is counted between that drain's flip and
 * the detach and then dropped with the maps; a second drain closes the other
 * generation. A keep-attached stop leaves everything attached and drains once.
 * The kernel side of this (what a drain and a detach do) is tested in
 * test/datapath; here the order of the calls, on the synthetic source.
 */
import { describe, expect, it } from 'vitest';
import type { CloseOptions } from '../../src/datapath/types.js';
import { makeAgent, udp } from '../helpers/agent-fixture.js';

function recordCalls(t: Awaited<ReturnType<typeof makeAgent>>): string[] {
  const calls: string[] = [];
  const source = t.source;
  const drain = source.drain.bind(source);
  const detach = source.detach.bind(source);
  const close = source.close.bind(source);
  source.drain = async () => {
    calls.push(`drain (attached: ${source.attachments().length})`);
    return drain();
  };
  source.detach = async (iface: string) => {
    calls.push(`detach ${iface}`);
    return detach(iface);
  };
  // The synthetic source's close() takes no options; the agent passes them to any source.
  source.close = async (...args: unknown[]) => {
    calls.push(`close${(args[0] as CloseOptions | undefined)?.keepAttached ? ' keep' : ''}`);
    return close();
  };
  return calls;
}

describe('Agent.close', () => {
  it('without keepAttached: detaches every interface, then drains twice, then closes the source; the last counts are exported', async () => {
    const t = await makeAgent();
    await t.poll([udp('10.0.0.1', '10.0.0.2', 1000, 53, 3, 300)]);
    const calls = recordCalls(t);
    t.source.push([udp('10.0.0.1', '10.0.0.2', 1000, 53, 2, 200, 'eth1')]);
    await t.agent.close();
    expect(calls).toEqual(['detach eth0', 'detach eth1', 'drain (attached: 0)', 'drain (attached: 0)', 'close']);
    const page = t.agent.flows({}, 10);
    expect(page.flows.reduce((n, r) => n + r.packets, 0)).toBe(5);
  });

  it('with keepAttached: drains once and leaves the interfaces attached for the next agent', async () => {
    const t = await makeAgent();
    const calls = recordCalls(t);
    await t.agent.close({ keepAttached: true });
    expect(calls).toEqual(['drain (attached: 2)', 'close keep']);
  });
});
