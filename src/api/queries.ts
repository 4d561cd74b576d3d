/**
 * What the HTTP API needs, as interfaces: the agent implements them from its
 * in-memory state, and a relay can implement them from records read out of
 * Redis. The HTTP app depends on these only, never on the collector.
 */
import type { FlowFilter } from '../flow/filter.js';
import type { InterfaceReport } from '../engine/interface-accounting.js';
import type { InterfaceHistory } from '../engine/interface-history.js';
import type { FlowRecord } from '../flow/record.js';
import type { FlowPage } from '../engine/record-store.js';
import type { SinkStatus } from '../engine/sink.js';
import type { TopAnswer, TopQuery, TopSeries } from '../engine/top/top-windows.js';
import type { StatusAnswer } from './schemas.js';

export interface FlowQueryService {
  /** Recent records matching `filter`, newest first, at most `limit`. */
  flows(filter: FlowFilter, limit: number): FlowPage;
  /**
   * The same over a whole scaled-out fleet (a relay asking its peers), when
   * it differs from flows(): /api/v1/flows answers with it.
   */
  flowsFleet?(filter: FlowFilter, limit: number): Promise<FlowPage>;
  /**
   * The same answer as flows(), time-sliced: a query that walks many records
   * yields to the event loop between slices (RecordStore.querySliced);
   * /api/v1/flows answers with it when there is no flowsFleet.
   */
  flowsSliced?(filter: FlowFilter, limit: number): Promise<FlowPage>;
  /**
   * Calls `onRecords` with each new group of matching records, oldest first,
   * as they arrive. Returns the function that stops it.
   */
  follow(filter: FlowFilter, onRecords: (records: FlowRecord[]) => void): () => void;
}

export interface TopQueryService {
  /** longest window a query may ask for */
  readonly horizonMs: number;
  /** window granularity */
  readonly bucketMs: number;
  /** most entries a query may ask for */
  readonly maxK: number;
  /** May answer later: a filtered query over many buckets is time-sliced (TopWindows.topSliced). */
  top(q: TopQuery): TopAnswer | Promise<TopAnswer>;
  /** The window's top groups bucket by bucket; absent where it cannot be answered (a scaled-out relay). */
  series?(q: TopQuery): Promise<TopSeries>;
}

export interface InterfaceQueryService {
  interfaces(): InterfaceReport[] | Promise<InterfaceReport[]>;
}

export interface AttachmentStatus {
  iface: string;
  ifindex: number;
  hook: string;
  tcMechanism?: string;
}

/** Like Hubble's ServerStatus, plus the contract's fields. */
export interface AgentStatus {
  node: string;
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  ready: boolean;
  interfaces: AttachmentStatus[];
  flowsTracked: number;
  mapCapacity: number;
  /** flows in the last drained generation / mapCapacity */
  mapFill: number;
  overflowPackets: number;
  overflowBytes: number;
  otherPackets: number;
  otherBytes: number;
  pollIntervalMs: number;
  polls: number;
  pollErrors: number;
  /** drains that returned part of the counters because a step failed; the rest came with a later drain */
  partialDrains: number;
  /** pinned state (kernel source): where, and what this agent took over at start */
  pinned: PinnedStatus | null;
  lastPollAt: string | null;
  lastPollDurationMs: number | null;
  lastDrainDurationMs: number | null;
  lastError: string | null;
  recordsExported: number;
  sinks: SinkStatus[];
  store: { records: number; capacity: number; seen: number; lost: number };
  flowsExpired: Record<string, number>;
  datapathFailures: Record<string, number>;
  top: { bucketMs: number; horizonMs: number; buckets: number };
}

export interface PinnedStatus {
  dir: string;
  adopted: boolean;
  adoptedInterfaces: string[];
  /** ISO time where this agent's first interval started (the previous agent's last drain) */
  resumedFrom: string | null;
  /** drains the previous agent read but never saw exported (killed in between): their records may be missing downstream */
  unconfirmedDrains: number;
  problems: string[];
  /** flow maps an earlier version left with a shorter value layout, drained by this agent (operations.md, Upgrades) */
  previousLayout?: { valueBytes: number; flowsDrained: number; mapsLeft: number };
  /** whether a stop leaves the programs attached for the next agent */
  keepAttached: boolean;
}

export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface StatusService {
  /** the agent's status; a relay's adds role and relay, as the answer's schema has them (checked here, so they cannot drift) */
  status(): AgentStatus & Pick<StatusAnswer, 'role' | 'relay'>;
  readiness(): Readiness;
}

/** Everything the HTTP app serves. */
export interface ApiServices {
  flows: FlowQueryService;
  top: TopQueryService;
  interfaces: InterfaceQueryService;
  status: StatusService;
  /** Prometheus text exposition and its content type */
  metrics: { contentType: string; render(): Promise<string> };
  /** per-interface counts over the last 24 h (/api/v1/interfaces/history); an agent keeps them, a relay does not */
  history?: InterfaceHistoryService;
}

/** The interface history an agent keeps, and its node's name. */
export interface InterfaceHistoryService {
  readonly node: string;
  readonly history: InterfaceHistory;
}
