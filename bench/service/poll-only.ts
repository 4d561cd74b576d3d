/**
 * Poll cost only (no HTTP), for profiling the TypeScript side of a poll:
 *   node --expose-gc --import tsx bench/service/poll-only.ts [--flows N] [--polls P]
 * Prints each poll's TS cost (duration minus drain) and the longest time the
 * poll held the event loop without yielding (measured by a 1 ms interval timer).
 */
import { parseArgs } from 'node:util';
import { Agent } from '../../src/agent/agent.js';
import { SyntheticFlowSource } from '../../src/datapath/synthetic-source.js';

const { values } = parseArgs({
  options: { flows: { type: 'string', default: '1000000' }, polls: { type: 'string', default: '22' }, phases: { type: 'boolean', default: false } },
});
const FLOWS = Number(values.flows);
let now = Date.parse('2024-05-01T12:00:00Z');
const clock = () => now;
const source = new SyntheticFlowSource({ clock, flowMapCapacity: 1 << 21 });
const agent = new Agent(source, { node: 'bench', version: 'bench', storeSize: 1024, clock, maxTopK: 1000 });
await agent.attach('synth0', 'tc');
source.generate({ flows: FLOWS, sources: 65_536, iface: 'synth0' });
const rss0 = process.memoryUsage().rss;

// --phases: time spent per phase (wrapped methods; costs a little itself)
const phases = new Map<string, number>();
if (process.argv.includes('--phases')) {
  const wrap = (obj: Record<string, unknown>, name: string, label: string) => {
    const f = obj[name] as (...a: unknown[]) => unknown;
    obj[name] = function (this: unknown, ...args: unknown[]) {
      const t = performance.now();
      const r = f.apply(this, args);
      if (r instanceof Promise) return r.finally(() => phases.set(label, (phases.get(label) ?? 0) + performance.now() - t));
      phases.set(label, (phases.get(label) ?? 0) + performance.now() - t);
      return r;
    };
  };
  const table = agent.table as unknown as Record<string, unknown>;
  wrap(table, 'accumulate', 'accumulate');
  wrap(table, 'exportPending', 'table.exportPending');
  wrap(table, 'sweep', 'sweep');
  wrap(agent.store as unknown as Record<string, unknown>, 'write', 'store.write');
  wrap(agent.topWindows as unknown as Record<string, unknown>, 'add', 'top.add (async, incl. close)');
  wrap(agent.topWindows as unknown as Record<string, unknown>, 'summarizeOpen', 'top close (async)');
}
// Longest gap between event-loop turns while polling.
let last = performance.now();
let maxGap = 0;
const tick = setInterval(() => {
  const t = performance.now();
  if (t - last > maxGap) maxGap = t - last;
  last = t;
}, 1);
const rows: string[] = [];
for (let i = 0; i < Number(values.polls); i++) {
  now += 1000;
  maxGap = 0;
  last = performance.now();
  const c0 = process.cpuUsage();
  const r = await agent.collector.pollOnce();
  const c1 = process.cpuUsage(c0);
  const cpu = (c1.user + c1.system) / 1000 - r.drainMs;
  const ts = r.durationMs - r.drainMs;
  if (phases.size) {
    rows.push('  ' + [...phases].map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', '));
    phases.clear();
  }
  rows.push(`poll ${i}${now % 10_000 === 0 ? ' (bucket close)' : ''}: ts ${ts.toFixed(1)} ms = ${((ts * 1e6) / FLOWS).toFixed(0)} ns/flow (cpu ${cpu.toFixed(1)} ms = ${((cpu * 1e6) / FLOWS).toFixed(0)} ns/flow), drain ${r.drainMs.toFixed(1)} ms, longest loop hold ${maxGap.toFixed(1)} ms`);
}
clearInterval(tick);
(globalThis as { gc?: () => void }).gc?.();
console.log(rows.join('\n'));
console.log(`tracked ${agent.table.size}; rss delta/flow ${((process.memoryUsage().rss - rss0) / agent.table.size).toFixed(1)} B`);
await agent.close();
