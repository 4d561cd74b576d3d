/**
 * The agent's life with real signals on real interfaces: patterns pick up
 * interfaces that appear later and drop the ones that vanish; SIGHUP applies a
 * new interface list without disturbing the others; SIGTERM detaches and exits
 * 0; a SIGKILLed agent's attachments stay pinned and the next one takes them over.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { eventually, flowscopeTcxLinks, hasXdp, tcFilters } from '../helpers/kernel-objects.js';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { removePins, uniquePinPath } from '../helpers/pins.js';

const skip = skipKernelTests('agent lifecycle');

interface Status {
  interfaces: { iface: string; ifindex: number }[];
}
interface FlowList {
  flows: { iface: string; direction: string; proto: string; icmpType?: number; packets: number }[];
}

const attachedNames = async (agent: AgentProcess) => (await agent.get<Status>('/api/v1/status')).interfaces.map((i) => i.iface).sort();

/** Echo requests the agent recorded as received on iface. */
async function pingsSeen(agent: AgentProcess, iface: string): Promise<number> {
  const { flows } = await agent.get<FlowList>(`/api/v1/flows?iface=${iface}&proto=icmp&direction=ingress&limit=10000`);
  return flows.filter((f) => f.icmpType === 8).reduce((n, f) => n + f.packets, 0);
}

describe.skipIf(skip)('agent lifecycle with real signals', () => {
  const pairs: VethPair[] = [];
  const agents: AgentProcess[] = [];
  const prefix = `l${randomBytes(2).toString('hex').slice(0, 3)}`;
  const work = mkdtempSync(path.join(tmpdir(), 'flowscope-lifecycle-'));
  const pair = (subnet: number) => {
    const p = createVethPair(subnet, prefix);
    pairs.push(p);
    return p;
  };

  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    for (const p of pairs.splice(0)) p.destroy();
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('a pattern attaches interfaces that appear later and drops those that vanish', async () => {
    const a = pair(50);
    const agent = await startAgent(['--iface', `${prefix}h*`, '--iface-rescan', '200ms', '--poll-interval', '200ms']);
    agents.push(agent);
    expect(await attachedNames(agent)).toEqual([a.hostIf]);

    const b = pair(51);
    await eventually(async () => (await attachedNames(agent)).includes(b.hostIf), `${b.hostIf} attached`);
    b.exec('ping', ['-c', '3', '-i', '0.05', b.hostV4]);
    await eventually(async () => (await pingsSeen(agent, b.hostIf)) === 3, '3 pings counted on the new interface');

    b.destroy();
    await eventually(async () => !(await attachedNames(agent)).includes(b.hostIf), `${b.hostIf} dropped`);
    expect(agent.output()).toContain('"msg":"detached"');
    expect(await attachedNames(agent)).toEqual([a.hostIf]);
    expect(agent.child.exitCode).toBeNull();
  });

  it('SIGHUP applies a new interface list; the interface that stays counts on without a gap', async () => {
    const a = pair(52);
    const c = pair(53);
    const config = path.join(work, 'flowscope.yaml');
    writeFileSync(config, `iface: [${a.hostIf}]\n`);
    const agent = await startAgent(['--config', config, '--poll-interval', '200ms']);
    agents.push(agent);
    expect(await attachedNames(agent)).toEqual([a.hostIf]);

    a.exec('ping', ['-c', '4', '-i', '0.05', a.hostV4]);
    writeFileSync(config, `iface: [${a.hostIf}, ${c.hostIf}]\n`);
    agent.child.kill('SIGHUP');
    await eventually(async () => (await attachedNames(agent)).includes(c.hostIf), `${c.hostIf} attached after SIGHUP`);
    a.exec('ping', ['-c', '5', '-i', '0.05', a.hostV4]);
    c.exec('ping', ['-c', '2', '-i', '0.05', c.hostV4]);
    await eventually(async () => (await pingsSeen(agent, a.hostIf)) === 9 && (await pingsSeen(agent, c.hostIf)) === 2, 'all pings counted');

    writeFileSync(config, `iface: [${c.hostIf}]\n`);
    agent.child.kill('SIGHUP');
    await eventually(async () => (await attachedNames(agent)).join() === c.hostIf, `${a.hostIf} detached after SIGHUP`);
    expect(tcFilters(a.hostIf, 'ingress')).toBe('');

    // a broken file is refused, the agent keeps what it has
    writeFileSync(config, 'iface: [\n');
    agent.child.kill('SIGHUP');
    await eventually(async () => agent.output().includes('configuration not reloaded'), 'the bad reload reported');
    expect(await attachedNames(agent)).toEqual([c.hostIf]);
  });

  it('SIGTERM detaches everything, exports the last records, and exits 0', async () => {
    const a = pair(54);
    // Links of other processes may exist: this agent's are the ones that appear (bpftool 7.1 shows no interface for TCX links).
    const before = new Set(flowscopeTcxLinks());
    const agent = await startAgent(['--iface', a.hostIf, '--hook', 'xdp', '--poll-interval', '200ms']);
    agents.push(agent);
    expect(hasXdp(a.hostIf)).toBe(true);
    const its = flowscopeTcxLinks().filter((id) => !before.has(id));
    expect(its).toHaveLength(1);
    agent.child.kill('SIGTERM');
    const code = await Promise.race([agent.exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
    expect(code).toBe(0);
    expect(agent.output()).toContain('stopped');
    expect(hasXdp(a.hostIf)).toBe(false);
    await eventually(() => flowscopeTcxLinks().every((id) => !its.includes(id)), 'no TCX link of the agent left');
  });

  it('after kill -9 the links stay pinned and counting; the new start takes them over: no attachment twice', async () => {
    const a = pair(55);
    const pinPath = uniquePinPath();
    try {
      const args = ['--iface', a.hostIf, '--poll-interval', '200ms', '--pin-path', pinPath];
      const before = new Set(flowscopeTcxLinks());
      const mine = () => flowscopeTcxLinks().filter((id) => !before.has(id)).sort();
      const first = await startAgent(args);
      agents.push(first);
      const links = mine();
      expect(links).toHaveLength(2);
      first.child.kill('SIGKILL');
      await first.exited;
      expect(mine()).toEqual(links);

      const second = await startAgent(args);
      agents.push(second);
      // The same two links (now running the new agent's programs: other program ids), no third.
      expect(mine()).toHaveLength(2);
      a.exec('ping', ['-c', '3', '-i', '0.05', a.hostV4]);
      await eventually(async () => (await pingsSeen(second, a.hostIf)) === 3, 'pings counted by the new agent');
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
      expect(mine()).toEqual([]);
    } finally {
      removePins(pinPath);
    }
  });
});
