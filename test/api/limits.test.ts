/**
 * Limits of the HTTP API (issue 10): a bound on SSE followers, the replay
 * written under backpressure, bounded buffers and dropped stalled clients,
 * filtered /top bounded, request timeouts, and a stop that ends every stream
 * and connection at once (issue 9).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer, type ServerTimeouts } from '../../src/api/server.js';
import { createApp, type ApiOptions } from '../../src/api/app.js';
import type { TopAnswer, TopQuery } from '../../src/engine/top/top-windows.js';
import { eventually } from '../helpers/eventually.js';
import { makeAgent, udp, type TestAgent } from '../helpers/agent-fixture.js';
import { sseClient, type SseClient } from './sse-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: RunningServer | undefined;
const clients: SseClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const c of slowClients.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await server?.close();
  server = undefined;
});

async function serve(t: TestAgent, extra: Partial<ApiOptions> = {}, timeouts: Partial<ServerTimeouts> = {}): Promise<string> {
  server = await startServer({ host: '127.0.0.1', port: 0 }, { services: t.agent.services(), version: 'test', clock: t.now, ...extra }, undefined, timeouts);
  return server.url;
}

function follow(url: string, opts: { paused?: boolean } = {}): SseClient {
  const c = sseClient(url, opts);
  clients.push(c);
  return c;
}

/**
 * A client with a 4 kB receive buffer that reads nothing until go() (test/api/slow-client.py):
 * unlike a paused Node.js socket, the kernel then holds only a few kB, so the server really waits.
 */
function slowClient(url: string, path: string): { sent: Promise<void>; go(readSeconds?: number): Promise<string>; kill(): void } {
  const child = spawn('python3', [SLOW_CLIENT, new URL(url).port, path, '3'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  slowClients.push(child);
  return {
    sent: eventually(() => out.startsWith('sent'), 'slow client sent its request'),
    async go() {
      child.stdin!.write('go\n');
      await exited;
      return out;
    },
    kill: () => child.kill('SIGKILL'),
  };
}
const slowClients: ChildProcess[] = [];
const SLOW_CLIENT = new URL('./slow-client.py', import.meta.url).pathname;
const dataLines = (raw: string) => raw.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));

/** n distinct UDP flows (sport = base + i) */
const flowsOf = (n: number, base = 1000) => Array.from({ length: n }, (_, i) => udp('10.0.0.1', '10.0.0.2', base + i, 53, 1, 100));

