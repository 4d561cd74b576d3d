/**
 * The agent: a FlowSource, the flow table, the record store (a sink), other
 * sinks, the top-talkers windows, the interface accounting and the poll loop,
 * wired together. It also answers the API's queries (queries.ts) from that
 * state.
 */
import type { CloseOptions, FlowSource, HookMode } from '../datapath/types.js';
import { AgentMetrics } from '../metrics/agent-metrics.js';
import { Followers } from '../lib/followers.js';
import { AddressTable } from '../flow/address-table.js';
import { Collector, DEFAULT_COLLECTOR, type CollectorConfig } from '../engine/collector.js';
import { DEFAULT_EXPIRY, type ExpiryConfig } from '../engine/expiry.js';
import type { FlowFilter } from '../flow/filter.js';
import { FlowTable } from '../engine/flow-table.js';
import { InterfaceAccounting, type InterfaceReport } from '../engine/interface-accounting.js';
import { InterfaceHistory, type InterfaceHistoryConfig } from '../engine/interface-history.js';
import type { AgentStatus, ApiServices, FlowQueryService, Readiness, StatusService, TopQueryService } from '../api/queries.js';
import type { CgroupLabeler } from '../flow/record-batch.js';
import { WorkloadCounters } from '../metrics/workload-counters.js';
import type { FlowRecord } from '../flow/record.js';
import { RecordStore, type FlowPage } from '../engine/record-store.js';
import type { RecordSink } from '../engine/sink.js';
import { singleNode } from '../flow/tuple-reader.js';
import { DEFAULT_TOP, monotonicNow, TopWindows, type TopAnswer, type TopConfig, type TopQuery, type TopSeries } from '../engine/top/top-windows.js';

export interface AgentOptions {
  node: string;
  version: string;
  storeSize: number;
  collector?: Partial<CollectorConfig>;
  expiry?: Partial<ExpiryConfig>;
  top?: Partial<TopConfig>;
  /** largest k a top query may ask for */
  maxTopK?: number;
  rateWindowMs?: number;
  /** extra sinks (the store is always one) */
  sinks?: RecordSink[];
  clock?: () => number;
  /** names the cgroups the kernel attributes flows to (records' cgroup, workload, pod, container) */
  labels?: CgroupLabeler;
  /** workloads with their own series in flowscope_workload_*_total when `labels` is set (default 20; 0: none) */
  metricsWorkloads?: number;
  /** reported in status: whether the agent's stop leaves the programs attached (run --keep-attached) */
  keepAttached?: boolean;
  /** monotonic clock (ms) for the top-talkers buckets; default a real one, or `clock` when only that is given */
  monoClock?: () => number;
  /** spans and bounds of the per-interface history (its resolution is the poll interval) */
  history?: Partial<Omit<InterfaceHistoryConfig, 'pollIntervalMs'>>;
}

export class Agent implements FlowQueryService, TopQueryService, StatusService {
  readonly addresses = new AddressTable();
  readonly table: FlowTable;
  readonly store: RecordStore;
  readonly topWindows: TopWindows;
  readonly interfaceAccounting: InterfaceAccounting;
  readonly interfaceHistory: InterfaceHistory;
  readonly collector: Collector;
  readonly metrics: AgentMetrics;
  readonly sinks: RecordSink[];
  readonly maxK: number;
  private readonly startedAtMs: number;
  private readonly clock: () => number;
  private readonly followers = new Followers();

