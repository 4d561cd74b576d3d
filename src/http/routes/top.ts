import type { FastifyInstance } from 'fastify';
import { formatDuration, parseDuration } from '../../service/duration.js';
import { parseFlowFilter, type FlowFilterParams } from '../../service/filter.js';
import type { TopQueryService } from '../../service/queries.js';
import type { TopDimension, TopMetric } from '../../service/top-windows.js';
import { BadRequestError } from '../errors.js';
import { errorSchema, topAnswerSchema, topQuerySchema } from '../schemas.js';

type TopQuerystring = FlowFilterParams & { by: TopDimension; metric: TopMetric; window: string; k: number };

export function topRoute(app: FastifyInstance, top: TopQueryService, clock: () => number): void {
  app.get<{ Querystring: TopQuerystring }>(
    '/api/v1/top',
    {
      schema: {
        summary: 'Top talkers over a sliding window',
        tags: ['flows'],
        querystring: topQuerySchema(top.maxK),
        response: { 200: topAnswerSchema, 400: errorSchema },
      },
    },
    async (request) => {
      const { by, metric, window, k, ...params } = request.query;
      const windowMs = parseDuration(window);
      if (windowMs === undefined || windowMs <= 0) {
        throw new BadRequestError(`window: "${window}" is not a positive duration; use e.g. 30s, 5m, 1h`);
      }
      if (windowMs > top.horizonMs) {
        throw new BadRequestError(`window: ${window} is longer than the ${formatDuration(top.horizonMs)} this agent keeps; use at most ${formatDuration(top.horizonMs)}`);
      }
      const filter = parseFlowFilter(params, clock());
      const answer = top.top({ by, metric, windowMs, k, filter });
      return { by, metric, window, windowSeconds: windowMs / 1000, ...answer };
    },
  );
}
