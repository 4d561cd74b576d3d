/**
 * The flowscope HTTP API as a fastify plugin. It serves what it is given
 * (ApiServices: flows, top, interfaces, status, metrics), so the agent and a
 * relay reading Redis serve the same API. server.ts is the only place that
 * listens; tests use createApp() with app.inject().
 */
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import type { ApiServices } from './queries.js';
import { installBearerAuth } from './auth.js';
import { BadRequestError, installErrorHandlers } from './errors.js';
import { agentInfoRoutes } from './routes/agent-info.js';
import { flowsRoute } from './routes/flows.js';
import { historyRoute } from './routes/history.js';
import { streamRoute } from './routes/stream.js';
import { topRoute } from './routes/top.js';
import { installHostCheck } from './hosts.js';
import { StreamRegistry } from './streams.js';
import dashboard from '../web/plugin.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** the live SSE streams (bounded by maxFollowers; all ended when the app closes) */
    flowscopeStreams: StreamRegistry;
  }
}

/** Default bound on concurrent /api/v1/flows/stream clients (--max-followers). */
export const DEFAULT_MAX_FOLLOWERS = 64;

export interface ApiOptions {
  services: ApiServices;
  version: string;
  /** bearer token required on every non-public route; none = open */
  token?: string;
  /** SSE heartbeat period; default 15 s */
  heartbeatMs?: number;
  /** clock for relative times (since=5m); default Date.now */
  clock?: () => number;
  /** most concurrent SSE followers; beyond, 503 (default 64) */
  maxFollowers?: number;
  /**
   * Host header names (without port) the app answers to; others get 421.
   * Set while listening on loopback (against DNS rebinding); undefined = any.
   */
  allowedHosts?: readonly string[];
  /** bytes queued for one SSE client beyond which records are skipped (default 4 MiB, less above 32 followers: 128 MiB in all) */
  streamBufferBytes?: number;
  /** an SSE client that reads nothing this long while its buffer is full is disconnected (default 60 s) */
  streamStallMs?: number;
  /** filtered /api/v1/top queries computed at once; beyond, 503 (default 4) */
  maxFilteredTop?: number;
  /** replayed records held for slow SSE clients, all together (default 100,000); beyond, replays are cut to their newest records */
  replayBudget?: number;
}

/**
 * Fastify options the API needs: Ajv must reject unknown querystring fields
 * (fastify's default strips them) and report every problem at once.
 */
export function apiServerOptions(extra: FastifyServerOptions = {}): FastifyServerOptions {
  return {
    ...extra,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true, allErrors: true },
    },
  };
}

/**
 * Ajv's coercion reads "0x10", "1e3" and "Infinity" as numbers; the API only
 * takes plain decimal integers, so check them before the schema does.
 */
async function strictIntegers(request: FastifyRequest): Promise<void> {
  const schema = request.routeOptions.schema?.querystring as { properties?: Record<string, { type?: string }> } | undefined;
  const query = request.query as Record<string, unknown> | undefined;
  if (!schema?.properties || !query) return;
  for (const [name, value] of Object.entries(query)) {
    if (schema.properties[name]?.type !== 'integer') continue;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (typeof v === 'string' && !/^-?\d{1,16}$/.test(v)) throw new BadRequestError(`${name} must be a decimal integer, got "${v.slice(0, 40)}"`);
    }
  }
}

async function flowscopeApi(app: FastifyInstance, opts: ApiOptions): Promise<void> {
  installErrorHandlers(app);
  // Before auth: a request for a foreign name is refused whatever it carries.
  if (opts.allowedHosts) installHostCheck(app, opts.allowedHosts);
  installBearerAuth(app, opts.token);
  const streams = new StreamRegistry(opts.maxFollowers ?? DEFAULT_MAX_FOLLOWERS, opts.replayBudget);
  app.decorate('flowscopeStreams', streams);
  // End every SSE stream before the server waits for its connections to close.
  app.addHook('preClose', async () => streams.closeAll());
  // The dashboard at / is static and uses only the API below; it stays open when a token is set.
  await app.register(dashboard);
  app.addHook('preValidation', strictIntegers);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'flowscope',
        version: opts.version,
        description: 'Exact eBPF network flow monitor: flow records, top talkers, per-interface accounting.',
      },
      components: opts.token ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : undefined,
      security: opts.token ? [{ bearer: [] }] : undefined,
    },
  });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } as object }, async () => app.swagger());
  const clock = opts.clock ?? Date.now;
  flowsRoute(app, opts.services.flows, clock);
  streamRoute(app, opts.services.flows, {
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    clock,
    registry: streams,
    maxBufferedBytes: opts.streamBufferBytes,
    stallMs: opts.streamStallMs,
  });
  topRoute(app, opts.services.top, clock, opts.maxFilteredTop);
  agentInfoRoutes(app, opts.services);
  historyRoute(app, opts.services.history, clock);
}

export const api = fp(flowscopeApi, { name: 'flowscope-api', fastify: '5.x' });

/** A fastify instance with the API registered (not listening). */
export async function createApp(opts: ApiOptions, server: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(apiServerOptions(server));
  await app.register(api, opts);
  await app.ready();
  return app;
}
