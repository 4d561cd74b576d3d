/** Health, readiness, status, interfaces and metrics: the agent's own state. */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../queries.js';
import { emptyQuerySchema, errorSchema, interfacesSchema, statusSchema } from '../schemas.js';

const publicRoute = { public: true };

export function agentInfoRoutes(app: FastifyInstance, services: ApiServices): void {
  app.get(
    '/healthz',
    {
      config: publicRoute,
      schema: {
        summary: 'Liveness: the process serves requests',
        tags: ['health'],
        querystring: emptyQuerySchema,
        response: { 200: { type: 'object', properties: { status: { type: 'string' } } }, 400: errorSchema },
      },
    },
    async () => ({ status: 'ok' }),
  );

  const readiness = { type: 'object', properties: { ready: { type: 'boolean' }, reason: { type: 'string' } } };
  app.get(
    '/readyz',
    {
      config: publicRoute,
      schema: {
        summary: 'Readiness: programs attached and at least one poll completed',
        tags: ['health'],
        querystring: emptyQuerySchema,
        response: { 200: readiness, 503: readiness, 400: errorSchema },
      },
    },
    async (_request, reply) => {
      const r = services.status.readiness();
      return reply.code(r.ready ? 200 : 503).send(r);
    },
  );

  app.get(
    '/api/v1/status',
    {
      schema: {
        summary: 'Agent status (like Hubble ServerStatus)',
        tags: ['agent'],
        querystring: emptyQuerySchema,
        response: { 200: statusSchema, 400: errorSchema },
      },
    },
    async () => services.status.status(),
  );

  app.get(
    '/api/v1/interfaces',
    {
      schema: {
        summary: 'Per-interface accounting: totals since attach and current rates',
        tags: ['agent'],
        querystring: emptyQuerySchema,
        response: { 200: interfacesSchema, 400: errorSchema },
      },
    },
    async () => services.interfaces.interfaces(),
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        tags: ['agent'],
        querystring: emptyQuerySchema,
        response: { 200: { type: 'string' }, 400: errorSchema },
      },
    },
    async (_request, reply) => {
      const text = await services.metrics.render();
      return reply.type(services.metrics.contentType).send(text);
    },
  );
}
