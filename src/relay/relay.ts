/**
 * The relay: the fleet's flows served from Redis. It wires a Redis client, the
 * stream consumer (stream-consumer.ts), the fleet view (fleet-view.ts) and
 * the relay metrics into the services the HTTP app serves (the same app as
 * the agent's: src/api/app.ts).
 */
import { Followers } from '../lib/followers.js';
import type { AgentStatus, ApiServices, Readiness, StatusService } from '../api/queries.js';
import type { TopConfig } from '../engine/top/top-windows.js';
import { connectClient, createRedisClient, isReady, RedisUnreachableError, type RedisClient } from '../redis/connection.js';
import { FleetView } from './fleet-view.js';
import { flowsKey } from '../redis/keys.js';
import { RelayMetrics } from './relay-metrics.js';
import { StreamConsumer, type NodeHealth } from './stream-consumer.js';
import { StreamReadConnections } from '../redis/stream-read-connection.js';
import { Membership } from './membership.js';
import { PartitionedFleet } from './partitions.js';
import { FleetFanout, PeerServer } from './peers.js';
import type { SinkLog } from '../redis/stream-sink.js';
import type { RedisTarget } from '../redis/url.js';

export interface RelayOptions {
  target: RedisTarget;
  group: string;
  consumer: string;
  version: string;
  /** records kept per node */
  storeSize: number;
  top?: Partial<TopConfig>;
  maxTopK?: number;
  claimIdleMs?: number;
  readCount?: number;
  discoverEveryMs?: number;
  /** entry times later than now by more than this are refused (default a day) */
  maxFutureMs?: number;
  /** entry times earlier than now by more than this are refused (default 30 days) */
  maxAgeMs?: number;
  /** most nodes read (default 4096) */
  maxNodes?: number;
  /**
   * Scale-out (docs/redis.md, "Several relays"): the fleet's streams are
   * split into `partitions` among the live relays; this relay reads its own
   * and asks its peers, at their peer endpoints, for theirs.
   */
  scaleOut?: {
    partitions: number;
    /** where this relay serves its partitions to its peers */
    peerListen: { host: string; port: number };
    /** the URL peers use (default http://HOST:PORT of peerListen) */
    peerUrl?: string;
    /** lease of a relay in the fleet (default 3 s): a dead relay's partitions move after it */
    leaseMs?: number;
    /** bearer token of the peer endpoint (the relay's --token) */
    token?: string;
  };
  log?: SinkLog;
  /** wall clock: entry checks, labels (default Date.now) */
  clock?: () => number;
  /**
   * monotonic clock (ms) on which the top-talkers buckets run (default: a
   * real monotonic clock, or `clock` when only that is given, as tests do)
   */
  monoClock?: () => number;
}

/** One node as the relay's status shows it. */
export interface RelayNodeStatus {
  node: string;
  stream: string;
  entries: number;
  lastId: string | null;
  lastRecordEnd: string | null;
  storeRecords: number;
  interfaces: number;
  /** entries and interfaces hash values refused, by reason */
  rejected: Record<string, number>;
  /** error replies for this node's keys (wrong type, ...) */
  readErrors: number;
  /** the last such error while it lasts */
  lastError?: string;
}

export interface RelayStatus extends AgentStatus {
  role: 'relay';
  relay: {
    redis: string;
    connected: boolean;
    lastError?: string;
    group: string;
    consumer: string;
    entries: number;
    replayed: number;
    recovered: number;
    badEntries: number;
    /** refused entries and hash values of all nodes, by reason */
    rejected: Record<string, number>;
    /** names in flowscope:nodes that are not read (malformed, or past maxNodes) */
    ignoredNodes: number;
    /** the error reading flowscope:nodes itself, while it lasts (e.g. WRONGTYPE) */
    nodesKeyError?: string;
    nodes: RelayNodeStatus[];
    /** with --partitions: this relay's place in the fleet of relays */
    scaleOut?: {
      id: string;
      url: string | null;
      partitions: number;
      /** partitions this relay owns in the live set */
      owned: number[];
      /** partitions it holds: its own, and those handed over until their new owner has replayed them */
      held: number[];
      live: string[];
      gained: number;
      lost: number;
      lastFanout: { peers: number; missing: string[]; incomplete: number[] };
      lastError?: string;
    };
  };
}

