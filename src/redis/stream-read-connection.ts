/**
 * The relay's hot path to Redis: XREADGROUP, XRANGE and XACK over sockets of
 * its own, written as RESP bytes and answered as raw replies (resp-reader.ts)
 * that the relay decodes in place. ioredis would make a string per field and
 * value, an array per entry and an argument list per XACK: measured, most of
 * the relay's time (bench/RESULTS.md, "fleet").
 *
 * One connection per Redis endpoint (the server; on a Cluster each master
 * that owns a stream's slot), opened on first use with the credentials, TLS,
 * database and client name of the relay's ioredis client. Commands on one
 * connection are pipelined: each call writes at once, replies come in order.
 * A MOVED or ASK reply (a resharding, a failover) makes the client read the
 * slot owners again and fails that one command with a RedirectError: the
 * relay reads that stream again at its next round, at the new owner (an
 * XREADGROUP answered with a redirect delivered nothing). A closed socket
 * fails its commands with a connection error; the next use opens a new one.
 */
import type { Socket } from 'node:net';
import type { RedisClient } from './connection.js';
import { CONNECT_TIMEOUT_MS, command, endpointOf, handshake, openSocket, refreshSlots, ReplyError, type Endpoint } from './resp-socket.js';
import { errorText, releaseReply, RespScanner, type EntryList, type RawReply } from './resp-reader.js';

/** A MOVED/ASK answer: the stream's slot is served elsewhere; read it again at the next round. */
export class RedirectError extends ReplyError {}

interface Waiting {
  resolve: (r: RawReply) => void;
  reject: (err: Error) => void;
}

/** One socket to one endpoint; pipelined commands, one raw reply each. */
class RespConnection {
  private socket: Socket | undefined;
  private readonly scanner = new RespScanner();
  private readonly waiting: Waiting[] = [];
  ready = false;
  closed = false;
  private corked = false;

  constructor(
    private readonly client: RedisClient,
    private readonly at: Endpoint,
    private readonly name: string,
  ) {}

  async open(): Promise<void> {
    const socket = await openSocket(this.at);
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (!this.scanner.push(chunk, (r) => this.onReply(r))) this.close(new Error('not a RESP reply: connection dropped'));
    });
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.close(new Error('Connection is closed.')));
    const timer = setTimeout(() => {
      if (!this.ready) socket.destroy();
    }, CONNECT_TIMEOUT_MS);
    timer.unref?.();
    try {
      const hello = handshake(this.client, this.at.options, this.name);
      const replies = await Promise.all(Array.from({ length: hello.commands }, (_, i) => this.send(i === 0 ? hello.bytes : undefined)));
      for (const r of replies) {
        const err = errorText(r);
        releaseReply(r);
        if (err !== undefined) throw new ReplyError(err);
      }
    } catch (err) {
      this.close(err as Error);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.ready = true;
  }

  /** Writes bytes (when given) and waits for the next reply in order. */
  send(bytes: Buffer | undefined): Promise<RawReply> {
    const socket = this.socket;
    if (!socket || this.closed) return Promise.reject(new Error('Connection is closed.'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!bytes) return;
      // commands issued in one tick (the reads ahead, an XACK and the next read) go out in one write
      if (!this.corked) {
        this.corked = true;
        socket.cork();
        process.nextTick(() => {
          this.corked = false;
          socket.uncork();
        });
      }
      socket.write(bytes);
    });
  }

  private onReply(r: RawReply): void {
    const w = this.waiting.shift();
    if (!w) {
      // a reply nobody waits for: out of step, start over
      this.close(new Error('unexpected reply: connection dropped'));
      return;
    }
    w.resolve(r);
  }

  close(err = new Error('Connection is closed.')): void {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    this.socket?.destroy();
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}

/**
 * Connections per endpoint; a stream's commands all go on one of them (by a
 * hash of its key), so they stay in order. Why more than one: Redis writes at
 * most 64 KiB to a client per turn of its event loop, and with a thousand
 * agents' connections writing, a turn takes milliseconds. Measured
 * (bench/fleet, 1,000 writers): one connection capped a relay at about
 * 9 MB/s of replies (some 20,000 entries/s), and a relay that joined and had
 * a partition's history to replay through it got nothing for 45 s.
 */
export const READ_CONNECTIONS_PER_ENDPOINT = 4;

