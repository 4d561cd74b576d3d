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
      if (flows.flowsFleet) return flows.flowsFleet(filter, limit);
      return flows.flowsSliced ? flows.flowsSliced(filter, limit) : flows.flows(filter, limit);
    },
  );
}
