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
 *
 * Two writers on one stream (two agents with one node name: cloned VMs, a
 * copied config) break that: an ID clash may then be another writer's entry,
 * and the refused entry is not stored at all. Every entry carries this
 * process's writer id (field `writer`, random per sink); on a clash the sink
 * reads the entries at the refused IDs: its own writer id means its own
 * earlier attempt (delivered); anything else is another writer's, and the
 * entry gets a fresh ID above the stream's top and is sent again (counted as
 * exported only once stored). Clashes need overlapping IDs, which two writers
 * with agreeing clocks rarely produce, so the sink also keeps its writer id in
 * `flowscope:{NODE}:writer` and swaps it in at every flush (GETSET): another
 * id found there means another writer wrote in between. Either way the sink
 * reports a duplicate node (status, metrics, a warning at most every 10 s).
 */
import { randomBytes } from 'node:crypto';
import type { InterfaceReport } from '../engine/interface-accounting.js';
import type { RecordBatch } from '../flow/record-batch.js';
import type { RecordSink, SinkStatus } from '../engine/sink.js';
import { describeError, isReady, type RedisClient } from './connection.js';
import { DEFAULT_BATCH_SIZE } from './defaults.js';
import { bulk, EntryEncoder } from './entry-encoding.js';
import { EntryQueue } from './entry-queue.js';
import { EntryCoalescer } from './coalescer.js';
import { flowsKey, interfacesKey, NODES_KEY, writerKey } from './keys.js';
import { ID_TOO_SMALL, parseStreamId, StreamIdClock } from './stream-id.js';
import { XaddConnection, type PipelineReplies, type XaddTransport } from './xadd-connection.js';

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
  /** this process's writer id (default: 16 random hex digits) */
  writerId?: string;
  clock?: () => number;
  /**
   * one entry per flow per this interval (coalescer.ts: the exports' counts
   * summed per flow); undefined: one entry per flow and export
   */
  exportIntervalMs?: number;
  /** wraps the hot-path connection (tests: lost replies) */
  wrapTransport?: (t: XaddTransport) => XaddTransport;
}

const DROP_LOG_EVERY_MS = 10_000;
/** a duplicate node is reported this long after the last sign of another writer */
const DUPLICATE_HOLD_MS = 60_000;

/** The Redis sink's status: the common fields, the connection, and signs of another writer on the stream. */
export interface RedisSinkStatus extends SinkStatus {
  connected: boolean;
  buffer: number;
  /** this process's writer id (field `writer` of its entries) */
  writer: string;
  /** another writer used this node's stream in the last minute (two agents with one --node) */
  duplicateNode: boolean;
  /** the other writer's id, when known */
  otherWriter?: string;
  /** entries refused because another writer had taken their ID (each sent again with a fresh ID) */
  idClashes: number;
  /** flushes that found another writer's id in flowscope:{NODE}:writer */
  otherWriterSeen: number;
  /** --redis-export-interval: one entry per flow per this interval (absent: one per export) */
  exportIntervalMs?: number;
  /** flows summed in the open interval, not yet entries */
  intervalFlows?: number;
}

