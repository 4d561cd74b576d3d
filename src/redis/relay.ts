/**
 * The relay: the fleet's flows served from Redis. It wires a Redis client, the
 * stream consumer (stream-consumer.ts), the fleet view (fleet-view.ts) and
 * the relay metrics into the services the HTTP app serves (the same app as
 * the agent's: src/http/app.ts).
 */
import { Followers } from '../service/followers.js';
import type { AgentStatus, ApiServices, Readiness, StatusService } from '../service/queries.js';
import type { TopConfig } from '../service/top-windows.js';
import { connectClient, createRedisClient, isReady, RedisUnreachableError, type RedisClient } from './connection.js';
import { FleetView } from './fleet-view.js';
import { flowsKey } from './keys.js';
import { RelayMetrics } from './relay-metrics.js';
import { StreamConsumer } from './stream-consumer.js';
import type { SinkLog } from './stream-sink.js';
import type { RedisTarget } from './url.js';

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
  log?: SinkLog;
  clock?: () => number;
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
    nodes: {
      node: string;
      stream: string;
      entries: number;
      lastId: string | null;
      lastRecordEnd: string | null;
      storeRecords: number;
      interfaces: number;
    }[];
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
    this.view = new FleetView({ storeSize: options.storeSize, top: options.top, maxTopK: options.maxTopK, clock: this.clock });
    this.consumer = new StreamConsumer({
      client: this.client,
      view: this.view,
      group: options.group,
      consumer: options.consumer,
      replayWindowMs: this.view.horizonMs,
      claimIdleMs: options.claimIdleMs,
      readCount: options.readCount,
      discoverEveryMs: options.discoverEveryMs,
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

  status(): RelayStatus {
    const now = this.clock();
    const nodes = [...this.view.nodes.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
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
        nodes: nodes.map((n) => ({
          node: n.name,
          stream: flowsKey(n.name),
          entries: n.entries,
          lastId: n.lastId,
          lastRecordEnd: n.lastRecordEndMs === null ? null : new Date(n.lastRecordEndMs).toISOString(),
          storeRecords: n.store.size,
          interfaces: n.interfaces.length,
        })),
      },
    };
  }
}
