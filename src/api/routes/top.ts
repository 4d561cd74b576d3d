import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { formatDuration, parseDuration } from '../../flow/duration.js';
import { FilterError, hasKeyConditions, parseFlowFilter } from '../../flow/filter.js';
import type { TopQueryService } from '../queries.js';
import { BadRequestError } from '../errors.js';
import { errorSchema, topAnswerSchema, topQuerySchema, type TopQuerystring } from '../schemas.js';

/** Filtered queries computed at once by default; beyond, 503 (each is time-sliced, but they add up). */
export const DEFAULT_MAX_FILTERED_TOP = 4;

export function topRoute(app: FastifyInstance, top: TopQueryService, clock: () => number, maxFiltered = DEFAULT_MAX_FILTERED_TOP): void {
  let filteredInFlight = 0;
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/v1/top',
    {
      schema: {
        summary: 'Top talkers over a sliding window',
        tags: ['flows'],
        querystring: topQuerySchema(top.maxK),
        response: { 200: topAnswerSchema, 400: errorSchema, 503: errorSchema },
      },
    },
    async (request, reply) => {
      const { by, metric, window, k, ...params } = request.query as TopQuerystring;
      const windowMs = parseDuration(window);
      if (windowMs === undefined || windowMs <= 0) {
        throw new BadRequestError(`window: "${window}" is not a positive duration; use e.g. 30s, 5m, 1h`);
      }
      if (windowMs > top.horizonMs) {
        throw new BadRequestError(`window: ${window} is longer than the ${formatDuration(top.horizonMs)} this agent keeps; use at most ${formatDuration(top.horizonMs)}`);
      }
      const filter = parseFlowFilter(params, clock());
      if (filter.cgroup !== undefined || filter.workload !== undefined) {
        // The top-talkers windows keep no attribution yet (docs/api.md): refuse rather than ignore the filter.
        throw new FilterError('cgroup, workload: these filters apply to /api/v1/flows and /api/v1/flows/stream; /api/v1/top does not group or filter by cgroup yet');
      }
      const query = { by, metric, windowMs, k, filter };
      if (!hasKeyConditions(filter)) return { by, metric, window, windowSeconds: windowMs / 1000, ...(await top.top(query)) };
      // A filtered query tests every kept flow of the window (time-sliced by the service): a few at a time.
      if (filteredInFlight >= maxFiltered) {
        return reply
          .code(503)
          .header('retry-after', '1')
          .send({ error: 'busy', message: `${filteredInFlight} filtered top queries are being computed, the most this server runs at once; try again in a second` });
      }
      filteredInFlight++;
      try {
        return { by, metric, window, windowSeconds: windowMs / 1000, ...(await top.top(query)) };
      } finally {
        filteredInFlight--;
      }
    },
  );
}
