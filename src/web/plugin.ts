/**
 * The web dashboard as a fastify plugin: serves the page at `/` and its
 * assets at `/ui/<file>`. The page reads only the public HTTP API
 * (/api/v1/...), so the same plugin serves the agent and the relay.
 *
 *   await app.register(dashboard);                       // assets from dist/web/public
 *   await app.register(dashboard, { root: '/some/dir' }); // or from elsewhere
 *
 * The assets are built by `node src/web/build.mjs` (npm run build:web), with
 * their precompressed (brotli, gzip) variants beside them; @fastify/static
 * sends them (`preCompressed`: the variant the client accepts, Vary,
 * ETag/If-None-Match, HEAD). The directory is listed once at registration:
 * only the files found then are served. If they are not built, `/` answers
 * 503 with a page that says how to build them, and the API is unaffected.
 *
 * The routes take no input other than the asset name, which is checked by a
 * schema against the files that exist (flat directory, no path separators).
 * They are public: the page holds no data, and fetches the data with the
 * token the user gives it (Authorization: Bearer), so an API that requires a
 * token must leave `/` and `/ui/*` open (see `config.public` below).
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
// for the schema's `hide` (keeps these routes out of the OpenAPI document)
import type {} from '@fastify/swagger';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
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

/** Content types of what build.mjs writes (the text ones with their charset). */
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

/** The servable files of the asset directory (not the .br/.gz variants, which are sent in their place). */
function listAssets(dir: string): Set<string> {
  const names = new Set<string>();
  if (!existsSync(dir)) return names;
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.gz') || name.endsWith('.br')) continue;
    if (!new RegExp(ASSET_NAME).test(name)) continue;
    if (statSync(join(dir, name)).isFile()) names.add(name);
  }
  return names;
}

function contentType(path: string): string {
  const name = basename(path).replace(/\.(br|gz)$/, '');
  return TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream';
}

/** Headers of every asset; content-hashed names never change: cached for a year. */
function assetHeaders(reply: FastifyReply, path: string): void {
  const name = basename(path).replace(/\.(br|gz)$/, '');
  reply
    .header('content-type', contentType(name))
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', /-[A-Z0-9]{8,}\.(js|css)$/.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache');
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>flowscope</title>
<body style="font:15px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>flowscope</h1><p>The dashboard's assets are not built. Run <code>npm run build</code>
(or <code>node src/web/build.mjs</code>) in the flowscope directory and restart.</p>
<p>The HTTP API is available at <a href="api/v1/status">api/v1/status</a>.</p>`;

/** The dashboard's routes, in their own scope: sendFile and the onSend hook stay out of the API's. */
async function dashboardRoutes(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  const dir = resolve(opts.root ?? defaultAssetDir());
  const assets = listAssets(dir);
  const built = assets.has('index.html');
  if (!built) app.log.warn({ dir }, 'dashboard assets not found: / will answer 503 until they are built (npm run build)');
  else {
    await app.register(fastifyStatic, {
      root: dir,
      serve: false, // the two routes below, with their own input check
      preCompressed: true,
      cacheControl: false, // assetHeaders sets it
      lastModified: false,
      setHeaders: assetHeaders,
    });
    // @fastify/static names a compressed variant's type from its own table (application/javascript): the same type for every variant
    app.addHook('onSend', async (req, reply, payload) => {
      if (reply.getHeader('content-encoding')) reply.header('content-type', contentType(req.url === '/' ? 'index.html' : req.url));
      return payload;
    });
  }

  const routeConfig = { public: true };

  app.get('/', { schema: { hide: true }, config: routeConfig }, async (_req, reply) => {
    reply
      .header('content-security-policy', DASHBOARD_CSP)
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY');
    if (!built) {
      return reply.code(503).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    }
    return reply.sendFile('index.html');
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
      // unknown: the app's own 404 (same body as every other unknown path)
      if (!assets.has(req.params.file) || req.params.file === 'index.html') return reply.callNotFound();
      return reply.sendFile(req.params.file);
    },
  );
}

async function dashboard(app: FastifyInstance, opts: DashboardOptions): Promise<void> {
  await app.register(dashboardRoutes, opts);
}

export default fp(dashboard, { name: 'flowscope-dashboard', fastify: '5.x' });
