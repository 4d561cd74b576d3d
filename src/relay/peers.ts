/**
 * Scale-out, part 3: a query to any relay answers for the whole fleet.
 *
 * Each relay of a scaled-out fleet serves its own partitions to its peers on
 * a small internal HTTP endpoint (`--peer-listen`; bearer token = the relay's
 * --token when set): POST /peer/v1/flows, /peer/v1/top, /peer/v1/interfaces
 * with the parsed query as JSON. A relay answering /api/v1/flows, /top or
 * /interfaces asks every live peer (membership.ts) at once, merges their
 * answers with its own (partitions.ts: mergeFlowPages, mergeTopAnswers), and
 * says how complete the answer is: a peer that does not answer within
 * PEER_TIMEOUT_MS is left out and the top answer is then marked not exact
 * (the fleet total lacks its partitions until their next owner has them).
 *
 * `/api/v1/flows/stream` follows the whole fleet too: the relay follows its
 * own partitions and opens POST /peer/v1/follow on every live peer, which
 * streams the records its partitions append, as NDJSON lines of record
 * arrays, until the client goes. Each relay streams the partitions it owns
 * when the client connects: a partition that moves during the stream is not
 * followed at its new owner (the client reconnects to see it), and a peer
 * that dies ends its part of the stream.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FlowQueryService, InterfaceQueryService, TopQueryService } from '../api/queries.js';
import type { FlowFilter } from '../flow/filter.js';
import type { FlowRecord } from '../flow/record.js';
import type { FlowPage } from '../engine/record-store.js';
import type { TopAnswer, TopQuery } from '../engine/top/top-windows.js';
import type { NodeInterfaceReport } from './fleet-view.js';
import type { Membership } from './membership.js';
import { mergeFlowPages, mergeTopAnswers, type PartitionAnswer, type PartitionedFleet } from './partitions.js';

const PEER_TIMEOUT_MS = 3000;
const MAX_BODY = 1 << 20;
/** bytes a follow stream may have queued for a slow peer before records are skipped (as the SSE route does for slow clients) */
const MAX_FOLLOW_BACKLOG = 4 << 20;

/** JSON with Uint8Arrays (address prefixes in filters) kept. */
function encode(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? { $u8: [...v] } : v));
}
function decode<T>(text: string): T {
  return JSON.parse(text, (_k, v: unknown) => (v && typeof v === 'object' && Array.isArray((v as { $u8?: unknown }).$u8) ? Uint8Array.from((v as { $u8: number[] }).$u8) : v)) as T;
}

/** Serves this relay's partitions to its peers. */
export class PeerServer {
  private server: Server | undefined;

  constructor(
    private readonly fleet: PartitionedFleet,
    private readonly token?: string,
  ) {}

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const a = server.address() as { address: string; port: number };
    return { host: a.address, port: a.port };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (code: number, body: unknown): void => {
      const text = encode(body);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) return send(401, { error: 'unauthorized' });
      if (req.method !== 'POST') return send(405, { error: 'method' });
      let size = 0;
      const chunks: Buffer[] = [];
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > MAX_BODY) return send(413, { error: 'too large' });
        chunks.push(c as Buffer);
      }
      const body = decode<{ filter: FlowFilter; limit: number; query: TopQuery }>(Buffer.concat(chunks).toString('utf8') || '{}');
      switch (req.url) {
        case '/peer/v1/flows':
          return send(200, { parts: this.fleet.flowsByPartition(body.filter, Math.min(Math.max(1, Number(body.limit) || 1), 100_000)) });
        case '/peer/v1/top':
          return send(200, { parts: await this.fleet.topByPartition(body.query) });
        case '/peer/v1/interfaces':
          return send(200, { parts: this.fleet.interfacesByPartition() });
        case '/peer/v1/follow':
          return this.follow(body.filter, res);
        default:
          return send(404, { error: 'not found' });
      }
    } catch (err) {
      send(400, { error: 'bad request', message: (err as Error).message.split('\n')[0] });
    }
  }

  /** Streams the records this relay's partitions append, as NDJSON lines, until the asking relay goes. */
  private follow(filter: FlowFilter, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.flushHeaders();
    const stop = this.fleet.follow(filter, (records) => {
      // a peer that does not read is not waited for: records are skipped, as for a slow SSE client
      if (res.writableLength > MAX_FOLLOW_BACKLOG) return;
      res.write(`${JSON.stringify(records)}\n`);
    });
    this.followers.add(res);
    const end = (): void => {
      stop();
      this.followers.delete(res);
    };
    // (a request's own 'close' comes once its body is read: the response's is the connection's)
    res.once('close', end);
  }

  private readonly followers = new Set<ServerResponse>();

  async close(): Promise<void> {
    for (const res of this.followers) res.destroy();
    this.followers.clear();
    const s = this.server;
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** POSTs a peer query; undefined when the peer does not answer in time or fails. */
function ask<T>(url: string, path: string, body: unknown, token?: string): Promise<T | undefined> {
  return new Promise((resolve) => {
    const text = encode(body);
    const req = httpRequest(
      new URL(path, url),
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        timeout: PEER_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return resolve(undefined);
          try {
            resolve(decode<T>(Buffer.concat(chunks).toString('utf8')));
          } catch {
            resolve(undefined);
          }
        });
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
    req.end(text);
  });
}

