/**
 * The Redis streams sink: every exported record becomes one entry of the
 * node's stream `flowscope:{NODE}:flows` (contract, "Redis streams").
 *
 * write() only encodes the records into a bounded queue and returns: the
 * poll loop never waits for Redis. A single writer drains the queue in
 * order, as pipelines of up to `batchSize` XADDs on one connection (a few
 * on the wire at once, their replies settled in order):
 * while Redis is down or slow the queue fills up, and when it is back the
 * backlog is written in order. Only when the queue is full are records
 * refused; they are counted as dropped (status, metrics) and logged.
 *
 * Delivery is exact, not "at least once": entries carry IDs chosen here
 * (stream-id.ts) and kept across retries, so an entry whose reply was lost
 * with the connection and is sent again is refused by Redis as a duplicate
 * and counted as delivered. A pipeline is only removed from the queue up to
 * its first entry that failed for another reason; that entry gets a new ID
 * and is retried.
 */
import type { Pipeline } from 'ioredis';
import type { InterfaceReport } from '../service/interface-accounting.js';
import type { RecordBatch } from '../service/record-batch.js';
import type { RecordSink, SinkStatus } from '../service/sink.js';
import { describeError, isReady, type RedisClient } from './connection.js';
import { DEFAULT_BATCH_SIZE } from './defaults.js';
import { EntryEncoder } from './entry-encoding.js';
import { EntryQueue } from './entry-queue.js';
import { flowsKey, interfacesKey, NODES_KEY } from './keys.js';
import { ID_TOO_SMALL, parseStreamId, StreamIdClock } from './stream-id.js';
import { PreEncodedXadd, xaddPrefix, xaddText } from './xadd-command.js';

/** The part of a pino logger the sink uses. */
export interface SinkLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RedisSinkOptions {
  node: string;
  client: RedisClient;
  /** the URL without its password, for messages */
  url: string;
  /** approximate MAXLEN of the stream */
  maxLen: number;
  /** records buffered at most while Redis is down or slow */
  bufferRecords: number;
  /** XADDs per pipeline */
  batchSize?: number;
  /** pipelines on the wire at once (default 4) */
  maxInFlight?: number;
  /** per-interface counters to publish at every flush */
  interfaces?: () => InterfaceReport[];
  log?: SinkLog;
  /** longest wait for the backlog at close() */
  closeTimeoutMs?: number;
  clock?: () => number;
}

const DROP_LOG_EVERY_MS = 10_000;

