import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { parseFlowFilter } from '../../flow/filter.js';
import type { FlowQueryService } from '../queries.js';
import { errorSchema, flowPageSchema, flowsQuerySchema, type FlowsQuery } from '../schemas.js';

export function flowsRoute(app: FastifyInstance, flows: FlowQueryService, clock: () => number): void {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/v1/flows',
    {
      schema: {
        summary: 'Recent flow records, newest first',
        tags: ['flows'],
        querystring: flowsQuerySchema,
        response: { 200: flowPageSchema, 400: errorSchema },
      },
    },
    async (request) => {
      const { limit, ...params } = request.query as FlowsQuery;
      const filter = parseFlowFilter(params, clock());
      return flows.flowsFleet ? flows.flowsFleet(filter, limit) : flows.flows(filter, limit);
    },
  );
}
