import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { makeAgent, makeApp, udp, T0, type TestAgent } from '../helpers/agent-fixture.js';
import { createApp } from '../../src/api/app.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function withTraffic(): Promise<TestAgent> {
  const t = await makeAgent();
  await t.poll([udp('10.0.0.1', '10.0.0.2', 1000, 53, 3, 300), udp('10.0.0.3', '10.0.0.2', 1001, 53, 5, 500)]);
  await t.poll([udp('10.0.0.1', '10.0.0.2', 1000, 53, 1, 100)], [{ iface: 'eth0', direction: 'ingress', kind: 'overflow', packets: 2, bytes: 128 }]);
  t.advance(1000);
  await t.agent.collector.pollOnce();
  return t;
}

describe('HTTP API', () => {
  it('serves flows newest first with the contract fields', async () => {
    const t = await withTraffic();
    app = await makeApp(t);
    const r = await app.inject('/api/v1/flows?limit=2&dport=53');
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.total).toBe(3);
    expect(body.truncated).toBe(true);
    expect(body.flows[0]).toEqual({
      node: 'test-node', iface: 'eth0', ifindex: 2, direction: 'ingress', family: 4, src: '10.0.0.1', dst: '10.0.0.2', proto: 'udp',
      sport: 1000, dport: 53, packets: 1, bytes: 100, tcpFlags: [],
      start: new Date(T0 + 1000).toISOString(), end: new Date(T0 + 2000).toISOString(),
      firstSeen: new Date(T0 + 1000).toISOString(), lastSeen: new Date(T0 + 2000).toISOString(),
    });
  });

  it('serves top talkers with the contract shape', async () => {
    const t = await withTraffic();
    app = await makeApp(t);
    const r = await app.inject('/api/v1/top?by=src&metric=packets&k=1');
    expect(r.json()).toMatchObject({ by: 'src', metric: 'packets', window: '1m', entries: [{ key: { src: '10.0.0.3' }, bytes: 500, packets: 5, share: 5 / 9 }] });
    const d = (await app.inject('/api/v1/top')).json();
    expect(d).toMatchObject({ by: 'src', metric: 'bytes', window: '1m', exact: true, totalBytes: 900 });
  });

  it('serves interface accounting and status with overflow counters', async () => {
    const t = await withTraffic();
    app = await makeApp(t);
    const ifaces = (await app.inject('/api/v1/interfaces')).json();
    expect(ifaces[0]).toMatchObject({ iface: 'eth0', ifindex: 2, hook: 'tc', rx: { packets: 11, bytes: 1028, overflowPackets: 2, overflowBytes: 128 }, tx: { packets: 0, bytes: 0 } });
    expect(ifaces[0].rx).toHaveProperty('pps');
    expect(ifaces[0].rx).toHaveProperty('bps');
    const status = (await app.inject('/api/v1/status')).json();
    expect(status).toMatchObject({
      node: 'test-node', version: '0.0.0-test', ready: true, flowsTracked: 2, mapCapacity: 65536, overflowPackets: 2, overflowBytes: 128,
      polls: 3, sinks: [{ name: 'memory', exported: 3, dropped: 0 }], store: { records: 3, capacity: 1000, lost: 0 },
    });
    expect(typeof status.lastPollDurationMs).toBe('number');
    expect(status.interfaces.map((i: { iface: string }) => i.iface)).toEqual(['eth0', 'eth1']);
  });

  it('is ready only when attached and after a poll', async () => {
    const t = await makeAgent({}, []);
    app = await makeApp(t);
    expect((await app.inject('/readyz')).json()).toEqual({ ready: false, reason: 'no interface attached' });
    await t.agent.attach('eth0', 'tc');
    const r = await app.inject('/readyz');
    expect(r.statusCode).toBe(503);
    expect(r.json().reason).toMatch(/no poll/);
    await t.poll();
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
  });

  it('publishes an OpenAPI document of every route with its parameters', async () => {
    const t = await makeAgent();
    app = await makeApp(t);
    const doc = (await app.inject('/openapi.json')).json();
    for (const route of ['/api/v1/flows', '/api/v1/flows/stream', '/api/v1/top', '/api/v1/interfaces', '/api/v1/status', '/healthz', '/readyz', '/metrics']) {
      expect(doc.paths, route).toHaveProperty([route]);
    }
    const names = doc.paths['/api/v1/top'].get.parameters.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['by', 'metric', 'window', 'k', 'src', 'since']));
    for (const [route, item] of Object.entries(doc.paths as Record<string, { get: { responses: Record<string, { content?: Record<string, { schema?: object }> }> } }>)) {
      expect(Object.keys(item.get.responses), route).toEqual(expect.arrayContaining(['200', '400']));
      expect(item.get.responses['200'].content?.['application/json']?.schema, route).toBeDefined();
    }
    expect(doc.paths['/api/v1/status'].get.responses['200'].content['application/json'].schema.properties.relay.properties).toHaveProperty('scaleOut');
    expect(doc.paths['/api/v1/flows'].get.parameters.find((p: { name: string }) => p.name === 'limit').schema).toMatchObject({ type: 'integer', default: 100 });
    // parameters with a default are optional to the client
    expect(doc.paths['/api/v1/top'].get.parameters.filter((p: { required?: boolean }) => p.required)).toEqual([]);
  });

  it('requires the bearer token when configured, except for health and docs', async () => {
    const t = await withTraffic();
    app = await makeApp(t, { token: 's3cret' });
    const denied = await app.inject('/api/v1/flows');
    expect(denied.statusCode).toBe(401);
    expect(denied.json().error).toBe('unauthorized');
    expect((await app.inject({ url: '/api/v1/flows', headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
    expect((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer s3cret' } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/v1/flows', headers: { authorization: 'Bearer s3cret' } })).statusCode).toBe(200);
    expect((await app.inject('/metrics')).statusCode).toBe(401);
    expect((await app.inject('/api/v1/nope')).statusCode).toBe(401);
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    expect((await app.inject('/readyz')).statusCode).toBe(200);
  });

  it('never answers a 500 with internals when a service fails', async () => {
    const t = await withTraffic();
    const services = t.agent.services();
    services.interfaces = { interfaces: () => { throw new Error('secret internals'); } };
    app = await createApp({ services, version: 'x' });
    const r = await app.inject('/api/v1/interfaces');
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ error: 'internal', message: 'internal error; see the agent log' });
  });

  it("serves the agent's and a relay's status whole: the response schema drops none of their fields", async () => {
    const t = await withTraffic();
    const services = t.agent.services();
    const agentStatus = services.status.status();
    const readiness = services.status.readiness.bind(services.status);
    const relayStatus = {
      ...agentStatus,
      role: 'relay' as const,
      relay: {
        redis: 'redis://redis.example:6379',
        connected: true,
        lastError: 'READONLY',
        group: 'flowscope',
        consumer: 'relay-a',
        entries: 5,
        replayed: 2,
        recovered: 1,
        badEntries: 1,
        rejected: { attribution: 1 },
        ignoredNodes: 1,
        nodesKeyError: 'WRONGTYPE',
        nodes: [
          { node: 'n1', stream: 'flowscope:{n1}:flows', entries: 5, lastId: '1-0', lastRecordEnd: null, storeRecords: 5, interfaces: 1, rejected: { attribution: 1 }, readErrors: 1, lastError: 'WRONGTYPE' },
        ],
        scaleOut: {
          id: 'relay-a',
          url: null,
          partitions: 8,
          owned: [0, 1],
          held: [0, 1, 2],
          live: ['relay-a', 'relay-b'],
          gained: 3,
          lost: 1,
          lastFanout: { peers: 1, missing: ['relay-b'], incomplete: [5] },
          lastError: 'lease lost',
        },
      },
    };
    for (const status of [agentStatus, relayStatus]) {
      services.status = { status: () => status, readiness };
      app = await createApp({ services, version: 'x' });
      expect((await app.inject('/api/v1/status')).json()).toEqual(JSON.parse(JSON.stringify(status)));
      await app.close();
      app = undefined;
    }
  });
});