  constructor(
    readonly source: FlowSource,
    readonly options: AgentOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.startedAtMs = this.clock();
    this.maxK = options.maxTopK ?? 1000;
    const name = (ifindex: number) => this.interfaceAccounting.name(ifindex);
    this.interfaceAccounting = new InterfaceAccounting(options.rateWindowMs);
    this.table = new FlowTable(this.addresses, { ...DEFAULT_EXPIRY, ...options.expiry });
    this.store = new RecordStore(options.storeSize, this.addresses, name, options.node);
    this.store.labels = options.labels;
    const mono = options.monoClock ?? (options.clock ? undefined : monotonicNow);
    this.topWindows = new TopWindows({ ...DEFAULT_TOP, ...options.top }, this.table, name, this.clock, singleNode(options.node), mono);
    this.sinks = [this.store, ...(options.sinks ?? [])];
    this.metrics = new AgentMetrics({
      version: options.version,
      flowsTracked: () => this.table.size,
      mapCapacity: () => this.source.stats().flowMapCapacity,
      lastDrainFlows: () => this.source.stats().lastDrainFlows,
      interfaces: () => this.interfaceAccounting.report(),
      sinks: () => this.sinks.map((s) => s.status()),
      store: () => ({ records: this.store.size, capacity: this.store.capacity, lost: this.store.lost }),
      expired: () => this.table.expired,
      failures: () => this.collector.lastFailures,
      ready: () => this.readiness().ready,
      streamClients: () => this.followers.count,
      partialDrains: () => this.collector.partialDrains,
      unconfirmedDrains: () => this.source.stats().pinned?.unconfirmedDrains ?? 0,
    }, options.labels && options.metricsWorkloads !== 0 ? new WorkloadCounters(options.metricsWorkloads ?? 20) : undefined, this.clock);
    const pollIntervalMs = options.collector?.pollIntervalMs ?? DEFAULT_COLLECTOR.pollIntervalMs;
    this.interfaceHistory = new InterfaceHistory({ ...options.history, pollIntervalMs });
    this.collector = new Collector({
      labels: options.labels,
      source,
      table: this.table,
      interfaces: this.interfaceAccounting,
      top: this.topWindows,
      sinks: this.sinks,
      addresses: this.addresses,
      ifaceName: name,
      node: options.node,
      config: { ...DEFAULT_COLLECTOR, ...options.collector },
      listener: {
        pollDone: (report) => {
          this.interfaceHistory.record(report.atMs, this.interfaceAccounting);
          this.metrics.pollDone(report);
        },
        exported: (batch) => this.metrics.exported(batch),
        pollFailed: () => this.metrics.pollFailed(),
        sinkFailed: (sink) => this.metrics.sinkFailed(sink),
      },
      clock: this.clock,
      mono,
    });
    this.accountAdopted();
  }

  /** Interfaces the source took over from a previous agent count from the start. */
  private accountAdopted(): void {
    for (const a of this.source.attachments()) if (a.adopted) this.interfaceAccounting.attach(a);
  }

  attach(iface: string, hook: HookMode) {
    return this.collector.attach(iface, hook);
  }

  /** Detaches an interface; the others keep counting. Its last counts still arrive with the next poll. */
  async detach(iface: string): Promise<void> {
    const a = this.source.attachments().find((x) => x.iface === iface);
    await this.source.detach(iface);
    if (a) this.interfaceAccounting.retire(a.ifindex);
  }

  attachments() {
    return this.source.attachments();
  }

  start(): void {
    this.collector.start();
  }

  /**
   * Stops polling (after a last export), closes the sinks (they deliver what
   * they hold) and the source: detached, or with keepAttached left attached
   * and counting for the next agent.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (options.keepAttached) {
      await this.collector.stop();
    } else {
      // A stop that detaches ends the counting first: then the last drain holds every frame the
      // hooks counted, none is left between its flip and the detach. A second drain closes the
      // other generation, where a partial drain or an earlier version's set-aside map
      // (operations.md) may still hold counts; empty otherwise.
      for (const a of this.source.attachments()) await this.detach(a.iface).catch(() => undefined);
      await this.collector.stop();
      await this.collector.pollOnce(true).catch(() => undefined);
    }
    for (const sink of this.sinks) await sink.close().catch(() => undefined);
    this.collector.confirmExported();
    await this.source.close(options);
  }

  /** The services the HTTP app serves. */
  services(): ApiServices {
    return {
      flows: this,
      top: this,
      interfaces: { interfaces: (): InterfaceReport[] => this.interfaceAccounting.report() },
      status: this,
      metrics: { contentType: this.metrics.contentType, render: () => this.metrics.render() },
      history: { node: this.options.node, history: this.interfaceHistory },
    };
  }

