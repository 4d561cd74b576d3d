import type { FastifyInstance } from 'fastify';
import { parseFlowFilter, type FlowFilterParams } from '../../flow/filter.js';
import type { FlowQueryService } from '../queries.js';
import { errorSchema, flowPageSchema, flowsQuerySchema } from '../schemas.js';

type FlowsQuery = FlowFilterParams & { limit: number };

export function flowsRoute(app: FastifyInstance, flows: FlowQueryService, clock: () => number): void {
  app.get<{ Querystring: FlowsQuery }>(
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
      const { limit, ...params } = request.query;
      const filter = parseFlowFilter(params, clock());
      return flows.flowsFleet ? flows.flowsFleet(filter, limit) : flows.flows(filter, limit);
    },
  );
}
