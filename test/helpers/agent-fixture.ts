/** A test agent on a synthetic source with a hand-driven clock. */
import { Agent, type AgentOptions } from '../../src/agent/agent.js';
import { SyntheticFlowSource, type SyntheticFlow, type SyntheticNonFlow } from '../../src/datapath/synthetic-source.js';
import { createApp } from '../../src/api/app.js';

export const T0 = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;

export interface TestAgent {
  agent: Agent;
  source: SyntheticFlowSource;
  now(): number;
  advance(ms: number): void;
  /** queues flows, advances the clock by `ms`, polls once */
  poll(flows?: SyntheticFlow[], nonFlows?: SyntheticNonFlow[], ms?: number): Promise<void>;
}

export async function makeAgent(options: Partial<AgentOptions> = {}, ifaces = ['eth0', 'eth1']): Promise<TestAgent> {
  let now = T0;
  const clock = options.clock ?? (() => now);
  const source = new SyntheticFlowSource({ clock, ifindexes: { eth0: 2, eth1: 3, lo: 1 } });
  const agent = new Agent(source, {
    node: 'test-node',
    version: '0.0.0-test',
    storeSize: 1000,
    top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 },
    clock,
    ...options,
  });
  for (const iface of ifaces) await agent.attach(iface, 'tc');
  return {
    agent,
    source,
    now: clock,
    advance: (ms) => (now += ms),
    async poll(flows = [], nonFlows = [], ms = 1000) {
      now += ms;
      source.push(flows, nonFlows);
      await agent.collector.pollOnce();
    },
  };
}

export async function makeApp(t: TestAgent, extra: { token?: string; heartbeatMs?: number } = {}) {
  return createApp({ services: t.agent.services(), version: '0.0.0-test', clock: t.now, ...extra });
}

export function udp(src: string, dst: string, sport: number, dport: number, packets: number, bytes: number, iface = 'eth0', direction: 'ingress' | 'egress' = 'ingress'): SyntheticFlow {
  return { iface, direction, src, dst, proto: 17, sport, dport, packets, bytes };
}
