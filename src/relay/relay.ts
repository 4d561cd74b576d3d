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
import { StreamConsumer } from './stream-consumer.js';
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
  };
}

export class Relay implements StatusService {
  readonly client: RedisClient;
  readonly view: FleetView;
  readonly consumer: StreamConsumer;
  readonly metrics: RelayMetrics;
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
      log: options.log,
      clock: this.clock,
    });
    this.metrics = new RelayMetrics({
      version: options.version,
      view: this.view,
      consumer: this.consumer,
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
    this.consumer.start();
  }

  async close(): Promise<void> {
    await this.consumer.stop();
    this.client.disconnect();
  }

  services(): ApiServices {
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
    if (!this.consumer.caughtUp) return { ready: false, reason: 'replaying the streams' };
    return { ready: true };
  }

  private rejectedByReason(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const h of this.consumer.health.values()) for (const [reason, n] of h.rejected) out[reason] = (out[reason] ?? 0) + n;
    return out;
  }

  /** Every node read, and every node whose keys could not be read at all. */
  private nodeStatuses(): RelayNodeStatus[] {
    const names = new Set<string>(this.view.nodes.keys());
    for (const name of this.consumer.health.keys()) if (name !== '') names.add(name);
    return [...names].sort().map((name) => {
      const n = this.view.nodes.get(name);
      const h = this.consumer.health.get(name);
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
    const nodes = [...this.view.nodes.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    const health = this.consumer.health;
    const interfaces = this.view.interfaces();
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
    const lastError = this.consumer.lastError ?? this.connectionError;
    return {
      node: this.options.consumer,
      version: this.options.version,
      startedAt: new Date(this.startedAtMs).toISOString(),
      uptimeSeconds: Math.max(0, (now - this.startedAtMs) / 1000),
      ready: this.readiness().ready,
      interfaces: interfaces.map((i) => ({ iface: `${i.node}/${i.iface}`, ifindex: i.ifindex, hook: i.hook })),
      flowsTracked: this.view.flows_.size,
      mapCapacity: 0,
      mapFill: 0,
      overflowPackets,
      overflowBytes,
      otherPackets,
      otherBytes,
      pollIntervalMs: 0,
      polls: this.consumer.rounds,
      pollErrors: this.consumer.errors,
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
      top: { bucketMs: this.view.bucketMs, horizonMs: this.view.horizonMs, buckets: this.view.topWindows.bucketCount },
      role: 'relay',
      relay: {
        redis: this.options.target.redacted,
        connected: isReady(this.client),
        ...(lastError ? { lastError } : {}),
        group: this.options.group,
        consumer: this.options.consumer,
        entries: this.view.entries,
        replayed: this.consumer.replayed,
        recovered: this.consumer.recovered,
        badEntries: this.consumer.badEntries,
        rejected: this.rejectedByReason(),
        ignoredNodes: this.consumer.ignoredNodes.size,
        ...(health.get('')?.lastError ? { nodesKeyError: health.get('')!.lastError } : {}),
        nodes: this.nodeStatuses(),
      },
    };
  }
}