describe('SSE followers', () => {
  it('admits at most maxFollowers streams, answers 503 with a JSON message beyond, and frees the slot when a client leaves', async () => {
    const t = await makeAgent();
    const url = await serve(t, { maxFollowers: 2 });
    const a = follow(`${url}/api/v1/flows/stream`);
    const b = follow(`${url}/api/v1/flows/stream`);
    expect([await a.status, await b.status]).toEqual([200, 200]);
    const r = await fetch(`${url}/api/v1/flows/stream`);
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBeTruthy();
    const body = await r.json();
    expect(body.error).toBe('too_many_followers');
    expect(body.message).toMatch(/--max-followers 2/);
    expect(server!.app.flowscopeStreams.size).toBe(2);
    // other routes are not affected
    expect((await fetch(`${url}/api/v1/flows`)).status).toBe(200);
    a.destroy();
    await eventually(() => server!.app.flowscopeStreams.size === 1, 'slot released');
    expect(t.agent.store.subscribers).toBe(1);
    const c = follow(`${url}/api/v1/flows/stream`);
    expect(await c.status).toBe(200);
  });

  it('writes a 10,000-record replay under backpressure: a client that does not read holds at most a chunk; then it gets every record once, in order, and what arrived meanwhile', async () => {
    const t = await makeAgent({ storeSize: 20_000 });
    await t.poll(flowsOf(10_000));
    const url = await serve(t);
    const c = slowClient(url, '/api/v1/flows/stream?limit=10000');
    await c.sent;
    await eventually(() => server!.app.flowscopeStreams.size === 1, 'stream open');
    await sleep(300);
    const registry = server!.app.flowscopeStreams;
    // the replay waits for the client (the kernel took what its socket buffers hold, ~2.5 MB here):
    // the rest is not even serialized yet, and at most a chunk is queued in the process
    expect(registry.replayRecords).toBeGreaterThan(500);
    expect(registry.buffered).toBeLessThan(200 * 1024);
    // records that arrive while the replay waits are sent after it, none lost, none twice
    await t.poll(flowsOf(5, 50_000));
    const got = dataLines(await c.go());
    expect(got.length).toBe(10_005);
    expect(got.slice(0, 10_000).map((r) => r.sport)).toEqual(Array.from({ length: 10_000 }, (_, i) => 1000 + i));
    expect(got.slice(10_000).map((r) => r.sport)).toEqual([50_000, 50_001, 50_002, 50_003, 50_004]);
    expect(registry.replayRecords).toBe(0);
  }, 30_000);

  it('replays waiting for slow clients share a budget of held records: a replay beyond it is cut to its newest records, and says so', async () => {
    const t = await makeAgent({ storeSize: 20_000 });
    await t.poll(flowsOf(10_000));
    const url = await serve(t, { replayBudget: 11_000 });
    const registry = server!.app.flowscopeStreams;
    const first = slowClient(url, '/api/v1/flows/stream?limit=10000');
    await first.sent;
    await eventually(() => registry.size === 1, 'first stream open');
    await sleep(300);
    const held = registry.replayRecords;
    expect(held).toBeGreaterThan(500);
    const second = slowClient(url, '/api/v1/flows/stream?limit=10000');
    await second.sent;
    await eventually(() => registry.size === 2, 'second stream open');
    expect(registry.replayRecords).toBeLessThanOrEqual(11_000);
    const [a, b] = await Promise.all([first.go(), second.go()]);
    expect(dataLines(a)).toHaveLength(10_000);
    expect(a).not.toMatch(/replay limited/);
    const limited = /: replay limited to the newest (\d+) of 10000 records/.exec(b);
    expect(limited).not.toBeNull();
    const got = dataLines(b);
    expect(got.length).toBe(Number(limited![1]));
    expect(got.length).toBeLessThan(10_000);
    // the newest ones, oldest first
    expect(got.map((r) => r.sport)).toEqual(Array.from({ length: got.length }, (_, i) => 1000 + 10_000 - got.length + i));
    expect(registry.replayRecords).toBe(0);
  }, 30_000);

  it('a client that reads nothing of its replay for stallMs is disconnected, and its replay memory and queued records released', async () => {
    const t = await makeAgent({ storeSize: 20_000 });
    await t.poll(flowsOf(10_000));
    const url = await serve(t, { streamStallMs: 400, heartbeatMs: 50 });
    const registry = server!.app.flowscopeStreams;
    const c = slowClient(url, '/api/v1/flows/stream?limit=10000');
    await c.sent;
    await eventually(() => registry.size === 1 && registry.replayRecords > 0, 'replay waiting');
    await t.poll(flowsOf(50, 50_000)); // queued behind the replay, within the budget
    expect(registry.replayRecords).toBeGreaterThan(50);
    await eventually(() => registry.size === 0, 'stalled replay dropped', 5000);
    expect(registry.replayRecords).toBe(0);
    expect(t.agent.store.subscribers).toBe(0);
    c.kill();
  }, 30_000);

  it('a client that does not keep up has records skipped, never more than the buffer bound queued, and is told how many', async () => {
    const t = await makeAgent({ storeSize: 5000 });
    const bound = 256 * 1024;
    const url = await serve(t, { streamBufferBytes: bound });
    const slow = follow(`${url}/api/v1/flows/stream`, { paused: true });
    const fast = follow(`${url}/api/v1/flows/stream`);
    await Promise.all([slow.status, fast.status]);
    // 60 polls of 500 records (~160 kB each, under the bound): ~10 MB in all, more than the kernel's socket buffers hold
    let most = 0;
    for (let i = 0; i < 60; i++) {
      await t.poll(flowsOf(500, 1000 + i));
      most = Math.max(most, server!.app.flowscopeStreams.buffered);
      await sleep(5);
    }
    await eventually(() => fast.records().length === 30_000, 'the reading client gets everything', 20_000);
    expect(fast.text()).not.toMatch(/skipped/);
    // at most the bound plus one 64 KiB chunk stays queued for the paused client (the reading one drains)
    expect(most).toBeLessThan(bound + 64 * 1024 + 200 * 1024);
    expect(most).toBeGreaterThan(bound / 2);
    slow.resume();
    // told as soon as it has caught up, then it gets new records again
    await eventually(() => /: skipped \d+ records/.test(slow.text()), 'slow client told', 20_000);
    await t.poll(flowsOf(1, 60_000));
    await eventually(() => slow.records().some((r) => r.sport === 60_000), 'slow client follows again', 20_000);
    const skipped = [...slow.text().matchAll(/: skipped (\d+) records/g)].reduce((n, m) => n + Number(m[1]), 0);
    expect(skipped).toBeGreaterThan(0);
    expect(slow.records().length - 1 + skipped).toBe(30_000);
  }, 40_000);

  it('disconnects a client that reads nothing for stallMs while its buffer is full, releasing its slot', async () => {
    const t = await makeAgent({ storeSize: 5000 });
    const url = await serve(t, { streamBufferBytes: 64 * 1024, streamStallMs: 300, heartbeatMs: 50 });
    const dead = follow(`${url}/api/v1/flows/stream`, { paused: true });
    expect(await dead.status).toBe(200);
    // send until the kernel's buffers are full and the stream's own buffer stays above its bound
    for (let i = 0; i < 400 && server!.app.flowscopeStreams.size > 0; i++) {
      await t.poll(flowsOf(500, 1000 + (i % 50)));
      await sleep(5);
    }
    await eventually(() => server!.app.flowscopeStreams.size === 0, 'stalled client dropped', 5000);
    expect(t.agent.store.subscribers).toBe(0);
    // the server let go of the connection (the client, not reading, does not notice)
    const connections = () => new Promise<number>((r) => server!.app.server.getConnections((_e, n) => r(n)));
    await eventually(async () => (await connections()) === 0, 'connection closed on the server');
  }, 40_000);
});

