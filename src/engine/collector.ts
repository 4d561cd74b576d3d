/**
 * The poll loop: drains the FlowSource every pollIntervalMs (never two polls
 * at once), folds the deltas into the flow table, exports records through the
 * sinks and the top-talkers windows, keeps the interface accounting, and
 * expires flows.
 *
 * Records: at every export (every poll by default, or every exportEveryPolls
 * polls), one record per flow that had traffic since the previous export, its
 * counts being exactly the sum of the kernel's deltas for that flow in the
 * interval [start, end] (the previous and this export's drain times). Nothing
 * is merged across flows and nothing is dropped: per interface and direction,
 * the records' sums equal the kernel's flow counts.
 *
 * Every pass of a poll over the flows (accumulate, export, expiry sweep) runs
 * in chunks of `chunkSize` flows and yields to the event loop whenever it has
 * held it for `sliceMs`, so HTTP requests wait at most a few ms during a poll
 * of a million flows.
 */
import type { Attachment, DrainResult, FailureName, FlowSource } from '../datapath/types.js';
import type { AddressTable } from '../flow/address-table.js';
import type { FlowTable } from './flow-table.js';
import type { InterfaceAccounting } from './interface-accounting.js';
import { RecordBatch, type CgroupLabeler } from '../flow/record-batch.js';
import type { RecordSink } from './sink.js';
import type { TopWindows } from './top/top-windows.js';
import { DEFAULT_SLICE_MS, Slicer } from '../lib/slicer.js';

export interface CollectorConfig {
  pollIntervalMs: number;
  /** export records every this many polls (1 = every poll) */
  exportEveryPolls: number;
  /** flows handled between two looks at the clock (and records per exported batch) */
  chunkSize: number;
  /** longest a poll holds the event loop before it yields, ms */
  sliceMs: number;
  /** flow-table slots examined for expiry per poll */
  sweepBudget: number;
}

export const DEFAULT_COLLECTOR: Readonly<CollectorConfig> = Object.freeze({
  pollIntervalMs: 1000,
  exportEveryPolls: 1,
  chunkSize: 2048,
  sliceMs: DEFAULT_SLICE_MS,
  sweepBudget: 131_072,
});

/** What one poll did, for metrics and status. */
export interface PollReport {
  atMs: number;
  /** whole poll: drain + aggregation + export, ms */
  durationMs: number;
  /** the drain as the source measured it, ms */
  drainMs: number;
  flows: number;
  records: number;
  expired: number;
  tracked: number;
  failures: Record<FailureName, number>;
}

export interface CollectorListener {
  pollDone?(report: PollReport): void;
  /** every chunk of every export, after the sinks took it (the batch is reused: copy what you keep) */
  exported?(batch: RecordBatch): void;
  pollFailed?(error: Error): void;
  sinkFailed?(sink: string, error: Error): void;
}

/** What a collector polls, where its records go, and how. */
export interface CollectorOptions {
  source: FlowSource;
  table: FlowTable;
  interfaces: InterfaceAccounting;
  /** top-talkers windows fed by every export, if any */
  top?: TopWindows;
  sinks: RecordSink[];
  /** address texts, interface names and node name of the exported records (RecordBatch) */
  addresses: AddressTable;
  ifaceName: (ifindex: number) => string;
  node: string;
  config?: CollectorConfig;
  listener?: CollectorListener;
  /** wall clock (epoch ms) */
  clock?: () => number;
  /** monotonic clock (ms): a change of wall minus monotonic between drains is a wall-clock step (followWallStep) */
  mono?: () => number;
  /** names the cgroups flows are attributed to, in the records built for sinks */
  labels?: CgroupLabeler;
}

