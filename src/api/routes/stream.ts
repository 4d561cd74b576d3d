/**
 * GET /api/v1/flows/stream: Server-Sent Events, one FlowRecord per `data:`
 * event, following new records that match the filters (like `hubble observe
 * -f`). With `since` or `limit`, first replays matching stored records,
 * oldest first. A comment line is sent every heartbeat so proxies keep the
 * connection; a client that does not keep up has records skipped (and is
 * told so in a comment) rather than growing the agent's memory. Everything is
 * released when the client disconnects.
 *
 * Limits (docs/api.md): at most `maxFollowers` streams at once (503 beyond);
 * the replay (up to 10,000 records) is written in chunks, each after the
 * socket has drained the previous one, and live records that arrive meanwhile
 * wait in a bounded queue; the records replays hold (and those queues) count
 * against one budget for all streams, beyond which a replay is cut to its
 * newest records; at most `maxBufferedBytes` (plus one chunk) is ever queued
 * in the process for one client; a client that has read nothing for
 * `stallMs` while its buffer is full (or its replay waits) is disconnected,
 * so dead clients do not hold follower slots or replay memory. The registry
 * ends every stream when the server stops.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { parseFlowFilter } from '../../flow/filter.js';
import type { FlowQueryService } from '../queries.js';
import type { FlowRecord } from '../../flow/record.js';
import { Slicer } from '../../lib/slicer.js';
import { MAX_LIMIT, errorSchema, eventStreamSchema, streamQuerySchema } from '../schemas.js';
import type { LiveStream, StreamRegistry } from '../streams.js';

export interface StreamOptions {
  heartbeatMs: number;
  clock: () => number;
  registry: StreamRegistry;
  /** bytes queued for one client beyond which live records are skipped; default streamBufferDefault(max followers) */
  maxBufferedBytes?: number;
  /** a client whose buffer stays above the limit this long is disconnected; default 60 s */
  stallMs?: number;
}

/** Bytes queued for all SSE clients together, at most (a client's share is at most 4 MiB). */
export const TOTAL_STREAM_BUFFER = 128 * 1024 * 1024;

/** Bytes queued for one client beyond which records are skipped: 4 MiB, less when many may follow. */
export function streamBufferDefault(maxFollowers: number): number {
  return Math.max(64 * 1024, Math.min(4 * 1024 * 1024, Math.floor(TOTAL_STREAM_BUFFER / Math.max(1, maxFollowers))));
}
/** Default time a client may read nothing while its buffer is full. */
export const DEFAULT_STALL_MS = 60_000;
/** Bytes of serialized events per write. */
const CHUNK_BYTES = 64 * 1024;
/** Live records held back while the replay is written (they also count against the replay budget); beyond, skipped and counted. */
const MAX_QUEUED_RECORDS = 10_000;

const event = (r: FlowRecord): string => `data: ${JSON.stringify(r)}\n\n`;

class SseStream implements LiveStream {
  private skipped = 0;
  private replaying = false;
  private queued: FlowRecord[][] = [];
  private queuedCount = 0;
  private stalledSince: number | undefined;
  private noticePending = false;
  private closed = false;
  private readonly cleanups: (() => void)[] = [];

  constructor(
    private readonly raw: ServerResponse,
    private readonly registry: StreamRegistry,
    private readonly maxBuffered: number,
    private readonly stallMs: number,
    private readonly onClosed: () => void,
  ) {
    raw.on('close', () => this.release());
    raw.on('error', () => this.release());
  }

  get buffered(): number {
    return this.raw.writableLength;
  }

  get ended(): boolean {
    return this.closed;
  }

  /** Runs `fn` when the stream ends (unsubscribe, timers). */
  onEnd(fn: () => void): void {
    if (this.closed) fn();
    else this.cleanups.push(fn);
  }

  /**
   * Writes the replay (oldest first) under backpressure, then what arrived
   * meanwhile. The records held count against the registry's replay budget
   * (reserved by the caller) until they are written.
   */
  async replay(newestFirst: FlowRecord[]): Promise<void> {
    const registry = this.registry;
    this.replaying = true;
    const slicer = new Slicer();
    let i = newestFirst.length - 1;
    try {
      while (i >= 0 && !this.closed) {
        let chunk = '';
        const before = i;
        while (i >= 0 && chunk.length < CHUNK_BYTES) chunk += event(newestFirst[i--]);
        // Let go of what is written: a paused client must not pin the records it has been sent.
        newestFirst.length = i + 1;
        registry.releaseReplay(before - i);
        // (writableNeedDrain: a test double of the response may answer false and never drain)
        if (!this.raw.write(chunk) && this.raw.writableNeedDrain) {
          // waiting for the client: the heartbeat's stall check applies
          this.stalledSince ??= performance.now();
          await this.drained();
          this.stalledSince = undefined;
        } else await slicer.check();
      }
    } finally {
      registry.releaseReplay(i + 1);
      newestFirst.length = 0;
      this.replaying = false;
    }
    const queued = this.queued;
    registry.releaseReplay(this.queuedCount);
    this.queued = [];
    this.queuedCount = 0;
    for (const records of queued) this.push(records);
  }

