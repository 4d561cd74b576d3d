/**
 * The dashboard plugin as the agent's app registers it: routes, caching,
 * precompressed assets, input validation, and the 503 page when not built.
 */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dashboard, { DASHBOARD_CSP } from '../../src/web/plugin.js';

const root = resolve(import.meta.dirname, '../..');
let dir: string;
let app: FastifyInstance;
let assets: { js: string; css: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowscope-web-'));
  execFileSync(process.execPath, [join(root, 'src/web/build.mjs'), '--outdir', dir, '--quiet'], { stdio: 'inherit' });
  app = Fastify();
  await app.register(dashboard, { root: dir });
  await app.ready();
  const html = (await app.inject('/')).body;
  assets = { js: /src="ui\/([^"]+\.js)"/.exec(html)![1], css: /href="ui\/([^"]+\.css)"/.exec(html)![1] };
});

afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('dashboard plugin', () => {
  it('serves the page at / with a strict CSP and no caching', async () => {
    const res = await app.inject('/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.body).toContain('<title>flowscope</title>');
    // air-gapped: nothing is loaded from another origin
    expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('serves hashed assets as immutable, relative to the page', async () => {
    expect(assets.js).toMatch(/^app-[A-Z0-9]+\.js$/);
    const res = await app.inject(`/ui/${assets.js}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.headers['cache-control']).toContain('immutable');
    expect(res.body).toContain('uPlot'.slice(0, 1)); // minified bundle
    const css = await app.inject(`/ui/${assets.css}`);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.body).toContain('.uplot'); // uPlot's own CSS is bundled in
  });

  it('serves brotli or gzip when accepted, with Vary', async () => {
    const plain = await app.inject(`/ui/${assets.js}`);
    const br = await app.inject({ url: `/ui/${assets.js}`, headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toBe('accept-encoding');
    expect(br.headers['content-type']).toBe(plain.headers['content-type']);
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(plain.body);
    expect(br.rawPayload.length).toBeLessThan(plain.rawPayload.length / 2);
    const gz = await app.inject({ url: `/ui/${assets.js}`, headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.rawPayload).toString()).toBe(plain.body);
    const none = await app.inject({ url: `/ui/${assets.js}`, headers: { 'accept-encoding': 'br;q=0, identity' } });
    expect(none.headers['content-encoding']).toBeUndefined();
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await app.inject('/');
    const again = await app.inject({ url: '/', headers: { 'if-none-match': first.headers.etag as string } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('validates the asset name (400) and answers 404 for unknown assets', async () => {
    for (const bad of ['/ui/..%2Fpackage.json', '/ui/.hidden', '/ui/a%20b.js', '/ui/a%00.js']) {
      const res = await app.inject(bad);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error).toBeTruthy();
    }
    // longer than fastify's maxParamLength
    expect([400, 414]).toContain((await app.inject(`/ui/${'a'.repeat(200)}`)).statusCode);
    const missing = await app.inject('/ui/nope.js');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'Not Found' }); // fastify's default 404 here; the app's own in the agent
    expect((await app.inject('/ui/index.html')).statusCode).toBe(404);
    expect((await app.inject('/ui/app.js.br')).statusCode).toBe(404);
    // nothing outside the asset directory
    expect((await app.inject('/ui/../package.json')).statusCode).toBe(404);
  });

  it('answers HEAD like GET without a body', async () => {
    const res = await app.inject({ method: 'HEAD', url: `/ui/${assets.css}` });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
  });

  it('answers 503 with instructions when the assets are not built', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'flowscope-web-empty-'));
    const a = Fastify();
    await a.register(dashboard, { root: join(empty, 'missing') });
    try {
      const res = await a.inject('/');
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain('npm run build');
      expect((await a.inject('/ui/app.js')).statusCode).toBe(404);
    } finally {
      await a.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('keeps its routes out of the OpenAPI document and coexists with API routes', async () => {
    const a = Fastify();
    await a.register(swagger, { openapi: { info: { title: 't', version: '1' } } });
    a.get('/api/v1/status', { schema: { querystring: { type: 'object', properties: {} } } }, async () => ({ node: 'x' }));
    await a.register(dashboard, { root: dir });
    await a.ready();
    const paths = Object.keys((a.swagger() as { paths: Record<string, unknown> }).paths);
    expect(paths).toEqual(['/api/v1/status']);
    expect((await a.inject('/api/v1/status')).json()).toEqual({ node: 'x' });
    expect((await a.inject('/')).statusCode).toBe(200);
    await a.close();
  });
});