export class RedisStreamSink implements RecordSink {
  readonly name = 'redis';
  private readonly queue: EntryQueue;
  private readonly encoder: EntryEncoder;
  private readonly ids = new StreamIdClock();
  private readonly key: string;
  private readonly prefix: string;
  private readonly batchSize: number;
  private readonly maxInFlight: number;
  private readonly clock: () => number;
  private exported = 0;
  private dropped = 0;
  private droppedSinceLog = 0;
  private lastDropLogMs = 0;
  private lastError: string | undefined;
  /** node registered and ID floor read on the current connection */
  private registered = false;
  private draining: Promise<void> | undefined;
  private closed = false;
  private wasConnected = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RedisSinkOptions) {
    this.queue = new EntryQueue(options.bufferRecords);
    this.encoder = new EntryEncoder(options.node);
    this.key = flowsKey(options.node);
    this.prefix = xaddPrefix(this.key, options.maxLen);
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.maxInFlight = options.maxInFlight ?? 4;
    this.clock = options.clock ?? Date.now;
    const client = options.client;
    client.on('ready', this.onReady);
    client.on('error', this.onError);
    client.on('close', this.onClose);
  }

  private readonly onReady = (): void => {
    this.registered = false;
    if (!this.wasConnected || this.lastError) this.options.log?.info({ redis: this.options.url, pending: this.queue.length }, 'redis sink connected');
    this.wasConnected = true;
    this.lastError = undefined;
    void this.flush();
  };

  private readonly onError = (err: Error): void => {
    const message = `redis ${this.options.url}: ${describeError(err)}`;
    if (message !== this.lastError) this.options.log?.warn({ err: describeError(err), pending: this.queue.length }, `redis sink: ${message}; buffering records`);
    this.lastError = message;
  };

  private readonly onClose = (): void => {
    this.registered = false;
    if (!this.lastError) this.lastError = `redis ${this.options.url}: connection closed`;
  };

  write(batch: RecordBatch): void {
    if (this.closed) {
      this.countDropped(batch.count);
      return;
    }
    const endMs = batch.endMs;
    let refused = 0;
    this.encoder.encode(batch, (fields, pairs) => {
      if (!this.queue.push(fields, pairs, endMs)) refused++;
    });
    if (refused > 0) this.countDropped(refused);
  }

  private countDropped(n: number): void {
    this.dropped += n;
    this.droppedSinceLog += n;
    const now = this.clock();
    if (now - this.lastDropLogMs >= DROP_LOG_EVERY_MS) {
      this.options.log?.warn(
        { dropped: this.droppedSinceLog, droppedTotal: this.dropped, buffer: this.queue.capacity, lastError: this.lastError },
        'redis sink: buffer full, records dropped',
      );
      this.lastDropLogMs = now;
      this.droppedSinceLog = 0;
    }
  }

  /** Starts writing the backlog if it is not being written; resolves when this drain stops. */
  flush(): Promise<void> {
    if (!this.draining) {
      this.draining = this.drain().finally(() => {
        this.draining = undefined;
      });
    }
    return this.draining;
  }

  private async drain(): Promise<void> {
    const client = this.options.client;
    if (!isReady(client)) return;
    try {
      if (!this.registered) await this.register();
      if (!(await this.writeBacklog())) this.retryLater();
      if (this.options.interfaces && isReady(client)) await this.publishInterfaces();
    } catch (err) {
      this.lastError = `redis ${this.options.url}: ${describeError(err as Error)}`;
      this.retryLater();
    }
  }

  /** After a failure with the connection still up, tries again shortly (no new poll needed). */
  private retryLater(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flush();
    }, 500);
    this.retryTimer.unref?.();
  }

  /** Registers the node and reads the stream's last ID (the floor for new IDs). */
  private async register(): Promise<void> {
    const client = this.options.client;
    await client.sadd(NODES_KEY, this.options.node);
    try {
      const info = (await client.xinfo('STREAM', this.key)) as unknown[];
      const at = info.indexOf('last-generated-id');
      const last = at >= 0 ? parseStreamId(String(info[at + 1])) : undefined;
      if (last) this.ids.raiseFloor(last.ms, last.seq);
    } catch (err) {
      if (!/no such key/i.test((err as Error).message)) throw err;
    }
    this.registered = true;
  }

  /**
   * Writes the queue from its head as pipelines of batchSize, keeping up to
   * maxInFlight of them on the wire so that Redis works on one while this
   * process encodes the next and reads the replies of the previous. Replies
   * are settled in order (one connection keeps the order); false when a
   * pipeline failed (what followed it stays queued, with its IDs, and is
   * recognised on the retry).
   */
  private async writeBacklog(): Promise<boolean> {
    const inFlight: { n: number; replies: Promise<[Error | null, unknown][] | Error> }[] = [];
    let sent = 0;
    for (;;) {
      while (inFlight.length < this.maxInFlight && sent < this.queue.length && isReady(this.options.client)) {
        const n = Math.min(this.batchSize, this.queue.length - sent);
        inFlight.push({ n, replies: this.sendRange(sent, n) });
        sent += n;
      }
      const oldest = inFlight.shift();
      if (!oldest) return true;
      const before = this.queue.length;
      if (this.settle(await oldest.replies)) {
        sent -= oldest.n;
        continue;
      }
      // Later pipelines: nothing is removed, but entries Redis refused need fresh IDs too.
      let offset = oldest.n - (before - this.queue.length);
      for (const p of inFlight) {
        const replies = await p.replies;
        if (!(replies instanceof Error)) {
          replies.forEach(([err], i) => {
            if (err && !ID_TOO_SMALL.test(err.message) && !isConnectionError(err)) this.queue.clearId(offset + i);
          });
        }
        offset += p.n;
      }
      return false;
    }
  }

  /** Sends entries [from, from + n) of the queue as one pipeline; resolves with its replies or the error. */
  private sendRange(from: number, n: number): Promise<[Error | null, unknown][] | Error> {
    // pipeline() is typed as the chainable commands; the object is a Pipeline, which takes Command objects.
    const pipeline = this.options.client.pipeline() as unknown as Pipeline;
    for (let i = from; i < from + n; i++) {
      if (!this.queue.hasId(i)) {
        const id = this.ids.next(this.queue.exportMsAt(i));
        this.queue.setId(i, id.ms, id.seq);
      }
      const { ms, seq } = this.queue.idAt(i);
      pipeline.sendCommand(new PreEncodedXadd(this.key, xaddText(this.prefix, `${ms}-${seq}`, this.queue.fieldsAt(i), this.queue.pairsAt(i))));
    }
    return pipeline.exec().then(
      (results) => results ?? new Error('pipeline not executed'),
      (err: Error) => err,
    );
  }

  /**
   * Settles the replies of the pipeline that starts at the queue's head:
   * removes what was delivered, up to the first failure; false on a failure.
   */
  private settle(results: [Error | null, unknown][] | Error): boolean {
    if (results instanceof Error) {
      // The connection went away mid-pipeline: keep everything, IDs included (see above).
      this.lastError = `redis ${this.options.url}: ${describeError(results)}`;
      return false;
    }
    let delivered = 0;
    let failure: Error | undefined;
    for (let i = 0; i < results.length; i++) {
      const err = results[i][0];
      if (!err || ID_TOO_SMALL.test(err.message)) {
        if (!failure) delivered++;
        continue;
      }
      if (isConnectionError(err)) {
        failure ??= err;
        continue;
      }
      // Refused for another reason (OOM, wrong type...): not stored, so it needs a fresh,
      // larger ID; entries after it that did get in are recognised as duplicates on the retry.
      failure ??= err;
      this.queue.clearId(i);
    }
    this.queue.shift(delivered);
    this.exported += delivered;
    if (failure) {
      this.lastError = `redis ${this.options.url}: ${failure.message.split('\n')[0]}`;
      return false;
    }
    if (this.lastError && isReady(this.options.client)) this.lastError = undefined;
    return true;
  }

  private async publishInterfaces(): Promise<void> {
    const reports = this.options.interfaces!();
    if (reports.length === 0) return;
    const at = new Date(this.clock()).toISOString();
    const fields: Record<string, string> = {};
    for (const r of reports) fields[r.iface] = JSON.stringify({ ...r, node: this.options.node, at });
    await this.options.client.hset(interfacesKey(this.options.node), fields);
  }

  /** Writes what it can of the backlog (at most closeTimeoutMs), then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const deadline = this.clock() + (this.options.closeTimeoutMs ?? 5000);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    while (this.queue.length > 0 && isReady(this.options.client) && this.clock() < deadline) {
      const before = this.queue.length;
      await this.flush();
      if (this.queue.length >= before) await new Promise((r) => setTimeout(r, 100));
    }
    if (this.draining) await this.draining;
    if (this.queue.length > 0) {
      this.options.log?.warn({ dropped: this.queue.length, lastError: this.lastError }, 'redis sink: closing with records not written');
      this.dropped += this.queue.length;
      this.queue.shift(this.queue.length);
    }
    const client = this.options.client;
    client.off('ready', this.onReady);
    client.off('error', this.onError);
    client.off('close', this.onClose);
    client.disconnect();
  }

  status(): SinkStatus & { connected: boolean; buffer: number } {
    const s: SinkStatus & { connected: boolean; buffer: number } = {
      name: this.name,
      exported: this.exported,
      dropped: this.dropped,
      pending: this.queue.length,
      connected: isReady(this.options.client),
      buffer: this.queue.capacity,
    };
    if (this.lastError) s.lastError = this.lastError;
    return s;
  }
}

function isConnectionError(err: Error): boolean {
  return /Connection is closed|Stream isn't writeable|ECONNRESET|EPIPE|ETIMEDOUT|max retries per request/i.test(err.message);
}
