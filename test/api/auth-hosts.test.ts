/**
 * Who may call what (issue 10): every route, with and without the token; a
 * foreign Host header refused while listening on loopback (DNS rebinding).
 * The matrix is checked against the routes the app really registers, so a
 * new route must be added here.
 */
import { request } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { api, apiServerOptions } from '../../src/api/app.js';
import { hostName, loopbackHostNames } from '../../src/api/hosts.js';
import { startServer, type RunningServer } from '../../src/api/server.js';
import { isLoopbackHost, isLoopbackListen } from '../../src/lib/listen.js';
import { makeAgent, udp, type TestAgent } from '../helpers/agent-fixture.js';

const TOKEN = 'matrix-secret';

/** Every route the app registers (method + url), and a request that reaches each. */
const ROUTES: Record<string, { path: string; public: boolean }> = {
  'GET /': { path: '/', public: true },
  'GET /ui/:file': { path: '/ui/no-such-asset.js', public: true },
  'GET /healthz': { path: '/healthz', public: true },
  'GET /readyz': { path: '/readyz', public: true },
  'GET /openapi.json': { path: '/openapi.json', public: true },
  'GET /api/v1/flows': { path: '/api/v1/flows', public: false },
  // until in the past: the stream ends after its replay, so inject() returns
  'GET /api/v1/flows/stream': { path: '/api/v1/flows/stream?since=1h&until=1s', public: false },
  'GET /api/v1/top': { path: '/api/v1/top', public: false },
  'GET /api/v1/top/series': { path: '/api/v1/top/series', public: false },
  'GET /api/v1/interfaces': { path: '/api/v1/interfaces', public: false },
  'GET /api/v1/interfaces/history': { path: '/api/v1/interfaces/history', public: false },
  'GET /api/v1/status': { path: '/api/v1/status', public: false },
  'GET /metrics': { path: '/metrics', public: false },
};

let app: FastifyInstance | undefined;
let server: RunningServer | undefined;
afterEach(async () => {
  await app?.close();
  await server?.close();
  app = server = undefined;
});

async function withTraffic(): Promise<TestAgent> {
  const t = await makeAgent();
  await t.poll([udp('10.0.0.1', '10.0.0.2', 1000, 53, 3, 300)]);
  t.advance(2000);
  await t.agent.collector.pollOnce();
  return t;
}

/** The app with a record of the routes it registers. */
async function appWithRoutes(t: TestAgent, token?: string): Promise<{ app: FastifyInstance; routes: string[] }> {
  const routes: string[] = [];
  const a = Fastify(apiServerOptions());
  a.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push(`${m} ${r.url}`);
  });
  await a.register(api, { services: t.agent.services(), version: 'test', clock: t.now, token });
  await a.ready();
  return { app: a, routes };
}

describe('auth matrix', () => {
  it('covers every registered route', async () => {
    const t = await withTraffic();
    const r = await appWithRoutes(t, TOKEN);
    app = r.app;
    expect(r.routes.sort()).toEqual(Object.keys(ROUTES).sort());
  });

  /** status and body of GET path over a real connection (the SSE route cannot be injected) */
  async function call(path: string, authorization?: string): Promise<{ status: number; body: string; wwwAuth: string | null }> {
    const r = await fetch(server!.url + path, { headers: authorization ? { authorization } : {} });
    return { status: r.status, body: await r.text(), wwwAuth: r.headers.get('www-authenticate') };
  }

  it('with a token: public routes answer without it; every other route answers 401 without it or with a wrong one, and serves with it', async () => {
    const t = await withTraffic();
    server = await startServer({ host: '127.0.0.1', port: 0 }, { services: t.agent.services(), version: 'test', clock: t.now, token: TOKEN });
    for (const [route, { path, public: open }] of Object.entries(ROUTES)) {
      const none = await call(path);
      const wrong = await call(path, 'Bearer not-the-token');
      const basic = await call(path, `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`);
      const right = await call(path, `Bearer ${TOKEN}`);
      if (open) {
        for (const res of [none, wrong, basic, right]) expect([200, 404, 503], route).toContain(res.status);
        expect(none.status, route).toBe(right.status);
      } else {
        for (const res of [none, wrong, basic]) {
          expect(res.status, `${route} without the token`).toBe(401);
          expect(res.wwwAuth).toMatch(/^Bearer/);
          expect(JSON.parse(res.body).error).toBe('unauthorized');
        }
        expect(right.status, `${route} with the token: ${right.body.slice(0, 200)}`).toBe(200);
      }
    }
  });

  it('without a token (loopback default) every route serves', async () => {
    const t = await withTraffic();
    server = await startServer({ host: '127.0.0.1', port: 0 }, { services: t.agent.services(), version: 'test', clock: t.now });
    for (const [route, { path }] of Object.entries(ROUTES)) {
      const { status } = await call(path);
      // the dashboard's page is 503 when its assets are not built; an unknown asset is 404
      if (route === 'GET /') expect([200, 503]).toContain(status);
      else if (route === 'GET /ui/:file') expect(status).toBe(404);
      else expect(status, route).toBe(200);
    }
  });

  it('the public routes hold no flow data', async () => {
    const t = await withTraffic();
    app = (await appWithRoutes(t, TOKEN)).app;
    for (const { path } of Object.values(ROUTES).filter((r) => r.public)) {
      expect((await app.inject(path)).body, path).not.toMatch(/10\.0\.0\.1/);
    }
  });
});