/** XREADGROUP / XRANGE / XACK of the relay, on connections of its own. */
export class StreamReadConnections {
  private readonly connections = new Map<string, { connection: RespConnection; opening: Promise<void> }>();
  /** XACK commands sent */
  acks = 0;

  constructor(
    private readonly client: RedisClient,
    private readonly name: string,
    private readonly perEndpoint = READ_CONNECTIONS_PER_ENDPOINT,
  ) {}

  private async connectionFor(key: string): Promise<RespConnection> {
    const at = endpointOf(this.client, key);
    const id = `${at.host}:${at.port}#${laneOf(key, this.perEndpoint)}`;
    let c = this.connections.get(id);
    if (!c || c.connection.closed) {
      const connection = new RespConnection(this.client, at, this.name);
      c = { connection, opening: connection.open() };
      this.connections.set(id, c);
      c.opening.catch(() => {
        refreshSlots(this.client);
        if (this.connections.get(id)?.connection === connection) this.connections.delete(id);
      });
    }
    await c.opening;
    return c.connection;
  }

  /**
   * Sends a command for `key`; error replies throw ReplyError (RedirectError
   * for MOVED/ASK). The caller releases the reply it gets (releaseReply).
   */
  private async call(key: string, bytes: Buffer): Promise<RawReply> {
    const connection = await this.connectionFor(key);
    const reply = await connection.send(bytes);
    const err = errorText(reply);
    if (err === undefined) return reply;
    releaseReply(reply);
    if (/^(?:MOVED|ASK) /.test(err)) {
      refreshSlots(this.client);
      throw new RedirectError(err);
    }
    throw new ReplyError(err);
  }

  /** XREADGROUP GROUP group consumer COUNT count [NOACK] STREAMS key >: the reply, for EntryList.readGroupReply (then releaseReply). */
  xreadgroup(key: string, group: string, consumer: string, count: number, noAck = false): Promise<RawReply> {
    const args = ['XREADGROUP', 'GROUP', group, consumer, 'COUNT', String(count), ...(noAck ? ['NOACK'] : []), 'STREAMS', key, '>'];
    return this.call(key, Buffer.from(command(args), 'utf8'));
  }

  /** XRANGE key from to COUNT count: the reply, for EntryList.readRangeReply (then releaseReply). */
  xrange(key: string, from: string, to: string, count: number): Promise<RawReply> {
    return this.call(key, Buffer.from(command(['XRANGE', key, from, to, 'COUNT', String(count)]), 'utf8'));
  }

  /** The bytes of XACK key group with the IDs of entries [from, to) of a list (copied: the list may be reused), for ack(). */
  xackBytes(key: string, group: string, list: EntryList, from: number, to: number): Buffer {
    const head = Buffer.from(`*${3 + to - from}\r\n$4\r\nXACK\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n$${Buffer.byteLength(group)}\r\n${group}\r\n`, 'utf8');
    let size = head.length;
    for (let i = from; i < to; i++) size += list.idEnd[i] - list.idStart[i] + 8; // $NN\r\n...\r\n (IDs are < 100 bytes)
    const bytes = Buffer.allocUnsafe(size);
    let p = head.copy(bytes, 0);
    const src = list.buf;
    for (let i = from; i < to; i++) {
      const s = list.idStart[i];
      const n = list.idEnd[i] - s;
      bytes[p++] = 36; // $
      if (n >= 10) bytes[p++] = 48 + Math.floor(n / 10);
      bytes[p++] = 48 + (n % 10);
      bytes[p++] = 13;
      bytes[p++] = 10;
      src.copy(bytes, p, s, s + n);
      p += n;
      bytes[p++] = 13;
      bytes[p++] = 10;
    }
    return bytes.subarray(0, p);
  }

  /** Sends an XACK built by xackBytes (again, after a lost connection: acknowledging twice is harmless). */
  async ack(key: string, bytes: Buffer): Promise<void> {
    this.acks++;
    releaseReply(await this.call(key, bytes));
  }

  close(): void {
    for (const c of this.connections.values()) c.connection.close();
    this.connections.clear();
  }
}

/** Which of `lanes` connections carries a key's commands (FNV-1a of its UTF-16 code units). */
function laneOf(key: string, lanes: number): number {
  if (lanes <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}
