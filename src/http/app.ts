/**
 * The flowscope HTTP API as a fastify plugin. It serves what it is given
 * (ApiServices: flows, top, interfaces, status, metrics), so the agent and a
 * relay reading Redis serve the same API. server.ts is the only place that
 * listens; tests use createApp() with app.inject().
 */
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import type { ApiServices } from '../service/queries.js';
import { installBearerAuth } from './auth.js';
import { BadRequestError, installErrorHandlers } from './errors.js';
import { agentInfoRoutes } from './routes/agent-info.js';
import { flowsRoute } from './routes/flows.js';
import { streamRoute } from './routes/stream.js';
import { topRoute } from './routes/top.js';
import dashboard from '../web/plugin.js';

export interface ApiOptions {
  services: ApiServices;
  version: string;
  /** bearer token required on every non-public route; none = open */
  token?: string;
  /** SSE heartbeat period; default 15 s */
  heartbeatMs?: number;
  /** clock for relative times (since=5m); default Date.now */
  clock?: () => number;
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
  installBearerAuth(app, opts.token);
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
  streamRoute(app, opts.services.flows, opts.heartbeatMs ?? 15_000, clock);
  topRoute(app, opts.services.top, clock);
  agentInfoRoutes(app, opts.services);
}

export const api = fp(flowscopeApi, { name: 'flowscope-api', fastify: '5.x' });

/** A fastify instance with the API registered (not listening). */
export async function createApp(opts: ApiOptions, server: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(apiServerOptions(server));
  await app.register(api, opts);
  await app.ready();
  return app;
}