describe('stop', () => {
  it('close() ends every stream, the one that does not read included, and idle and half-sent connections, within a second or two', async () => {
    const t = await makeAgent({ storeSize: 5000 });
    const url = await serve(t, { heartbeatMs: 60_000 });
    const port = Number(new URL(url).port);
    const reading = [follow(`${url}/api/v1/flows/stream`), follow(`${url}/api/v1/flows/stream?limit=10`)];
    const paused = follow(`${url}/api/v1/flows/stream`, { paused: true });
    await Promise.all([...reading, paused].map((c) => c.status));
    for (let i = 0; i < 10; i++) await t.poll(flowsOf(2000)); // fill the paused client's buffers
    // a keep-alive connection after a request, and one that sent half a request
    const idle = connect(port, '127.0.0.1');
    idle.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const half = connect(port, '127.0.0.1');
    half.write('GET /healthz HTTP/1.1\r\nHost: 127.0');
    const closed = (s: ReturnType<typeof connect>) => new Promise<void>((r) => s.on('close', () => r()).on('error', () => undefined).resume());
    const sockets = Promise.all([closed(idle), closed(half)]);
    await sleep(100);
    const started = performance.now();
    await server!.close();
    const took = performance.now() - started;
    server = undefined;
    expect(took).toBeLessThan(2500);
    // close() resolves once every connection is gone; the reading clients see the end (the paused one
    // reads nothing, so it cannot notice)
    for (const c of reading) expect(['end', 'close']).toContain(await c.ended);
    await sockets;
    expect(t.agent.store.subscribers).toBe(0);
  });

  it('an app closed without a listener (createApp) also ends its streams', async () => {
    const t = await makeAgent();
    const app = await createApp({ services: t.agent.services(), version: 'test', clock: t.now });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const c = sseClient(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/api/v1/flows/stream`);
    expect(await c.status).toBe(200);
    const closing = app.close();
    expect(await c.ended).toBe('end');
    await closing;
    expect(t.agent.store.subscribers).toBe(0);
  });
});

describe('timeouts', () => {
  it('cuts a request whose headers never finish; leaves an idle SSE stream alone', async () => {
    const t = await makeAgent();
    const url = await serve(t, { heartbeatMs: 60_000 }, { requestMs: 400, headersMs: 400, idleMs: 600 });
    const port = Number(new URL(url).port);
    const stream = follow(`${url}/api/v1/flows/stream`);
    expect(await stream.status).toBe(200);
    const slow = connect(port, '127.0.0.1');
    const started = performance.now();
    slow.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const cut = await new Promise<number>((r) => slow.on('close', () => r(performance.now() - started)).on('error', () => undefined));
    expect(cut).toBeLessThan(3000);
    await sleep(800);
    // the stream outlived both the request and the idle timeout, and still delivers
    await t.poll([udp('10.0.0.9', '10.0.0.2', 7, 53, 1, 100)]);
    await eventually(() => stream.records().some((r) => r.sport === 7), 'stream still open');
  });
});

describe('filtered /api/v1/top', () => {
  it('computes at most maxFilteredTop filtered queries at once (503 beyond); unfiltered queries are not limited', async () => {
    const t = await makeAgent();
    const services = t.agent.services();
    const pending: (() => void)[] = [];
    const answer: TopAnswer = { entries: [], from: null, to: null, totalBytes: 0, totalPackets: 0, exact: true, unlistedBytesMax: 0, unlistedPacketsMax: 0 };
    services.top = {
      horizonMs: 3_600_000,
      bucketMs: 1000,
      maxK: 100,
      top: (q: TopQuery) => (q.filter.src ? new Promise<TopAnswer>((r) => pending.push(() => r(answer))) : answer),
    };
    const app = await createApp({ services, version: 'test', maxFilteredTop: 2 });
    try {
      const held = [app.inject('/api/v1/top?src=10.0.0.1'), app.inject('/api/v1/top?src=10.0.0.2')];
      await eventually(() => pending.length === 2, 'two filtered queries running');
      const refused = await app.inject('/api/v1/top?src=10.0.0.3');
      expect(refused.statusCode).toBe(503);
      expect(refused.json().error).toBe('busy');
      expect((await app.inject('/api/v1/top')).statusCode).toBe(200);
      for (const p of pending.splice(0)) p();
      expect((await Promise.all(held)).map((r) => r.statusCode)).toEqual([200, 200]);
      const again = app.inject('/api/v1/top?src=10.0.0.3');
      await eventually(() => pending.length === 1, 'admitted again');
      pending[0]();
      expect((await again).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
