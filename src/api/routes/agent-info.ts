/** Health, readiness, status, interfaces and metrics: the agent's own state. */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ApiServices } from '../queries.js';
import { emptyQuerySchema, errorSchema, healthSchema, interfacesSchema, metricsTextSchema, readinessSchema, statusSchema } from '../schemas.js';

const publicRoute = { public: true };

export function agentInfoRoutes(untyped: FastifyInstance, services: ApiServices): void {
  const app = untyped.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/healthz',
    {
      config: publicRoute,
      schema: {
        summary: 'Liveness: the process serves requests',
        tags: ['health'],
        querystring: emptyQuerySchema,
        response: { 200: healthSchema, 400: errorSchema },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: publicRoute,
      schema: {
        summary: 'Readiness: programs attached and at least one poll completed',
        tags: ['health'],
        querystring: emptyQuerySchema,
        response: { 200: readinessSchema, 503: readinessSchema, 400: errorSchema },
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
        response: { 200: metricsTextSchema, 400: errorSchema },
      },
    },
    async (_request, reply) => {
      const text = await services.metrics.render();
      return reply.type(services.metrics.contentType).send(text);
    },
  );
}