export class Relay implements StatusService {
  readonly client: RedisClient;
  /** the fleet's view (one relay, or several each with its own group); with scaleOut, unused */
  readonly view: FleetView;
  readonly consumer: StreamConsumer;
  /** scale-out: membership, the owned partitions' views, the peers' answers */
  readonly membership?: Membership;
  readonly partitions?: PartitionedFleet;
  readonly fanout?: FleetFanout;
  private readonly peerServer?: PeerServer;
  readonly metrics: RelayMetrics;
  /** XREADGROUP/XRANGE/XACK connections, shared by the relay's consumers */
  private readonly reads: StreamReadConnections;
  private readonly clock: () => number;
  private readonly startedAtMs: number;
  private readonly followers = new Followers();
  private connectionError: string | undefined;

  constructor(readonly options: RelayOptions) {
    this.clock = options.clock ?? Date.now;
    this.startedAtMs = this.clock();
    this.client = createRedisClient(options.target, { connectionName: `flowscope-relay-${options.consumer}` });
    this.client.on('error', (err: Error) => {
      this.connectionError = err.message.split('\n')[0];
    });
    this.client.on('ready', () => {
      this.connectionError = undefined;
    });
    this.reads = new StreamReadConnections(this.client, `flowscope-relay-read-${options.consumer}`);
    this.view = new FleetView({
      storeSize: options.storeSize,
      top: options.top,
      maxTopK: options.maxTopK,
      clock: this.clock,
      monoClock: options.monoClock,
    });
    this.consumer = new StreamConsumer({
      client: this.client,
      view: this.view,
      group: options.group,
      consumer: options.consumer,
      replayWindowMs: this.view.horizonMs,
      claimIdleMs: options.claimIdleMs,
      readCount: options.readCount,
      discoverEveryMs: options.discoverEveryMs,
      maxFutureMs: options.maxFutureMs,
      maxAgeMs: options.maxAgeMs,
      maxNodes: options.maxNodes,
      reads: this.reads,
      log: options.log,
      clock: this.clock,
    });
    if (options.scaleOut) {
      const so = options.scaleOut;
      this.membership = new Membership({ client: this.client, id: options.consumer, url: so.peerUrl, partitions: so.partitions, leaseMs: so.leaseMs, clock: this.clock, log: options.log });
      this.partitions = new PartitionedFleet({
        client: this.client,
        membership: this.membership,
        group: options.group,
        view: { storeSize: options.storeSize, top: options.top, maxTopK: options.maxTopK, clock: this.clock, monoClock: options.monoClock },
        consumer: {
          claimIdleMs: options.claimIdleMs,
          readCount: options.readCount,
          discoverEveryMs: options.discoverEveryMs,
          maxFutureMs: options.maxFutureMs,
          maxAgeMs: options.maxAgeMs,
          maxNodes: options.maxNodes,
          reads: this.reads,
          clock: this.clock,
        },
        log: options.log,
      });
      this.fanout = new FleetFanout(this.partitions, this.membership, so.token);
      this.peerServer = new PeerServer(this.partitions, so.token);
    }
    this.metrics = new RelayMetrics({
      version: options.version,
      view: this.options.scaleOut ? this.aggregateView() : this.view,
      consumer: this.options.scaleOut ? this.aggregateConsumer() : this.consumer,
      connected: () => isReady(this.client),
      ready: () => this.readiness().ready,
      streamClients: () => this.followers.count,
    });
  }

