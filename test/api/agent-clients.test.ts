/**
 * The real agent process (`flowscope run --source synthetic`, no kernel
 * needed) with HTTP clients that misbehave:
 *
 * - issue 9: SIGTERM with three SSE clients connected, one of them not
 *   reading, plus an idle keep-alive connection and a half-sent request: the
 *   agent exits 0 within 5 s, after its last export;
 * - issue 10: 300 SSE clients, half of them not reading: /healthz keeps
 *   answering quickly, the agent's memory stays bounded, and the 301st client
 *   is refused with 503.
 */
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { sseClient, type SseClient } from './sse-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

let agent: AgentProcess | undefined;
const clients: SseClient[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const s of sockets.splice(0)) s.destroy();
  await agent?.stop();
  agent = undefined;
});

function follow(url: string, paused = false): SseClient {
  const c = sseClient(url, { paused });
  clients.push(c);
  return c;
}

describe('agent process with SSE clients', () => {
  it('SIGTERM with three SSE clients (one not reading), an idle keep-alive and a half-sent request: exit 0 within 5 s', async () => {
    agent = await startAgent(['--source', 'synthetic', '--synthetic-flows', '2000', '--poll-interval', '100ms']);
    const stream = `${agent.url}/api/v1/flows/stream`;
    const reading = [follow(stream), follow(`${stream}?limit=100`)];
    const paused = follow(stream, true);
    expect(await Promise.all([...reading, paused].map((c) => c.status))).toEqual([200, 200, 200]);
    const port = Number(new URL(agent.url).port);
    const idle = connect(port, '127.0.0.1').on('error', () => undefined);
    idle.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const half = connect(port, '127.0.0.1').on('error', () => undefined);
    half.write('GET /api/v1/status HTTP/1.1\r\nHost: 127.0');
    sockets.push(idle, half);
    // ~6 MB/s per stream: the paused client's socket buffers fill up
    await sleep(2000);
    expect(reading[0].records().length).toBeGreaterThan(1000);

    const started = Date.now();
    agent.child.kill('SIGTERM');
    const code = await Promise.race([agent.exited, sleep(5000).then(() => 'still running after 5 s')]);
    const took = Date.now() - started;
    expect(code, agent.output().slice(-2000)).toBe(0);
    expect(took).toBeLessThan(5000);
    expect(agent.output()).toMatch(/"msg":"stopping"/);
    expect(agent.output()).toMatch(/"msg":"stopped: last records exported/);
    for (const c of reading) expect(['end', 'close']).toContain(await c.ended);
    console.log(`[measure] SIGTERM to exit with 3 SSE clients (1 paused), an idle and a half-sent connection: ${took} ms`);
  }, 60_000);

  it('300 SSE clients, 150 not reading: /healthz answers quickly throughout, memory stays bounded, the 301st is refused', async () => {
    agent = await startAgent(['--source', 'synthetic', '--synthetic-flows', '100', '--poll-interval', '200ms', '--max-followers', '300']);
    const pid = agent.child.pid!;
    const base = rssMiB(pid);
    const stream = `${agent.url}/api/v1/flows/stream`;
    for (let i = 0; i < 300; i++) follow(stream, i % 2 === 0);
    const statuses = await Promise.all(clients.map((c) => c.status));
    expect(statuses.filter((s) => s === 200)).toHaveLength(300);
    const extra = await fetch(stream);
    expect(extra.status).toBe(503);
    expect((await extra.json()).error).toBe('too_many_followers');

    let worstHealthMs = 0;
    const rss: { at: number; mib: number }[] = [];
    const start = Date.now();
    while (Date.now() < start + 20_000) {
      const t0 = performance.now();
      const r = await fetch(`${agent.url}/healthz`);
      expect(r.status).toBe(200);
      await r.text();
      worstHealthMs = Math.max(worstHealthMs, performance.now() - t0);
      rss.push({ at: Date.now() - start, mib: rssMiB(pid) });
      await sleep(250);
    }
    const readers = clients.filter((_, i) => i % 2 === 1);
    const received = readers.map((c) => c.records().length);
    const peakOf = (from: number, to: number) => Math.max(...rss.filter((s) => s.at >= from && s.at < to).map((s) => s.mib));
    const peak = peakOf(0, Infinity);
    const lateGrowth = peakOf(15_000, Infinity) - peakOf(5_000, 10_000);
    console.log(
      `[measure] 300 SSE clients (150 paused) for 20 s: /healthz worst ${worstHealthMs.toFixed(0)} ms; RSS ${base.toFixed(0)} MiB idle, ` +
        `peak ${peak.toFixed(0)} MiB, peak of the last 5 s minus that of 5..10 s ${lateGrowth.toFixed(0)} MiB; records per reading client ${Math.min(...received)}..${Math.max(...received)}`,
    );
    expect(Math.min(...received)).toBeGreaterThan(500);
    expect(worstHealthMs).toBeLessThan(1000);
    // 150 stalled clients x at most 128 MiB / 300 each, plus the process itself
    expect(peak).toBeLessThan(base + 250);
    expect(lateGrowth).toBeLessThan(40);
    // and it still stops at once with them connected
    const started = Date.now();
    agent.child.kill('SIGTERM');
    expect(await Promise.race([agent.exited, sleep(5000).then(() => 'still running')])).toBe(0);
    console.log(`[measure] SIGTERM to exit with 300 SSE clients: ${Date.now() - started} ms`);
  }, 120_000);
});
