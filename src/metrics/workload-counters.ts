/**
 * Bytes and packets per workload for Prometheus, with bounded cardinality:
 * the `maxSeries` busiest workloads by name, and the rest together.
 *
 * Every exported record adds to one series, so the series of a direction sum
 * to what the flows carried: bounding the label set drops nothing.
 * - The busiest workloads (bytes over the last ranking interval) have a series
 *   of their own; the others count in `workload="other"`. Every interval the
 *   ranking is redone: a workload that drops out stops its series (what it
 *   counted stays in Prometheus' history) and its traffic counts in "other"
 *   from then on; one that enters starts a series at 0.
 * - Flows without a local socket (forwarded traffic) count in
 *   `workload="none"`, those whose cgroup could not be named in
 *   `workload="unknown"`.
 *
 * Per record: one Map lookup by cgroup id; a cgroup's workload is resolved
 * once, when first seen.
 */
import type { CgroupLabeler, RecordBatch } from '../flow/record-batch.js';
import { metaDirectionCode } from '../flow/tuple.js';

export const WORKLOAD_NONE = 'none';
export const WORKLOAD_UNKNOWN = 'unknown';
export const WORKLOAD_OTHER = 'other';

export interface WorkloadTotals {
  workload: string;
  /** [ingress, egress] since the series started */
  packets: [number, number];
  bytes: [number, number];
}

/** A workload seen on this node: its traffic in the current interval, and its series if it has one. */
interface Workload {
  name: string;
  recentBytes: number;
  series: WorkloadTotals | undefined;
  /** the cgroup ids cached as naming it */
  cgroupIds: number[];
}

export class WorkloadCounters {
  private readonly workloads = new Map<string, Workload>();
  private readonly byCgroup = new Map<number, Workload>();
  private readonly reserved = new Map<string, WorkloadTotals>();
  private nextRankMs = -Infinity;
  private ownSeries = 0;
  /** series stopped because their workload dropped out of the busiest */
  stopped = 0;

  constructor(
    private readonly maxSeries = 20,
    private readonly rankIntervalMs = 60_000,
  ) {
    for (const name of [WORKLOAD_NONE, WORKLOAD_UNKNOWN, WORKLOAD_OTHER]) this.reserved.set(name, newTotals(name));
  }

  /** Adds a batch of exported records, labelled by its labeler. */
  add(batch: RecordBatch, nowMs: number, labels: CgroupLabeler | undefined = batch.labels): void {
    if (nowMs >= this.nextRankMs) this.rank(nowMs);
    const { cgroup, meta, packets, bytes } = batch;
    const none = this.reserved.get(WORKLOAD_NONE)!;
    const unknown = this.reserved.get(WORKLOAD_UNKNOWN)!;
    const other = this.reserved.get(WORKLOAD_OTHER)!;
    for (let i = 0; i < batch.count; i++) {
      const id = cgroup[i];
      let totals: WorkloadTotals;
      if (id === 0) totals = none;
      else {
        const w = this.byCgroup.get(id) ?? this.resolve(id, labels);
        if (w === undefined) totals = unknown;
        else {
          w.recentBytes += bytes[i];
          if (w.series === undefined && this.ownSeries < this.maxSeries) {
            // A place is free (the first interval, or a workload went quiet): take it now rather than at the next ranking.
            w.series = newTotals(w.name);
            this.ownSeries++;
          }
          totals = w.series ?? other;
        }
      }
      const d = metaDirectionCode(meta[i]);
      totals.packets[d] += packets[i];
      totals.bytes[d] += bytes[i];
    }
  }

  /** The workload a cgroup id names; undefined (not cached) while its path can't be read. */
  private resolve(cgroupId: number, labels: CgroupLabeler | undefined): Workload | undefined {
    const name = labels?.(cgroupId)?.workload;
    if (name === undefined) return undefined;
    let w = this.workloads.get(name);
    if (!w) this.workloads.set(name, (w = { name, recentBytes: 0, series: undefined, cgroupIds: [] }));
    this.byCgroup.set(cgroupId, w);
    w.cgroupIds.push(cgroupId);
    return w;
  }

  /**
   * Gives the series to the busiest workloads of the interval that ended:
   * as many quiet holders as busier workloads are waiting give theirs up,
   * least busy first. Workloads quiet for a whole interval without a series
   * are forgotten (pods come and go; the map must not grow with them).
   */
  private rank(nowMs: number): void {
    this.nextRankMs = nowMs + this.rankIntervalMs;
    const all = [...this.workloads.values()];
    const busiest = new Set(all.filter((w) => w.recentBytes > 0).sort((a, b) => b.recentBytes - a.recentBytes).slice(0, this.maxSeries));
    const waiting = [...busiest].filter((w) => !w.series);
    const yielding = all.filter((w) => w.series && !busiest.has(w)).sort((a, b) => a.recentBytes - b.recentBytes);
    const need = Math.max(0, waiting.length - (this.maxSeries - this.ownSeries));
    for (const w of yielding.slice(0, need)) {
      w.series = undefined;
      this.ownSeries--;
      this.stopped++;
    }
    for (const w of waiting) {
      if (this.ownSeries >= this.maxSeries) break;
      w.series = newTotals(w.name);
      this.ownSeries++;
    }
    for (const w of all) {
      if (w.series === undefined && w.recentBytes === 0) {
        this.workloads.delete(w.name);
        for (const id of w.cgroupIds) if (this.byCgroup.get(id) === w) this.byCgroup.delete(id);
      }
      w.recentBytes = 0;
    }
  }

  /** Every series' totals: the workloads that have one, and the reserved ones always. */
  totals(): WorkloadTotals[] {
    const own: WorkloadTotals[] = [];
    for (const w of this.workloads.values()) if (w.series) own.push(w.series);
    return [...own, ...this.reserved.values()];
  }
}

function newTotals(workload: string): WorkloadTotals {
  return { workload, packets: [0, 0], bytes: [0, 0] };
}