  /**
   * Connects (at most connectWaitMs) and starts reading. Throws
   * RedisAuthError on bad credentials; an unreachable Redis is not an error:
   * the relay serves a degraded status and keeps trying.
   */
  async start(connectWaitMs = 5000): Promise<void> {
    try {
      await connectClient(this.client, connectWaitMs);
    } catch (err) {
      if (!(err instanceof RedisUnreachableError)) {
        this.client.disconnect();
        throw err;
      }
      this.connectionError = err.message;
      this.options.log?.warn({ redis: this.options.target.redacted, reason: err.message }, 'relay: Redis is not reachable yet; serving a degraded status and retrying');
    }
    if (!this.options.scaleOut) {
      this.consumer.start();
      return;
    }
    const so = this.options.scaleOut;
    const at = await this.peerServer!.listen(so.peerListen.host, so.peerListen.port);
    this.membership!.url ??= `http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
    await this.membership!.start();
    await this.partitions!.sync();
  }

  async close(): Promise<void> {
    if (this.options.scaleOut) {
      await this.membership!.stop();
      await this.partitions!.stop();
      await this.peerServer!.close();
    } else {
      await this.consumer.stop();
    }
    this.reads.close();
    this.client.disconnect();
  }

  /** The views whose nodes this relay answers for. */
  private views(): FleetView[] {
    return this.partitions ? this.partitions.views() : [this.view];
  }

  /** The stream consumers: one, or one per partition held. */
  consumers(): StreamConsumer[] {
    return this.partitions ? this.partitions.consumers() : [this.consumer];
  }

  /** Every node's health over the consumers. */
  private health(): Map<string, NodeHealth> {
    if (!this.partitions) return this.consumer.health;
    const out = new Map<string, NodeHealth>();
    for (const c of this.consumers()) for (const [node, h] of c.health) if (!out.has(node) || node !== '') out.set(node, h);
    return out;
  }

  /** The owned partitions' views as one, for the metrics (scale-out). */
  private aggregateView(): FleetView {
    const views = () => this.views();
    return {
      get nodes() {
        return new Map(views().flatMap((v) => [...v.nodes]));
      },
      flows_: {
        get size() {
          return views().reduce((a, v) => a + v.flows_.size, 0);
        },
      },
      interfaces: () => views().flatMap((v) => v.interfaces()),
    } as unknown as FleetView;
  }

  /** The owned partitions' consumers as one, for the metrics (scale-out). */
  private aggregateConsumer(): StreamConsumer {
    const sum = (k: 'replayed' | 'acked' | 'recovered' | 'badEntries' | 'errors') => () => this.consumers().reduce((a, c) => a + c[k], 0);
    const fields = { replayed: sum('replayed'), acked: sum('acked'), recovered: sum('recovered'), badEntries: sum('badEntries'), errors: sum('errors') };
    const o: Record<string, unknown> = {};
    for (const [k, read] of Object.entries(fields)) Object.defineProperty(o, k, { get: read, enumerable: true });
    Object.defineProperty(o, 'health', { get: () => this.health() });
    Object.defineProperty(o, 'ignoredNodes', { get: () => new Set(this.consumers().flatMap((c) => [...c.ignoredNodes])) });
    return o as unknown as StreamConsumer;
  }

  services(): ApiServices {
    const fanout = this.fanout;
    if (fanout) {
      return {
        flows: {
          flows: (filter, limit) => fanout.flows(filter, limit),
          flowsFleet: (filter, limit) => fanout.flowsFleet(filter, limit),
          follow: (filter, onRecords) => this.followers.track(fanout.follow(filter, onRecords)),
        },
        top: fanout,
        interfaces: fanout,
        status: this,
        metrics: { contentType: this.metrics.contentType, render: () => this.metrics.render() },
      };
    }
    const view = this.view;
    return {
      flows: {
        flows: (filter, limit) => view.flows(filter, limit),
        follow: (filter, onRecords) => this.followers.track(view.follow(filter, onRecords)),
      },
      top: view,
      interfaces: view,
      status: this,
      metrics: { contentType: this.metrics.contentType, render: () => this.metrics.render() },
    };
  }

  readiness(): Readiness {
    if (!isReady(this.client)) return { ready: false, reason: `Redis ${this.options.target.redacted} not connected${this.connectionError ? `: ${this.connectionError}` : ''}` };
    if (this.partitions) {
      if (this.membership!.beats === 0) return { ready: false, reason: 'joining the relays of the fleet' };
      if (!this.partitions.caughtUp) return { ready: false, reason: 'replaying the streams of its partitions' };
      return { ready: true };
    }
    if (!this.consumer.caughtUp) return { ready: false, reason: 'replaying the streams' };
    return { ready: true };
  }

  private rejectedByReason(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const h of this.health().values()) for (const [reason, n] of h.rejected) out[reason] = (out[reason] ?? 0) + n;
    return out;
  }

  /** Every node read, and every node whose keys could not be read at all. */
  private nodeStatuses(): RelayNodeStatus[] {
    const nodes = new Map(this.views().flatMap((v) => [...v.nodes]));
    const health = this.health();
    const names = new Set<string>(nodes.keys());
    for (const name of health.keys()) if (name !== '') names.add(name);
    return [...names].sort().map((name) => {
      const n = nodes.get(name);
      const h = health.get(name);
      const s: RelayNodeStatus = {
        node: name,
        stream: flowsKey(name),
        entries: n?.entries ?? 0,
        lastId: n?.lastId ?? null,
        lastRecordEnd: n?.lastRecordEndMs == null ? null : new Date(n.lastRecordEndMs).toISOString(),
        storeRecords: n?.store.size ?? 0,
        interfaces: n?.interfaces.length ?? 0,
        rejected: h ? Object.fromEntries(h.rejected) : {},
        readErrors: h?.errors ?? 0,
      };
      if (h?.lastError) s.lastError = h.lastError;
      return s;
    });
  }

  status(): RelayStatus {
    const now = this.clock();
    const views = this.views();
    const consumers = this.consumers();
    const total = (k: 'replayed' | 'recovered' | 'badEntries' | 'rounds' | 'errors') => consumers.reduce((a, c) => a + c[k], 0);
    const nodes = views.flatMap((v) => [...v.nodes.values()]).sort((a, b) => (a.name < b.name ? -1 : 1));
    const health = this.health();
    const interfaces = views.flatMap((v) => v.interfaces());
    let overflowPackets = 0;
    let overflowBytes = 0;
    let otherPackets = 0;
    let otherBytes = 0;
    for (const i of interfaces) {
      for (const d of [i.rx, i.tx]) {
        overflowPackets += d.overflowPackets ?? 0;
        overflowBytes += d.overflowBytes ?? 0;
        otherPackets += d.otherPackets ?? 0;
        otherBytes += d.otherBytes ?? 0;
      }
    }
    let records = 0;
    let capacity = 0;
    let seen = 0;
    let lost = 0;
    for (const n of nodes) {
      records += n.store.size;
      capacity += n.store.capacity;
      seen += n.store.seen;
      lost += n.store.lost;
    }
    const lastError = consumers.find((c) => c.lastError)?.lastError ?? this.connectionError;
    return {
      node: this.options.consumer,
      version: this.options.version,
      startedAt: new Date(this.startedAtMs).toISOString(),
      uptimeSeconds: Math.max(0, (now - this.startedAtMs) / 1000),
      ready: this.readiness().ready,
      interfaces: interfaces.map((i) => ({ iface: `${i.node}/${i.iface}`, ifindex: i.ifindex, hook: i.hook })),
      flowsTracked: views.reduce((a, v) => a + v.flows_.size, 0),
      mapCapacity: 0,
      mapFill: 0,
      overflowPackets,
      overflowBytes,
      otherPackets,
      otherBytes,
      pollIntervalMs: 0,
      polls: total('rounds'),
      pollErrors: total('errors'),
      partialDrains: 0,
      pinned: null,
      lastPollAt: null,
      lastPollDurationMs: null,
      lastDrainDurationMs: null,
      lastError: lastError ?? null,
      recordsExported: 0,
      sinks: [],
      store: { records, capacity, seen, lost },
      flowsExpired: {},
      datapathFailures: {},
      top: { bucketMs: this.view.bucketMs, horizonMs: this.view.horizonMs, buckets: Math.max(0, ...views.map((v) => v.topWindows.bucketCount)) },
      role: 'relay',
      relay: {
        redis: this.options.target.redacted,
        connected: isReady(this.client),
        ...(lastError ? { lastError } : {}),
        group: this.options.group,
        consumer: this.options.consumer,
        entries: views.reduce((a, v) => a + v.entries, 0),
        replayed: total('replayed'),
        recovered: total('recovered'),
        badEntries: total('badEntries'),
        rejected: this.rejectedByReason(),
        ignoredNodes: new Set(consumers.flatMap((c) => [...c.ignoredNodes])).size,
        ...(health.get('')?.lastError ? { nodesKeyError: health.get('')!.lastError } : {}),
        nodes: this.nodeStatuses(),
        ...(this.membership
          ? {
              scaleOut: {
                id: this.membership.id,
                url: this.membership.url ?? null,
                partitions: this.membership.partitions,
                owned: this.partitions!.owns,
                held: this.partitions!.owned,
                live: this.membership.live,
                gained: this.partitions!.gained,
                lost: this.partitions!.lost,
                lastFanout: this.fanout!.lastFanout,
                ...(this.membership.lastError ? { lastError: this.membership.lastError } : {}),
              },
            }
          : {}),
      },
    };
  }
}