export class RedisStreamSink implements RecordSink {
  readonly name = 'redis';
  private readonly queue: EntryQueue;
  private readonly encoder: EntryEncoder;
  private readonly coalescer: EntryCoalescer | undefined;
  private readonly ids = new StreamIdClock();
  readonly writer: string;
  private readonly key: string;
  private readonly writerKey: string;
  /** RESP of `XADD key MAXLEN ~ N` (without the array header and the ID) */
  private readonly prefix: Buffer;
  /** the XADD connection (xadd-connection.ts): the pipelines' bytes go there */
  private readonly xadd: XaddTransport;
  /** reusable pipeline buffers not on the wire */
  private readonly buffers: Buffer[] = [];
  private readonly batchSize: number;
  private readonly maxInFlight: number;
  private readonly clock: () => number;
  private exported = 0;
  private dropped = 0;
  private droppedSinceLog = 0;
  private lastDropLogMs = 0;
  private lastError: string | undefined;
  private idClashes = 0;
  private otherWriterSeen = 0;
  private otherWriter: string | undefined;
  private lastOtherWriterMs = -Infinity;
  private lastDuplicateLogMs = -Infinity;
  /** node registered and ID floor read on the current connection */
  private registered = false;
  private draining: Promise<void> | undefined;
  private drainAgain = false;
  /** queue indexes (of the pipeline being settled) refused as too small, absent, below this writer's own top entry */
  private readonly ownNotStored = new Set<number>();
  private closed = false;
  private wasConnected = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RedisSinkOptions) {
    this.queue = new EntryQueue(options.bufferRecords);
    this.writer = options.writerId ?? randomBytes(8).toString('hex');
    this.encoder = new EntryEncoder(options.node, this.writer);
    if (options.exportIntervalMs !== undefined) this.coalescer = new EntryCoalescer(options.exportIntervalMs, options.node);
    this.key = flowsKey(options.node);
    this.writerKey = writerKey(options.node);
    this.prefix = Buffer.from(`$4\r\nXADD\r\n${bulk(this.key)}$6\r\nMAXLEN\r\n$1\r\n~\r\n${bulk(String(options.maxLen))}`, 'utf8');
    const xadd = new XaddConnection(options.client, this.key, `flowscope-xadd-${options.node}`);
    this.xadd = options.wrapTransport ? options.wrapTransport(xadd) : xadd;
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
    if (this.coalescer) this.coalescer.add(batch, this.enqueue);
    else this.enqueue(batch);
  }

  /** Encodes records into the queue; what does not fit is dropped and counted. */
  private readonly enqueue = (batch: RecordBatch): void => {
    const refused = this.encoder.encode(batch, this.queue);
    if (refused > 0) this.countDropped(refused);
  };

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
    if (!this.closed) this.coalescer?.closeIfDue(this.clock(), this.enqueue);
    if (this.draining) {
      // this drain may be past writing: what was queued since gets a drain of its own right after
      this.drainAgain = true;
      return this.draining;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.drainAgain) {
        this.drainAgain = false;
        if (this.queue.length > 0 && !this.closed) void this.flush();
      }
    });
    return this.draining;
  }

  private async drain(): Promise<void> {
    const client = this.options.client;
    if (!isReady(client)) return;
    try {
      if (!this.registered) await this.register();
      await this.xadd.connect();
      if (!(await this.writeBacklog())) this.retryLater();
      if (isReady(client)) await this.checkWriter();
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
    // Taking the writer key over is no sign of another writer: it may be this node's previous process.
    await client.set(this.writerKey, this.writer);
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
    const inFlight: { n: number; replies: Promise<PipelineReplies> }[] = [];
    let sent = 0;
    for (;;) {
      while (inFlight.length < this.maxInFlight && sent < this.queue.length && this.xadd.connected) {
        const n = Math.min(this.batchSize, this.queue.length - sent);
        inFlight.push({ n, replies: this.sendRange(sent, n) });
        sent += n;
      }
      const oldest = inFlight.shift();
      if (!oldest) return true;
      const before = this.queue.length;
      if (await this.settle(await oldest.replies)) {
        sent -= oldest.n;
        continue;
      }
      // Later pipelines: nothing is removed, but entries Redis refused need fresh IDs too.
      let offset = oldest.n - (before - this.queue.length);
      for (const p of inFlight) {
        const replies = await p.replies;
        if (!(replies instanceof Error)) {
          replies.forEach((err, i) => {
            if (err && !ID_TOO_SMALL.test(err.message) && !isConnectionError(err)) this.queue.clearId(offset + i);
          });
        }
        offset += p.n;
      }
      return false;
    }
  }

  /**
   * Sends entries [from, from + n) of the queue as one pipeline: their XADDs'
   * RESP written into one buffer (IDs chosen on the first send, kept after),
   * one socket write; resolves with the replies or the connection's error.
   */
  private sendRange(from: number, n: number): Promise<PipelineReplies> {
    const queue = this.queue;
    const prefix = this.prefix;
    let need = 0;
    for (let i = from; i < from + n; i++) need += queue.sizeAt(i) + prefix.length + 64;
    let buf = this.buffers.pop();
    if (!buf || buf.length < need) buf = Buffer.allocUnsafe(Math.max(need, 64 * 1024));
    let p = 0;
    for (let i = from; i < from + n; i++) {
      let ms = queue.idMsAt(i);
      let seq = queue.idSeqAt(i);
      if (ms === 0) {
        const id = this.ids.next(queue.exportMsAt(i));
        ms = id.ms;
        seq = id.seq;
        queue.setId(i, ms, seq);
      }
      // *<args>\r\n XADD key MAXLEN ~ N $<len>\r\n<ms>-<seq>\r\n <fields>
      p += buf.write(`*${6 + 2 * queue.pairsAt(i)}\r\n`, p, 'latin1');
      p += prefix.copy(buf, p);
      const id = `${ms}-${seq}`;
      p += buf.write(`$${id.length}\r\n${id}\r\n`, p, 'latin1');
      p = queue.copyFields(i, buf, p);
    }
    const out = buf;
    return this.xadd.send(out, p, n).then((replies) => {
      if (this.buffers.length < this.maxInFlight + 1) this.buffers.push(out);
      return replies;
    });
  }

  /**
   * Settles the replies of the pipeline that starts at the queue's head:
   * removes what was delivered, up to the first failure; false on a failure.
   */
  private async settle(results: PipelineReplies): Promise<boolean> {
    if (results instanceof Error) {
      // The connection went away mid-pipeline: keep everything, IDs included (see above).
      this.lastError = `redis ${this.options.url}: ${describeError(results)}`;
      return false;
    }
    this.ownNotStored.clear();
    const clashes = results.some((err) => err && ID_TOO_SMALL.test(err.message)) ? await this.clashOwners(results) : undefined;
    if (clashes instanceof Error) {
      this.lastError = `redis ${this.options.url}: ${describeError(clashes)}`;
      return false;
    }
    let delivered = 0;
    let failure: Error | undefined;
    let foreign = 0;
    for (let i = 0; i < results.length; i++) {
      const err = results[i];
      if (!err || (ID_TOO_SMALL.test(err.message) && clashes?.get(i) === true)) {
        if (!failure) delivered++;
        continue;
      }
      if (ID_TOO_SMALL.test(err.message) && this.ownNotStored.has(i)) {
        // Not stored, below this writer's own later entry: a fresh ID, no sign of another writer.
        failure ??= new Error(`entry ${this.idText(i)} not stored (below this writer's later entries); sent again`);
        this.queue.clearId(i);
        continue;
      }
      if (ID_TOO_SMALL.test(err.message)) {
        // Another writer holds this ID (or the stream's top is past it): not stored. A fresh ID above the top.
        foreign++;
        failure ??= new Error(`stream ${this.key} has entries of another writer (ID ${this.idText(i)} taken)`);
        this.queue.clearId(i);
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
    if (foreign > 0) {
      this.idClashes += foreign;
      this.registered = false; // read the stream's top again: new IDs go above the other writer's
      this.sawOtherWriter(undefined, `${foreign} entries refused: their IDs were taken by another writer`);
    }
    if (failure) {
      this.lastError = `redis ${this.options.url}: ${failure.message.split('\n')[0]}`;
      return false;
    }
    if (this.lastError && isReady(this.options.client)) this.lastError = undefined;
    return true;
  }

  private idText(i: number): string {
    const { ms, seq } = this.queue.idAt(i);
    return `${ms}-${seq}`;
  }

  /**
   * For the entries of a settled pipeline (at the head of the queue) that
   * Redis refused as "equal or smaller than the top item": true where the
   * stream holds this writer's entry at that ID (an earlier attempt of this
   * sink that did arrive), false where not (another writer's entry, or none).
   */
  private async clashOwners(results: (Error | null)[]): Promise<Map<number, boolean> | Error> {
    const at: number[] = [];
    const pipeline = this.options.client.pipeline();
    for (let i = 0; i < results.length; i++) {
      const err = results[i];
      if (!err || !ID_TOO_SMALL.test(err.message)) continue;
      at.push(i);
      const id = this.idText(i);
      pipeline.xrange(this.key, id, id);
    }
    pipeline.xrange(this.key, '-', '+', 'COUNT', 1);
    pipeline.xinfo('STREAM', this.key); // its last-entry (XINFO STREAM: in the agent's ACL, unlike XREVRANGE)
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipeline.exec();
    } catch (err) {
      return err as Error;
    }
    if (!replies) return new Error('pipeline not executed');
    const firstReply = replies[at.length];
    const first = firstReply[0] ? undefined : ((firstReply[1] as [string, string[]][])[0]?.[0] ?? undefined);
    // The stream's top entry: when it is this writer's own, an entry refused below it that is not in the
    // stream is one of its own that was never stored while a later one was (an entry refused for another
    // reason, e.g. MOVED in a failover, got a fresh ID above entries that kept theirs): sent again, no clash.
    const lastReply = replies[at.length + 1];
    const info = lastReply[0] ? undefined : (lastReply[1] as unknown[]);
    const at2 = info ? info.indexOf('last-entry') : -1;
    const top = at2 >= 0 ? (info![at2 + 1] as [string, string[]] | null) : undefined;
    let topWriter: string | undefined;
    if (top) for (let j = 0; j + 1 < top[1].length; j += 2) if (top[1][j] === 'writer') topWriter = top[1][j + 1];
    const owners = new Map<number, boolean>();
    this.ownNotStored.clear();
    at.forEach((i, k) => {
      const [err, value] = replies![k];
      if (err) return; // unknown: treated as not ours, sent again with a fresh ID
      const found = value as [string, string[]][];
      if (found.length === 0) {
        // Not in the stream: never stored, unless MAXLEN trimmed it away since (then it was ours: nothing else sits below the top).
        const { ms, seq } = this.queue.idAt(i);
        const f = first ? parseStreamId(first) : undefined;
        owners.set(i, f !== undefined && (ms < f.ms || (ms === f.ms && seq < f.seq)));
        if (!owners.get(i) && topWriter === this.writer) this.ownNotStored.add(i);
        return;
      }
      const fields = found[0][1];
      let writer: string | undefined;
      for (let j = 0; j + 1 < fields.length; j += 2) if (fields[j] === 'writer') writer = fields[j + 1];
      owners.set(i, writer === this.writer);
      if (writer !== undefined && writer !== this.writer) this.otherWriter = writer;
    });
    return owners;
  }

  /** Swaps this writer's id into flowscope:{NODE}:writer; another id there means another writer since the last flush. */
  private async checkWriter(): Promise<void> {
    const previous = await this.options.client.getset(this.writerKey, this.writer);
    if (previous !== null && previous !== this.writer) {
      this.otherWriterSeen++;
      this.sawOtherWriter(previous, `another writer (id ${previous.slice(0, 40)}) took ${this.writerKey} since the last flush`);
    }
  }

  private sawOtherWriter(writer: string | undefined, why: string): void {
    const now = this.clock();
    if (writer !== undefined) this.otherWriter = writer;
    this.lastOtherWriterMs = now;
    if (now - this.lastDuplicateLogMs >= DROP_LOG_EVERY_MS) {
      this.options.log?.warn(
        { node: this.options.node, stream: this.key, writer: this.writer, otherWriter: this.otherWriter, idClashes: this.idClashes, otherWriterSeen: this.otherWriterSeen },
        `redis sink: another process writes the stream of node "${this.options.node}": two agents with one node name? Give each its own --node (${why})`,
      );
      this.lastDuplicateLogMs = now;
    }
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
    this.coalescer?.close(this.enqueue); // the open interval is written too
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
    this.xadd.close();
    const client = this.options.client;
    client.off('ready', this.onReady);
    client.off('error', this.onError);
    client.off('close', this.onClose);
    client.disconnect();
  }

  status(): RedisSinkStatus {
    const duplicateNode = this.clock() - this.lastOtherWriterMs < DUPLICATE_HOLD_MS;
    const s: RedisSinkStatus = {
      name: this.name,
      exported: this.exported,
      dropped: this.dropped,
      // Flows summed in the open export interval are held too: until they are written, an agent
      // killed now loses them, so the drains behind them are not confirmed (operations.md).
      pending: this.queue.length + (this.coalescer?.flows ?? 0),
      connected: isReady(this.options.client),
      buffer: this.queue.capacity,
      writer: this.writer,
      duplicateNode,
      idClashes: this.idClashes,
      otherWriterSeen: this.otherWriterSeen,
    };
    if (duplicateNode && this.otherWriter !== undefined) s.otherWriter = this.otherWriter;
    if (this.coalescer) {
      s.exportIntervalMs = this.coalescer.intervalMs;
      s.intervalFlows = this.coalescer.flows;
    }
    if (this.lastError) s.lastError = this.lastError;
    return s;
  }
}

function isConnectionError(err: Error): boolean {
  return /Connection is closed|Stream isn't writeable|ECONNRESET|EPIPE|ETIMEDOUT|max retries per request/i.test(err.message);
}
