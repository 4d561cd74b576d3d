/**
 * The web dashboard as a fastify plugin: serves the page at `/` and its
 * assets at `/ui/<file>`. The page reads only the public HTTP API
 * (/api/v1/...), so the same plugin serves the agent and the relay.
 *
 *   await app.register(dashboard);                       // assets from dist/web/public
 *   await app.register(dashboard, { root: '/some/dir' }); // or from elsewhere
 *
 * The assets are built by `node src/web/build.mjs` (npm run build:web). They
 * are read once at registration and kept in memory with their precompressed
 * (brotli, gzip) variants: a handful of files, ~130 kB in all. If they are not
 * built, `/` answers 503 with a page that says how to build them, and the API
 * is unaffected.
 *
 * The routes take no input other than the asset name, which is checked by a
 * schema against the files that exist (flat directory, no path separators).
 * They are public: the page holds no data, and fetches the data with the
 * token the user gives it (Authorization: Bearer), so an API that requires a
 * token must leave `/` and `/ui/*` open (see `config.public` below).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
// for the schema's `hide` (keeps these routes out of the OpenAPI document)
import type {} from '@fastify/swagger';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** route serves no data and needs no token (the dashboard's page and assets) */
    public?: boolean;
  }
}

export interface DashboardOptions {
  /** directory holding the built assets (index.html, app-*.js, app-style-*.css); default: <package>/dist/web/public */
  root?: string;
}

interface Asset {
  type: string;
  etag: string;
  body: Buffer;
  br?: Buffer;
  gz?: Buffer;
  /** content-hashed names never change: cache for a year */
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Content-Security-Policy of the page: everything from this origin, nothing inline. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The package root: the nearest ancestor of this file with a package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export function defaultAssetDir(): string {
  return join(packageRoot(), 'dist', 'web', 'public');
}

const ASSET_NAME = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.gz') || name.endsWith('.br')) continue;
    if (!new RegExp(ASSET_NAME).test(name)) continue;
    const file = join(dir, name);
    if (!statSync(file).isFile()) continue;
    const ext = name.slice(name.lastIndexOf('.'));
    const body = readFileSync(file);
    const variant = (suffix: string) => (existsSync(file + suffix) ? readFileSync(file + suffix) : undefined);
    assets.set(name, {
      type: TYPES[ext] ?? 'application/octet-stream',
      etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 22)}"`,
      body,
      br: variant('.br'),
      gz: variant('.gz'),
      immutable: /-[A-Z0-9]{8,}\.(js|css)$/.test(name),
    });
  }
  return assets;
}

function accepts(req: FastifyRequest, coding: string): boolean {
  const h = req.headers['accept-encoding'];
  if (typeof h !== 'string') return false;
  return h.split(',').some((part) => {
    const [name, ...params] = part.trim().split(';');
    if (name.trim().toLowerCase() !== coding) return false;
    const q = params.find((p) => p.trim().startsWith('q='));
    return !q || Number(q.trim().slice(2)) > 0;
  });
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset): FastifyReply {
  reply
    .header('content-type', a.type)
    .header('etag', a.etag)
    .header('vary', 'accept-encoding')
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  if (a.br && accepts(req, 'br')) return reply.header('content-encoding', 'br').send(a.br);
  if (a.gz && accepts(req, 'gzip')) return reply.header('content-encoding', 'gzip').send(a.gz);
  return reply.send(a.body);
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>flowscope</title>
<body style="font:15px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>flowscope</h1><p>The dashboard's assets are not built. Run <code>npm run build</code>
(or <code>node src/web/build.mjs</code>) in the flowscope directory and restart.</p>
<p>The HTTP API is available at <a href="api/v1/status">api/v1/status</a>.</p>`;

async function dashboard(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const dir = resolve(opts.root ?? defaultAssetDir());
  const assets = loadAssets(dir);
  const index = assets.get('index.html');
  if (!index) app.log.warn({ dir }, 'dashboard assets not found: / will answer 503 until they are built (npm run build)');

  const routeConfig = { public: true };

  app.get('/', { schema: { hide: true }, config: routeConfig }, async (req, reply) => {
    reply
      .header('content-security-policy', DASHBOARD_CSP)
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY');
    if (!index) {
      return reply.code(503).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    }
    return send(req, reply, index);
  });

  app.get<{ Params: { file: string } }>(
    '/ui/:file',
    {
      config: routeConfig,
      schema: {
        hide: true,
        params: {
          type: 'object',
          properties: { file: { type: 'string', pattern: ASSET_NAME } },
          required: ['file'],
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const a = assets.get(req.params.file);
      // unknown: the app's own 404 (same body as every other unknown path)
      if (!a || req.params.file === 'index.html') return reply.callNotFound();
      return send(req, reply, a);
    },
  );
}

export default fp(dashboard, { name: 'flowscope-dashboard', fastify: '5.x' });
