/**
 * GET /api/v1/flows/stream: Server-Sent Events, one FlowRecord per `data:`
 * event, following new records that match the filters (like `hubble observe
 * -f`). With `since` or `limit`, first replays matching stored records,
 * oldest first. A comment line is sent every heartbeat so proxies keep the
 * connection; a client that does not keep up has records skipped (and is
 * told so in a comment) rather than growing the agent's memory. Everything is
 * released when the client disconnects.
 */
import type { FastifyInstance } from 'fastify';
import { parseFlowFilter, type FlowFilterParams } from '../../service/filter.js';
import type { FlowQueryService } from '../../service/queries.js';
import type { FlowRecord } from '../../service/record.js';
import { MAX_LIMIT, errorSchema, streamQuerySchema } from '../schemas.js';

type StreamQuery = FlowFilterParams & { limit?: number };

/** Bytes queued on a slow client's socket beyond which records are skipped. */
const MAX_BUFFERED = 4 * 1024 * 1024;

export function streamRoute(app: FastifyInstance, flows: FlowQueryService, heartbeatMs: number, clock: () => number): void {
  app.get<{ Querystring: StreamQuery }>(
    '/api/v1/flows/stream',
    {
      schema: {
        summary: 'Follow new flow records (Server-Sent Events)',
        tags: ['flows'],
        querystring: streamQuerySchema,
        response: { 200: { type: 'string', description: 'text/event-stream: `data: FlowRecord` events' }, 400: errorSchema },
      },
    },
    async (request, reply) => {
      const { limit, ...params } = request.query;
      const now = clock();
      const filter = parseFlowFilter(params, now);
      const replay = limit !== undefined || filter.sinceMs !== undefined ? flows.flows(filter, limit ?? MAX_LIMIT).flows.reverse() : [];

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      let skipped = 0;
      const send = (records: FlowRecord[]): void => {
        if (raw.writableLength > MAX_BUFFERED) {
          skipped += records.length;
          return;
        }
        let chunk = '';
        if (skipped > 0) {
          chunk += `: skipped ${skipped} records, the client did not keep up\n\n`;
          skipped = 0;
        }
        for (const r of records) chunk += `data: ${JSON.stringify(r)}\n\n`;
        raw.write(chunk);
      };
      raw.write(': flowscope stream\n\n');
      if (replay.length > 0) send(replay);

      let stop = (): void => {};
      const timers: NodeJS.Timeout[] = [];
      const end = (): void => {
        stop();
        for (const t of timers) clearTimeout(t);
        if (!raw.writableEnded) raw.end();
      };
      if (filter.untilMs !== undefined && filter.untilMs <= now) {
        end();
        return;
      }
      stop = flows.follow(filter, send);
      const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), heartbeatMs);
      timers.push(heartbeat);
      if (filter.untilMs !== undefined) timers.push(setTimeout(end, filter.untilMs - now));
      request.raw.on('close', end);
      raw.on('error', end);
    },
  );
}
