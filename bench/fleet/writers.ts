/**
 * The fleet's agents for bench/fleet/fleet.ts, in a process of their own:
 * NODES simulated nodes (sim.ts), each exporting FLOWS records every
 * INTERVAL ms through its own Redis sink, the nodes' exports spread evenly
 * over the interval as independent agents' are. An export comes due while
 * the node's previous one is still not all in Redis (Redis or this process
 * cannot keep up) is skipped and counted, as a real agent's sink would buffer
 * and then drop it. Prints a JSON line every second: records offered (due),
 * produced, written (acknowledged by Redis), skipped, waiting in the sinks'
 * queues, dropped. SIGTERM: stops producing, writes what is queued, prints a
 * last line with `final: true` and exits.
 *
 *   node --import tsx bench/fleet/writers.ts URL NODES FLOWS INTERVAL_MS
 */
import { AddressTable } from '../../src/flow/address-table.js';
import { exportBatch, startAgents, stopAgents } from './sim.js';

const [url, nodesArg, flowsArg, intervalArg] = process.argv.slice(2);
const NODES = Number(nodesArg);
const FLOWS = Number(flowsArg);
const INTERVAL = Number(intervalArg);
const TICK_MS = 20;

const { agents, client } = await startAgents(url, 0, NODES, 1_000_000, Math.max(1000, 2 * FLOWS));
// registration (SADD flowscope:nodes, the writer key) before anything is timed
await Promise.all(agents.map((a) => a.sink.flush()));
const addresses = new AddressTable();
let offered = 0;
let produced = 0;
let skipped = 0;
let stopping = false;
const started = Date.now();
/** exports done per node */
const rounds = new Array<number>(NODES).fill(0);

const status = (final = false) => {
  let written = 0;
  let pending = 0;
  let dropped = 0;
  for (const a of agents) {
    const s = a.sink.status();
    written += s.exported;
    pending += s.pending ?? 0;
    dropped += s.dropped;
  }
  return { t: Date.now(), offered, produced, skipped, written, pending, dropped, final };
};
process.stdout.write(`${JSON.stringify({ ready: true, nodes: NODES })}\n`);

const reporter = setInterval(() => process.stdout.write(`${JSON.stringify(status())}\n`), 1000);

// Node i exports at started + i/NODES * INTERVAL + k * INTERVAL, each export covering the INTERVAL before it.
const tick = (): void => {
  if (stopping) return;
  const now = Date.now();
  for (let i = 0; i < NODES; i++) {
    const due = started + (i / NODES) * INTERVAL + (rounds[i] + 1) * INTERVAL;
    if (now < due) continue;
    const a = agents[i];
    rounds[i]++;
    offered += FLOWS;
    if ((a.sink.status().pending ?? 0) > 0) {
      skipped += FLOWS;
      continue;
    }
    a.sink.write(exportBatch(i, FLOWS, due - INTERVAL, due, rounds[i] - 1, addresses, a.labels));
    void a.sink.flush();
    produced += FLOWS;
  }
  setTimeout(tick, TICK_MS);
};
tick();

process.once('SIGTERM', async () => {
  stopping = true;
  clearInterval(reporter);
  for (;;) {
    const s = status();
    if (s.pending === 0) break;
    await Promise.all(agents.map((a) => a.sink.flush()));
    await new Promise((r) => setTimeout(r, 20));
  }
  process.stdout.write(`${JSON.stringify(status(true))}\n`);
  await stopAgents(agents, client);
  process.exit(0);
});