export class Collector {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private pollsSinceExport = 0;
  private lastExportMs: number;
  private readonly batch: RecordBatch;
  polls = 0;
  pollErrors = 0;
  /** drains that returned only part of the counters (the rest came with a later drain) */
  partialDrains = 0;
  /** the source's sequence number of the last drain whose records were exported */
  lastExportedSeq: number | undefined;
  recordsExported = 0;
  /** wall-clock steps seen between drains (followWallStep) */
  wallSteps = 0;
  private wallOffset: number | undefined;
  lastReport: PollReport | undefined;
  lastError: string | undefined;
  lastFailures: Record<FailureName, number> | undefined;

  private readonly source: FlowSource;
  private readonly table: FlowTable;
  private readonly interfaces: InterfaceAccounting;
  private readonly top: TopWindows | undefined;
  private readonly sinks: RecordSink[];
  readonly config: CollectorConfig;
  private readonly listener: CollectorListener;
  private readonly clock: () => number;
  private readonly mono: (() => number) | undefined;

  constructor(options: CollectorOptions) {
    this.source = options.source;
    this.table = options.table;
    this.interfaces = options.interfaces;
    this.top = options.top;
    this.sinks = options.sinks;
    this.config = options.config ?? DEFAULT_COLLECTOR;
    this.listener = options.listener ?? {};
    this.clock = options.clock ?? Date.now;
    this.mono = options.mono;
    this.batch = new RecordBatch(this.config.chunkSize, options.addresses, options.ifaceName, options.node);
    this.batch.labels = options.labels;
    // After a takeover the first records start where the previous agent's last drain ended.
    this.lastExportMs = this.source.stats().pinned?.resumedFromMs ?? this.clock();
    const { top, table } = this;
    if (top) top.onBucketClosed = () => table.releaseRetired();
  }

  /** Attaches an interface and starts accounting for it. */
  async attach(iface: string, mode: 'tc' | 'xdp'): Promise<Attachment> {
    const a = await this.source.attach(iface, mode);
    this.interfaces.attach(a);
    return a;
  }