/** Follows a peer's records (POST /peer/v1/follow); returns the function that stops following. */
function followPeer(url: string, filter: FlowFilter, token: string | undefined, onRecords: (records: FlowRecord[]) => void): () => void {
  const text = encode({ filter });
  const req = httpRequest(new URL('/peer/v1/follow', url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });
  req.on('response', (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      return;
    }
    let rest = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        if (line === '') continue;
        try {
          onRecords(JSON.parse(line) as FlowRecord[]);
        } catch {
          /* a line cut by a peer that went away */
        }
      }
    });
    res.on('error', () => undefined);
  });
  req.on('error', () => undefined); // a peer that is gone: its part of the stream ends
  req.end(text);
  return () => req.destroy();
}

/** How complete a fanned-out answer is. */
export interface FanoutInfo {
  /** peers asked */
  peers: number;
  /** peers that did not answer */
  missing: string[];
  /** partitions no relay answered for, or only a relay still replaying it */
  incomplete: number[];
}

/**
 * The API's query services of a scaled-out relay. Every relay answers per
 * partition; for each partition exactly one answer is used: the one of the
 * partition's owner in this relay's view of the live set when that owner has
 * read its history, else one of a relay that still holds it and has (the
 * previous owner, until it notices the move), else whatever there is. So a
 * partition is never counted twice while it moves, and is missing only when
 * nobody holds it.
 */
export class FleetFanout implements FlowQueryService, TopQueryService, InterfaceQueryService {
  lastFanout: FanoutInfo = { peers: 0, missing: [], incomplete: [] };

  constructor(
    private readonly fleet: PartitionedFleet,
    private readonly membership: Membership,
    private readonly token?: string,
  ) {}

  get horizonMs(): number {
    return this.fleet.horizonMs;
  }
  get bucketMs(): number {
    return this.fleet.bucketMs;
  }
  get maxK(): number {
    return this.fleet.maxK;
  }

  private peers(): [string, string][] {
    return [...this.membership.urls].filter(([id]) => id !== this.membership.id && this.membership.live.includes(id));
  }

  /** Own and peers' per-partition answers; one per partition chosen as above. */
  private async gather<T>(path: string, body: unknown, own: PartitionAnswer<T>[]): Promise<T[]> {
    const peers = this.peers();
    const replies = await Promise.all(peers.map(([, url]) => ask<{ parts: PartitionAnswer<T>[] }>(url, path, body, this.token)));
    const byPartition = new Map<number, { relay: string; part: PartitionAnswer<T> }[]>();
    const add = (relay: string, parts: PartitionAnswer<T>[]): void => {
      for (const part of parts) {
        const list = byPartition.get(part.partition) ?? [];
        list.push({ relay, part });
        byPartition.set(part.partition, list);
      }
    };
    add(this.membership.id, own);
    replies.forEach((r, i) => r && Array.isArray(r.parts) && add(peers[i][0], r.parts));
    const chosen: T[] = [];
    const incomplete: number[] = [];
    for (let p = 0; p < this.membership.partitions; p++) {
      const list = byPartition.get(p) ?? [];
      const owner = this.membership.owner(p);
      const pick = list.find((c) => c.relay === owner && c.part.caughtUp) ?? list.find((c) => c.part.caughtUp) ?? list.find((c) => c.relay === owner) ?? list[0];
      if (!pick || !pick.part.caughtUp) incomplete.push(p);
      if (pick) chosen.push(pick.part.answer);
    }
    this.lastFanout = { peers: peers.length, missing: peers.filter((_, i) => replies[i] === undefined).map(([id]) => id), incomplete };
    return chosen;
  }

  /** This relay's partitions only (the SSE replay needs an answer in the same tick). */
  flows(filter: FlowFilter, limit: number): FlowPage {
    return this.fleet.flows(filter, limit);
  }

  /** The whole fleet, newest first. */
  async flowsFleet(filter: FlowFilter, limit: number): Promise<FlowPage> {
    const pages = await this.gather('/peer/v1/flows', { filter, limit }, this.fleet.flowsByPartition(filter, limit));
    return mergeFlowPages(pages.length ? pages : [{ flows: [], total: 0, truncated: false }], limit);
  }

  /** The fleet's new records: this relay's partitions and every live peer's (see the top of this file). */
  follow(filter: FlowFilter, onRecords: (records: FlowRecord[]) => void): () => void {
    const stops = [this.fleet.follow(filter, onRecords), ...this.peers().map(([, url]) => followPeer(url, filter, this.token, onRecords))];
    return () => stops.forEach((stop) => stop());
  }

  async top(q: TopQuery): Promise<TopAnswer> {
    // Every partition is asked for as many entries as a query may have: a key spread over partitions is then summed whole unless a list was cut.
    const wide = { ...q, k: this.maxK };
    const answers = await this.gather('/peer/v1/top', { query: wide }, await this.fleet.topByPartition(wide));
    const merged = mergeTopAnswers(answers, q, this.maxK);
    if (this.lastFanout.incomplete.length > 0) merged.exact = false;
    return merged;
  }

  async interfaces(): Promise<NodeInterfaceReport[]> {
    const lists = await this.gather('/peer/v1/interfaces', {}, this.fleet.interfacesByPartition());
    return lists.flat().sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.ifindex - b.ifindex));
  }
}