describe('Host header on loopback (DNS rebinding)', () => {
  const get = (url: string, host: string | undefined, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { headers: host === undefined ? headers : { ...headers, host }, setHost: host === undefined ? false : undefined, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('a server listening on 127.0.0.1 answers localhost, 127.0.0.1 and [::1] with any port, and refuses every other name with 421 and a JSON message', async () => {
    const t = await withTraffic();
    server = await startServer({ host: '127.0.0.1', port: 0 }, { services: t.agent.services(), version: 'test', clock: t.now });
    const url = `${server.url}/api/v1/status`;
    for (const host of ['localhost', 'localhost:9797', 'LOCALHOST:1', 'localhost.:9797', '127.0.0.1', '127.0.0.1:9797', '[::1]', '[::1]:9797']) {
      expect((await get(url, host)).status, host).toBe(200);
    }
    for (const host of ['evil.example', 'evil.example:9797', '127.0.0.1.nip.io', 'localhost.evil.example:9797', 'attacker.localhost', '[::2]:9797', '10.0.0.1:9797', '127.0.0.2', '0.0.0.0', 'localhost:9797:1']) {
      const r = await get(url, host);
      expect(r.status, host).toBe(421);
      const body = JSON.parse(r.body);
      expect(body.error).toBe('misdirected_request');
      expect(body.message).toMatch(/loopback.*DNS rebinding/);
    }
    // every route, public ones and the stream included
    for (const { path } of Object.values(ROUTES)) expect((await get(server.url + path, 'evil.example:9797')).status, path).toBe(421);
  });

  it('refuses a foreign Host before the token is looked at, and serves a loopback name with the token', async () => {
    const t = await withTraffic();
    server = await startServer({ host: '127.0.0.1', port: 0 }, { services: t.agent.services(), version: 'test', clock: t.now, token: TOKEN });
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await get(`${server.url}/api/v1/flows`, 'evil.example', auth)).status).toBe(421);
    expect((await get(`${server.url}/api/v1/flows`, 'localhost:8080', auth)).status).toBe(200);
    expect((await get(`${server.url}/api/v1/flows`, 'localhost:8080')).status).toBe(401);
  });

  it('the names, in units', () => {
    expect(loopbackHostNames('127.0.0.1').sort()).toEqual(['127.0.0.1', '[::1]', 'localhost']);
    expect(loopbackHostNames('::1').sort()).toEqual(['127.0.0.1', '[::1]', 'localhost']);
    expect(loopbackHostNames('127.0.0.5')).toContain('127.0.0.5');
    expect(hostName('[::1]:80')).toBe('[::1]');
    expect(hostName('Example.COM.:1')).toBe('example.com');
    expect(hostName('a:b:c')).toBeUndefined();
    for (const h of ['localhost', '127.0.0.1', '127.9.9.9', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1', '0000:0000:0000:0000:0000:0000:0000:0001']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '::2', '::ffff:10.0.0.1', '128.0.0.1', 'localhost.example']) expect(isLoopbackHost(h), h).toBe(false);
    for (const l of ['127.0.0.1:9797', '[::1]:9797', 'localhost:9797', ':9797']) expect(isLoopbackListen(l), l).toBe(true);
    for (const l of ['0.0.0.0:9797', '[::]:9797', '10.1.2.3:9797', 'node-a:9797']) expect(isLoopbackListen(l), l).toBe(false);
  });
});
