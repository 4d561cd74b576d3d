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
 * `/api/v1/flows/stream` follows this relay's own partitions only.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FlowQueryService, InterfaceQueryService, TopQueryService } from '../api/queries.js';
import type { FlowFilter } from '../flow/filter.js';
import type { FlowRecord } from '../flow/record.js';
import type { FlowPage } from '../engine/record-store.js';
import type { TopAnswer, TopQuery } from '../engine/top/top-windows.js';
import type { NodeInterfaceReport } from './fleet-view.js';
import type { Membership } from './membership.js';
import { mergeFlowPages, mergeTopAnswers, type PartitionedFleet } from './partitions.js';

const PEER_TIMEOUT_MS = 3000;
const MAX_BODY = 1 << 20;

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
      const owned = this.fleet.owned;
      switch (req.url) {
        case '/peer/v1/flows':
          return send(200, { owned, page: this.fleet.flows(body.filter, Math.min(Math.max(1, Number(body.limit) || 1), 100_000)) });
        case '/peer/v1/top':
          return send(200, { owned, answer: await this.fleet.top(body.query) });
        case '/peer/v1/interfaces':
          return send(200, { owned, interfaces: this.fleet.interfaces() });
        default:
          return send(404, { error: 'not found' });
      }
    } catch (err) {
      send(400, { error: 'bad request', message: (err as Error).message.split('\n')[0] });
    }
  }

  async close(): Promise<void> {
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

/** How complete a fanned-out answer is. */
export interface FanoutInfo {
  /** peers asked */
  peers: number;
  /** peers that did not answer */
  missing: string[];
}

/** The API's query services of a scaled-out relay: its own partitions plus every live peer's. */
export class FleetFanout implements FlowQueryService, TopQueryService, InterfaceQueryService {
  lastFanout: FanoutInfo = { peers: 0, missing: [] };

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

  private async fan<T>(path: string, body: unknown): Promise<T[]> {
    const peers = this.peers();
    const answers = await Promise.all(peers.map(([, url]) => ask<T>(url, path, body, this.token)));
    this.lastFanout = { peers: peers.length, missing: peers.filter((_, i) => answers[i] === undefined).map(([id]) => id) };
    return answers.filter((a): a is Awaited<T> => a !== undefined) as T[];
  }

  /** This relay's partitions only (the SSE replay needs an answer in the same tick). */
  flows(filter: FlowFilter, limit: number): FlowPage {
    return this.fleet.flows(filter, limit);
  }

  /** The whole fleet: own partitions and every live peer's, newest first. */
  async flowsFleet(filter: FlowFilter, limit: number): Promise<FlowPage> {
    const remote = await this.fan<{ page: FlowPage }>('/peer/v1/flows', { filter, limit });
    return mergeFlowPages([this.fleet.flows(filter, limit), ...remote.map((r) => r.page)], limit);
  }

  follow(filter: FlowFilter, onRecords: (records: FlowRecord[]) => void): () => void {
    return this.fleet.follow(filter, onRecords);
  }

  async top(q: TopQuery): Promise<TopAnswer> {
    // Everyone is asked for as many entries as a query may have: a key spread over relays is then summed whole unless a list was cut.
    const wide = { ...q, k: this.maxK };
    const [own, remote] = await Promise.all([this.fleet.top(wide), this.fan<{ answer: TopAnswer }>('/peer/v1/top', { query: wide })]);
    const merged = mergeTopAnswers([own, ...remote.map((r) => r.answer)], q, this.maxK);
    if (!own.exact || remote.some((r) => !r.answer.exact) || this.lastFanout.missing.length > 0) merged.exact = false;
    return merged;
  }

  async interfaces(): Promise<NodeInterfaceReport[]> {
    const remote = await this.fan<{ interfaces: NodeInterfaceReport[] }>('/peer/v1/interfaces', {});
    return [...this.fleet.interfaces(), ...remote.flatMap((r) => r.interfaces)].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.ifindex - b.ifindex));
  }
}