  /** Starts polling every pollIntervalMs. */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const started = performance.now(); // monotonic: a wall-clock step must not stall the loop
      this.running = this.pollOnce()
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => {
          this.running = undefined;
          // Keep the cadence; if a poll overran, start the next one at once (no catch-up burst).
          this.schedule(Math.max(0, this.config.pollIntervalMs - (performance.now() - started)));
        });
    }, delayMs);
    this.timer.unref?.();
  }

  /**
   * One poll. Public so tests and benchmarks can drive it; must not be called
   * while the loop is running a poll (the loop never overlaps itself).
   */
  async pollOnce(forceExport = false): Promise<PollReport> {
    const t0 = performance.now();
    let drained: DrainResult;
    try {
      drained = await this.source.drain();
    } catch (err) {
      this.pollErrors++;
      this.lastError = (err as Error).message;
      this.listener.pollFailed?.(err as Error);
      throw err;
    }
    this.followWallStep(drained);
    if (drained.partialError) {
      this.partialDrains++;
      this.lastError = drained.partialError;
    }
    const flows = drained.flows;
    const chunk = this.config.chunkSize;
    const slicer = new Slicer(this.config.sliceMs);
    for (let from = 0; from < flows.count; from += chunk) {
      this.table.accumulate(flows, from, Math.min(flows.count, from + chunk));
      if (slicer.due) await slicer.next();
    }
    this.interfaces.apply(drained.interfaces, drained.closedAtMs);
    let records = 0;
    // Over max-flows: export now, so that the sweep below can evict (only exported flows are evicted).
    if (forceExport || ++this.pollsSinceExport >= this.config.exportEveryPolls || this.table.overLimit) {
      records = await this.exportPending(drained.closedAtMs, slicer, drained.seq);
      this.pollsSinceExport = 0;
    }
    if (this.top) await this.top.advance(drained.closedAtMs);
    else this.table.releaseRetired();
    let expired = 0;
    const sweepTotal = Math.min(this.config.sweepBudget, this.table.slotLimit);
    for (let done = 0; done < sweepTotal || done === 0; done += chunk) {
      expired += this.table.sweep(drained.closedAtMs, Math.min(chunk, sweepTotal - done));
      if (slicer.due) await slicer.next();
    }
    // Beyond max-flows (a flood): evict the rest in slices too (a sweep evicts a few thousand flows at most).
    while (this.table.overLimit) {
      const evicted = this.table.evict(Math.min(chunk, this.table.size - this.table.maxFlows));
      expired += evicted;
      if (evicted === 0) break;
      if (slicer.due) await slicer.next();
    }
    this.polls++;
    if (!drained.partialError) this.lastError = undefined;
    this.lastFailures = drained.failures;
    const report: PollReport = {
      atMs: drained.closedAtMs,
      durationMs: performance.now() - t0,
      drainMs: drained.durationNs / 1e6,
      flows: flows.count,
      records,
      expired,
      tracked: this.table.size,
      failures: drained.failures,
    };
    this.lastReport = report;
    this.listener.pollDone?.(report);
    return report;
  }

  /**
   * When the wall clock stepped since the previous drain (NTP, `date -s`),
   * moves the flow table's times and the next record's start by the step:
   * expiry then measures true ages (a step forward does not expire every
   * flow, a step back does not keep them all an hour longer), and records
   * are labelled in the new wall time. The drain's wall time is compared with
   * the monotonic clock at the drain's start; changes under 1 s are jitter.
   */
  private followWallStep(drained: DrainResult): void {
    if (!this.mono) return;
    const offset = drained.closedAtMs - (this.mono() - drained.durationNs / 1e6);
    const step = this.wallOffset === undefined ? 0 : offset - this.wallOffset;
    if (Math.abs(step) >= 1000) {
      this.table.shiftTimes(step);
      this.lastExportMs += step;
      this.wallSteps++;
    }
    if (step === 0 || Math.abs(step) >= 1000) this.wallOffset = offset;
  }

  /** Writes every flow with unexported counts as a record, in chunks. */
  private async exportPending(endMs: number, slicer: Slicer, seq: number | undefined): Promise<number> {
    const batch = this.batch;
    batch.startMs = this.lastExportMs;
    batch.endMs = endMs;
    let total = 0;
    while (this.table.exportPending(batch) > 0) {
      for (const sink of this.sinks) {
        try {
          sink.write(batch);
        } catch (err) {
          this.listener.sinkFailed?.(sink.name, err as Error);
        }
      }
      this.listener.exported?.(batch);
      if (this.top) {
        await this.top.add(batch);
        // The batch is in the open bucket: its slots are free as soon as that bucket closes and they end.
        this.table.settleExported(batch);
      }
      total += batch.count;
      if (slicer.due) await slicer.next();
    }
    this.table.finishExport();
    this.lastExportMs = endMs;
    this.recordsExported += total;
    // Not awaited: a slow backend must not hold up the drains (sinks buffer and coalesce).
    const flushed = this.sinks.map((sink) => sink.flush().catch((err: Error) => this.listener.sinkFailed?.(sink.name, err)));
    if (seq !== undefined) {
      this.lastExportedSeq = seq;
      void Promise.all(flushed).then(() => this.confirmExported(seq));
    }
    return total;
  }

  /**
   * Tells the source that every sink holds nothing of drains up to seq any
   * more, so an agent that adopts its counters after a crash can tell whether
   * records of this one's last drains may be missing downstream.
   */
  confirmExported(seq = this.lastExportedSeq): boolean {
    if (seq === undefined || !this.sinks.every((s) => !s.status().pending)) return false;
    this.source.markExported?.(seq);
    return true;
  }

  /**
   * Stops the loop, waits for a running poll, and runs a last poll that
   * exports everything still pending, so no counted packet is left out.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.running) await this.running;
    try {
      await this.pollOnce(true);
    } catch {
      // the source may already be gone; nothing more can be drained then
    }
  }

  get isRunning(): boolean {
    return !this.stopped;
  }
}