describe('SSE stream', () => {
  async function listen(t: TestAgent, heartbeatMs = 50) {
    app = await makeApp(t, { heartbeatMs });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address() as { port: number };
    return `http://127.0.0.1:${address.port}`;
  }

  async function readEvents(url: string, until: (text: string) => boolean, onOpen?: () => Promise<void>): Promise<string> {
    const abort = new AbortController();
    const response = await fetch(url, { signal: abort.signal });
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    let text = '';
    const decoder = new TextDecoder();
    const reader = response.body!.getReader();
    const opened = onOpen?.();
    while (!until(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    await opened;
    abort.abort();
    return text;
  }

  const dataOf = (text: string) => text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));

  it('follows new matching records and sends heartbeats', async () => {
    const t = await makeAgent();
    const base = await listen(t);
    const text = await readEvents(`${base}/api/v1/flows/stream?dport=53`, (s) => dataOf(s).length >= 2 && s.includes(': heartbeat'), async () => {
      await new Promise((r) => setTimeout(r, 30));
      await t.poll([udp('10.0.0.1', '10.0.0.2', 1, 53, 1, 100), udp('10.0.0.1', '10.0.0.2', 1, 80, 1, 100)]);
      await t.poll([udp('10.0.0.5', '10.0.0.2', 1, 53, 2, 200)]);
    });
    expect(dataOf(text).map((r) => [r.src, r.dport, r.packets])).toEqual([['10.0.0.1', 53, 1], ['10.0.0.5', 53, 2]]);
    expect(text).toContain(': heartbeat');
  });

  it('replays the last records with limit, oldest first, then follows', async () => {
    const t = await makeAgent();
    for (let i = 1; i <= 3; i++) await t.poll([udp('10.0.0.1', '10.0.0.2', i, 53, i, 100)]);
    const base = await listen(t);
    const text = await readEvents(`${base}/api/v1/flows/stream?limit=2`, (s) => dataOf(s).length >= 3, async () => {
      await new Promise((r) => setTimeout(r, 30));
      await t.poll([udp('10.0.0.1', '10.0.0.2', 9, 53, 9, 100)]);
    });
    expect(dataOf(text).map((r) => r.packets)).toEqual([2, 3, 9]);
  });

  it('ends after replay when until is in the past', async () => {
    const t = await makeAgent();
    await t.poll([udp('10.0.0.1', '10.0.0.2', 1, 53, 1, 100)]);
    const base = await listen(t);
    const response = await fetch(`${base}/api/v1/flows/stream?since=1h&until=${new Date(t.now()).toISOString()}`);
    const text = await response.text();
    expect(dataOf(text)).toHaveLength(1);
  });

  it('unsubscribes when the client goes away', async () => {
    const t = await makeAgent();
    const base = await listen(t, 10_000);
    await readEvents(`${base}/api/v1/flows/stream`, (s) => s.includes('flowscope stream'));
    for (let i = 0; i < 50 && t.agent.store.subscribers > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.agent.store.subscribers).toBe(0);
    expect(t.agent.status()).toBeDefined();
  });

  it('rejects bad filters before streaming', async () => {
    const t = await makeAgent();
    const base = await listen(t);
    const r = await fetch(`${base}/api/v1/flows/stream?src=nope`);
    expect(r.status).toBe(400);
    expect((await r.json()).message).toMatch(/src/);
  });
});
