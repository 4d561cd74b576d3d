/**
 * The sink's hot path: a connection of its own for the XADD pipelines.
 *
 * ioredis makes a Command object, a promise and a parsed reply per XADD and
 * concatenates strings for every pipeline; at the sink's rates that is most
 * of the cost. Here a pipeline is the RESP bytes of its XADDs, written by the
 * sink into one reused Buffer and handed to the socket in one write; the
 * replies are parsed minimally (an XADD answers a bulk string: the ID, or an
 * error line) into one array per pipeline: null where the entry was stored,
 * the error where not.
 *
 * Everything else (registration, the writer key, the ID-clash reads,
 * interfaces) stays on the ioredis client the sink is given; this connection
 * takes its endpoint and credentials from it: the server of a single-server
 * client, or for a Cluster the master that owns the stream key's slot (by
 * the hash tag, all of a node's keys are in one slot). A MOVED or ASK reply
 * (a resharding, a failover) points the next connection at the new owner:
 * the entries it answered were not stored and are sent again with their IDs.
 *
 * One socket keeps order: replies come in the order of the pipelines. A
 * closed socket fails the pipelines still on the wire with a connection
 * error (their entries keep their IDs: what Redis did store is recognised on
 * the retry, see stream-sink.ts).
 */
import type { Socket } from 'node:net';
import type { RedisClient } from './connection.js';
import { CONNECT_TIMEOUT_MS, endpointOf, handshake, openSocket, refreshSlots, ReplyError } from './resp-socket.js';

export { keySlot, ReplyError } from './resp-socket.js';

/** Replies of one pipeline: null where the command succeeded, the error where not; or an Error when the connection failed. */
export type PipelineReplies = (Error | null)[] | Error;

/** What the sink needs of the hot-path connection (a test may wrap it). */
export interface XaddTransport {
  readonly connected: boolean;
  /** opens the connection (endpoint, AUTH, SELECT, CLIENT SETNAME) if it is not open */
  connect(): Promise<void>;
  /** writes bytes [0, length) of buf: `commands` commands; resolves with their replies. buf may be reused once this resolves */
  send(buf: Buffer, length: number, commands: number): Promise<PipelineReplies>;
  close(): void;
}

interface Waiting {
  commands: number;
  replies: (Error | null)[];
  resolve: (r: PipelineReplies) => void;
}

export class XaddConnection implements XaddTransport {
  private socket: Socket | undefined;
  private opening: Promise<void> | undefined;
  private ready = false;
  private readonly waiting: Waiting[] = [];
  private rest: Buffer | undefined;
  /** where a MOVED/ASK reply said the key's slot now is */
  private redirect: { host: string; port: number } | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly key: string,
    private readonly name: string,
  ) {}

  get connected(): boolean {
    return this.ready;
  }

  connect(): Promise<void> {
    if (this.ready) return Promise.resolve();
    this.opening ??= this.open()
      .catch((err: Error) => {
        // The slot's master may have failed over: the next attempt asks the cluster again.
        this.redirect = undefined;
        refreshSlots(this.client);
        throw err;
      })
      .finally(() => {
        this.opening = undefined;
      });
    return this.opening;
  }

  private async open(): Promise<void> {
    const at = endpointOf(this.client, this.key, this.redirect);
    const socket = await openSocket(at);
    this.socket = socket;
    this.rest = undefined;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.onClose(socket));
    // Handshake through the same reply parser; a server that does not answer it in time is given up.
    const handshakeTimer = setTimeout(() => {
      if (!this.ready) socket.destroy();
    }, CONNECT_TIMEOUT_MS);
    handshakeTimer.unref?.();
    const hello = handshake(this.client, at.options, this.name);
    const replies = await this.write(hello.bytes, hello.commands);
    const failed = replies instanceof Error ? replies : replies.find((r) => r !== null);
    clearTimeout(handshakeTimer);
    if (failed) {
      socket.destroy();
      throw failed;
    }
    this.redirect = undefined;
    this.ready = true;
  }

  send(buf: Buffer, length: number, commands: number): Promise<PipelineReplies> {
    if (!this.ready) return Promise.resolve(new Error('Connection is closed.'));
    return this.write(buf.subarray(0, length), commands).then((r) => {
      if (!(r instanceof Error)) this.checkRedirects(r);
      return r;
    });
  }

  private write(bytes: Buffer, commands: number): Promise<PipelineReplies> {
    const socket = this.socket;
    if (!socket || socket.destroyed) return Promise.resolve(new Error('Connection is closed.'));
    return new Promise((resolve) => {
      this.waiting.push({ commands, replies: [], resolve });
      socket.write(bytes);
    });
  }

  /** A MOVED/ASK reply: the stream's slot is served elsewhere now; the next connection goes there. */
  private checkRedirects(replies: (Error | null)[]): void {
    for (const r of replies) {
      const m = r && /^(?:MOVED|ASK) \d+ (.+):(\d+)$/.exec(r.message);
      if (m) {
        this.redirect = { host: m[1], port: Number(m[2]) };
        refreshSlots(this.client);
        this.close();
        return;
      }
    }
  }

  private reply(err: Error | null): void {
    const w = this.waiting[0];
    if (!w) {
      // a reply nobody waits for: the stream is out of step, start over
      this.close();
      return;
    }
    w.replies.push(err);
    if (w.replies.length === w.commands) {
      this.waiting.shift();
      w.resolve(w.replies);
    }
  }

  /** Parses whole replies out of the received bytes; keeps a partial one for the next chunk. */
  private onData(chunk: Buffer): void {
    let b = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let pos = 0;
    const n = b.length;
    while (pos < n) {
      const lineEnd = b.indexOf(13, pos + 1);
      if (lineEnd < 0 || lineEnd + 1 >= n) break;
      const type = b[pos];
      if (type === 36) {
        // $<len>\r\n<bytes>\r\n (or $-1\r\n)
        let len = 0;
        let neg = false;
        for (let k = pos + 1; k < lineEnd; k++) {
          if (b[k] === 45) neg = true;
          else len = len * 10 + b[k] - 48;
        }
        const end = neg ? lineEnd + 2 : lineEnd + 2 + len + 2;
        if (end > n) break;
        pos = end;
        this.reply(null);
      } else if (type === 43 || type === 58) {
        // +OK, :<n>
        pos = lineEnd + 2;
        this.reply(null);
      } else if (type === 45) {
        const message = b.toString('utf8', pos + 1, lineEnd);
        pos = lineEnd + 2;
        this.reply(new ReplyError(message));
      } else {
        // arrays and RESP3 types are never answers to what is sent here
        this.close();
        return;
      }
    }
    if (pos < n) this.rest = Buffer.from(b.subarray(pos));
    b = undefined as unknown as Buffer;
  }

  private onClose(socket: Socket): void {
    if (socket !== this.socket) return;
    this.ready = false;
    this.socket = undefined;
    this.rest = undefined;
    const waiting = this.waiting.splice(0);
    for (const w of waiting) w.resolve(new Error('Connection is closed.'));
  }

  close(): void {
    const socket = this.socket;
    if (!socket) return;
    socket.destroy();
    this.onClose(socket);
  }
}