  /** New records while following: written at once, or skipped when the client is behind. */
  push(records: FlowRecord[]): void {
    if (this.closed) return;
    if (this.replaying) {
      // Held until the replay is out: at most MAX_QUEUED_RECORDS here, and within the registry's replay budget.
      if (this.queuedCount + records.length <= MAX_QUEUED_RECORDS) {
        const granted = this.registry.reserveReplay(records.length);
        if (granted === records.length) {
          this.queued.push(records);
          this.queuedCount += records.length;
          return;
        }
        this.registry.releaseReplay(granted);
      }
      this.skipped += records.length;
      return;
    }
    let i = 0;
    while (i < records.length) {
      if (this.raw.writableLength > this.maxBuffered) {
        this.skipped += records.length - i;
        this.stalledSince ??= performance.now();
        // Tell the client as soon as it has caught up, not only with the next record.
        if (!this.noticePending) {
          this.noticePending = true;
          this.raw.once('drain', () => {
            this.noticePending = false;
            if (!this.closed && this.skipped > 0) this.raw.write(this.skipNotice());
          });
        }
        return;
      }
      let chunk = this.skipped > 0 ? this.skipNotice() : '';
      while (i < records.length && chunk.length < CHUNK_BYTES) chunk += event(records[i++]);
      this.raw.write(chunk);
    }
    this.stalledSince = undefined;
  }

  private skipNotice(): string {
    const text = `: skipped ${this.skipped} records, the client did not keep up\n\n`;
    this.skipped = 0;
    return text;
  }

  /** Every heartbeat: a comment when the line is idle; a client stalled too long is dropped. */
  heartbeat(): void {
    if (this.closed) return;
    if (this.replaying) {
      if (this.stalledSince !== undefined && performance.now() - this.stalledSince >= this.stallMs) this.destroy();
      return;
    }
    if (this.raw.writableLength > this.maxBuffered) {
      this.stalledSince ??= performance.now();
      if (performance.now() - this.stalledSince >= this.stallMs) this.destroy();
      return;
    }
    this.stalledSince = undefined;
    if (this.raw.writableLength === 0) this.raw.write(': heartbeat\n\n');
  }

  /** Ends the stream after what is queued has gone out (the `until` of the query is reached). */
  end(): void {
    if (this.closed) return;
    this.release();
    if (!this.raw.writableEnded) this.raw.end();
  }

  /** Ends the stream now (server stop): gracefully when nothing is queued, else at once (a client that does not read would hold it). */
  close(): void {
    if (this.closed) return;
    if (this.raw.writableLength > 0) return this.destroy();
    this.release();
    if (!this.raw.writableEnded) this.raw.end();
  }

  private destroy(): void {
    this.release();
    this.raw.destroy();
  }

  private release(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.releaseReplay(this.queuedCount);
    this.queued = [];
    this.queuedCount = 0;
    for (const fn of this.cleanups.splice(0)) fn();
    this.onClosed();
  }

  /** Resolves when the socket wants more, or the stream ended. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.raw.off('drain', done);
        this.raw.off('close', done);
        resolve();
      };
      this.raw.on('drain', done);
      this.raw.on('close', done);
    });
  }
}

export function streamRoute(app: FastifyInstance, flows: FlowQueryService, opts: StreamOptions): void {
  const { registry, clock, heartbeatMs } = opts;
  const maxBuffered = opts.maxBufferedBytes ?? streamBufferDefault(registry.max);
  const stallMs = opts.stallMs ?? DEFAULT_STALL_MS;
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/api/v1/flows/stream',
    {
      schema: {
        summary: 'Follow new flow records (Server-Sent Events)',
        tags: ['flows'],
        querystring: streamQuerySchema,
        response: { 200: eventStreamSchema, 400: errorSchema, 503: errorSchema },
      },
    },
    async (request, reply) => {
      const { limit, ...params } = request.query;
      const now = clock();
      const filter = parseFlowFilter(params, now);
      if (registry.stopping) {
        return reply.code(503).header('retry-after', '5').send({ error: 'stopping', message: 'the server is stopping; try again in a few seconds' });
      }
      if (registry.full) {
        return reply
          .code(503)
          .header('retry-after', '10')
          .send({
            error: 'too_many_followers',
            message: `${registry.size} clients already follow this stream, the most this server allows (--max-followers ${registry.max}); try again later, or use /api/v1/flows`,
          });
      }
      // The snapshot and the subscription below are taken in one tick: no record is missed or sent twice.
      const replay = limit !== undefined || filter.sinceMs !== undefined ? flows.flows(filter, limit ?? MAX_LIMIT).flows : [];
      // Replays waiting for slow clients hold their records: all together at most the registry's budget.
      const asked = replay.length;
      const granted = registry.reserveReplay(asked);
      if (granted < asked) replay.length = granted; // the newest first

      reply.hijack();
      const raw = reply.raw;
      // Idle is normal on a stream: the connection timeout does not apply (heartbeats and the stall check do).
      request.raw.socket?.setTimeout(0);
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      const stream = new SseStream(raw, registry, maxBuffered, stallMs, () => registry.delete(stream));
      registry.add(stream);
      raw.write(': flowscope stream\n\n');
      if (granted < asked) {
        raw.write(`: replay limited to the newest ${granted} of ${asked} records: other clients' replays hold the server's replay memory; /api/v1/flows has the rest\n\n`);
      }

      const heartbeat = setInterval(() => stream.heartbeat(), heartbeatMs);
      stream.onEnd(() => clearInterval(heartbeat));
      if (filter.untilMs !== undefined && filter.untilMs <= now) {
        // Replay only: end once it is written.
        await stream.replay(replay);
        stream.end();
        return;
      }
      const stop = flows.follow(filter, (records) => stream.push(records));
      stream.onEnd(stop);
      if (filter.untilMs !== undefined) {
        const until = setTimeout(() => stream.end(), filter.untilMs - now);
        stream.onEnd(() => clearTimeout(until));
      }
      if (replay.length > 0) await stream.replay(replay);
    },
  );
}
