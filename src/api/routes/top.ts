import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { formatDuration, parseDuration } from '../../flow/duration.js';
import { hasKeyConditions, parseFlowFilter } from '../../flow/filter.js';
import type { TopQuery } from '../../engine/top/top-windows.js';
import type { TopQueryService } from '../queries.js';
import { BadRequestError } from '../errors.js';
import { errorSchema, topAnswerSchema, topQuerySchema, topSeriesSchema, type TopQuerystring } from '../schemas.js';

/** Filtered queries computed at once by default; beyond, 503 (each is time-sliced, but they add up). */
export const DEFAULT_MAX_FILTERED_TOP = 4;

export function topRoute(app: FastifyInstance, top: TopQueryService, clock: () => number, maxFiltered = DEFAULT_MAX_FILTERED_TOP): void {
  let filteredInFlight = 0;

  /** The query of a request, checked beyond what the schema can say. */
  const queryOf = (q: TopQuerystring): TopQuery => {
    const { by, metric, window, k, ...params } = q;
    const windowMs = parseDuration(window);
    if (windowMs === undefined || windowMs <= 0) {
      throw new BadRequestError(`window: "${window}" is not a positive duration; use e.g. 30s, 5m, 1h`);
    }
    if (windowMs > top.horizonMs) {
      throw new BadRequestError(`window: ${window} is longer than the ${formatDuration(top.horizonMs)} this agent keeps; use at most ${formatDuration(top.horizonMs)}`);
    }
    return { by, metric, windowMs, k, filter: parseFlowFilter(params, clock()) };
  };

  /** Runs `answer`; a filtered query tests every kept flow of the window (time-sliced by the service): a few at a time. */
  const limited = async <T>(query: TopQuery, reply: FastifyReply, answer: () => Promise<T>): Promise<T | FastifyReply> => {
    if (!hasKeyConditions(query.filter)) return answer();
    if (filteredInFlight >= maxFiltered) {
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: 'busy', message: `${filteredInFlight} filtered top queries are being computed, the most this server runs at once; try again in a second` });
    }
    filteredInFlight++;
    try {
      return await answer();
    } finally {
      filteredInFlight--;
    }
  };

  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/v1/top',
    {
      schema: {
        summary: 'Top talkers over a sliding window that ends at the last poll',
        tags: ['flows'],
        querystring: topQuerySchema(top.maxK),
        response: { 200: topAnswerSchema, 400: errorSchema, 503: errorSchema },
      },
    },
    async (request, reply) => {
      const q = request.query as TopQuerystring;
      const query = queryOf(q);
      return limited(query, reply, async () => ({ by: q.by, metric: q.metric, window: q.window, windowSeconds: query.windowMs / 1000, ...(await top.top(query)) }));
    },
  );

  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/v1/top/series',
    {
      schema: {
        summary: "The window's top talkers bucket by bucket (for a chart over time)",
        tags: ['flows'],
        querystring: topQuerySchema(top.maxK),
        response: { 200: topSeriesSchema, 400: errorSchema, 501: errorSchema, 503: errorSchema },
      },
    },
    async (request, reply) => {
      const q = request.query as TopQuerystring;
      const query = queryOf(q);
      const series = top.series?.bind(top);
      if (!series) {
        return reply.code(501).send({ error: 'not_implemented', message: 'a relay that shares the fleet with peers (--partitions) answers /api/v1/top, not /api/v1/top/series; ask a relay without --partitions or an agent' });
      }
      return limited(query, reply, async () => {
        const s = await series(query);
        return { by: q.by, metric: q.metric, window: q.window, ...s, times: s.times.map((t) => new Date(t).toISOString()) };
      });
    },
  );
}