  flows(filter: FlowFilter, limit: number): FlowPage {
    return this.store.query(filter, limit);
  }

  flowsSliced(filter: FlowFilter, limit: number): Promise<FlowPage> {
    return this.store.querySliced(filter, limit);
  }

  follow(filter: FlowFilter, onRecords: (records: FlowRecord[]) => void): () => void {
    return this.followers.track(
      this.store.onAppend((from, to) => {
        const seqs = this.store.matching(filter, from, to);
        if (seqs.length > 0) onRecords(seqs.map((seq) => this.store.recordAt(seq)));
      }),
    );
  }

  get horizonMs(): number {
    return this.topWindows.config.horizonMs;
  }

  get bucketMs(): number {
    return this.topWindows.config.bucketMs;
  }

  top(q: TopQuery): Promise<TopAnswer> {
    return this.topWindows.topSliced(q);
  }

  series(q: TopQuery): Promise<TopSeries> {
    return this.topWindows.series(q);
  }

  readiness(): Readiness {
    if (this.source.attachments().length === 0) return { ready: false, reason: 'no interface attached' };
    if (this.collector.polls === 0) return { ready: false, reason: 'no poll completed yet' };
    return { ready: true };
  }

  status(): AgentStatus {
    const now = this.clock();
    const stats = this.source.stats();
    const totals = this.interfaceAccounting.totals();
    const last = this.collector.lastReport;
    return {
      node: this.options.node,
      version: this.options.version,
      startedAt: new Date(this.startedAtMs).toISOString(),
      uptimeSeconds: Math.max(0, (now - this.startedAtMs) / 1000),
      ready: this.readiness().ready,
      interfaces: this.source.attachments().map((a) => ({ iface: a.iface, ifindex: a.ifindex, hook: a.mode, tcMechanism: a.tcMechanism })),
      flowsTracked: this.table.size,
      mapCapacity: stats.flowMapCapacity,
      mapFill: stats.flowMapCapacity > 0 ? stats.lastDrainFlows / stats.flowMapCapacity : 0,
      overflowPackets: totals.overflowPackets,
      overflowBytes: totals.overflowBytes,
      otherPackets: totals.otherPackets,
      otherBytes: totals.otherBytes,
      pollIntervalMs: this.collector.config.pollIntervalMs,
      polls: this.collector.polls,
      pollErrors: this.collector.pollErrors,
      partialDrains: this.collector.partialDrains,
      pinned: stats.pinned
        ? {
            dir: stats.pinned.dir,
            adopted: stats.pinned.adopted,
            adoptedInterfaces: stats.pinned.adoptedInterfaces,
            resumedFrom: stats.pinned.resumedFromMs ? new Date(stats.pinned.resumedFromMs).toISOString() : null,
            unconfirmedDrains: stats.pinned.unconfirmedDrains,
            problems: stats.pinned.problems,
            ...(stats.pinned.previousLayout ? { previousLayout: { ...stats.pinned.previousLayout } } : {}),
            keepAttached: this.options.keepAttached ?? false,
          }
        : null,
      lastPollAt: last ? new Date(last.atMs).toISOString() : null,
      lastPollDurationMs: last ? last.durationMs : null,
      lastDrainDurationMs: last ? last.drainMs : null,
      lastError: this.collector.lastError ?? null,
      recordsExported: this.collector.recordsExported,
      sinks: this.sinks.map((s) => s.status()),
      store: { records: this.store.size, capacity: this.store.capacity, seen: this.store.seen, lost: this.store.lost },
      flowsExpired: { ...this.table.expired },
      datapathFailures: { ...(this.collector.lastFailures ?? {}) },
      top: { bucketMs: this.bucketMs, horizonMs: this.horizonMs, buckets: this.topWindows.bucketCount },
    };
  }
}
