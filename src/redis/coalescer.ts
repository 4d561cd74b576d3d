/**
 * Fewer, exact stream entries: `--redis-export-interval`.
 *
 * The agent exports every --export-interval (by default every poll) to its
 * in-memory store and its sinks. The Redis sink may write less often: it sums
 * the records of consecutive exports per flow (the contract's flow identity:
 * interface, direction, family, protocol and ICMP type/code, addresses,
 * ports) over a window of the Redis export interval and writes one entry per
 * flow and window. The entry's counts are the sums of the exports' counts
 * (so the sum of a flow's entries is still its exact traffic), `tcpFlags` the
 * union, `firstSeen`/`lastSeen` the earliest and latest, and `start`/`end`
 * the window: the first export's start and the last export's end.
 *
 * A window starts with the first export that has records and closes with
 * the export that makes it span the interval, or at the first flush once the
 * clock is past it (an idle agent), or when the sink closes (SIGTERM): a
 * window is never left behind. Windows do not overlap: the next one starts
 * at its first export's start, at or after the previous one's end.
 *
 * Memory: one row per flow active in the window (~150 bytes) and a private
 * address table, released at every close.
 */
import { AddressTable } from '../flow/address-table.js';
import { RecordBatch, type CgroupLabeler, type IfaceNamer } from '../flow/record-batch.js';

export class EntryCoalescer {
  private readonly index = new Map<string, number>();
  private readonly addresses = new AddressTable();
  private readonly ifindex: number[] = [];
  private readonly meta: number[] = [];
  private readonly ports: number[] = [];
  private readonly srcId: number[] = [];
  private readonly dstId: number[] = [];
  private readonly packets: number[] = [];
  private readonly bytes: number[] = [];
  private readonly tcpFlags: number[] = [];
  private readonly firstSeen: number[] = [];
  private readonly lastSeen: number[] = [];
  /** cgroup id of the flow's local socket (attribution): the first non-zero seen */
  private readonly cgroup: number[] = [];
  private count = 0;
  private startMs = NaN;
  private endMs = NaN;
  private ifaceName: IfaceNamer = (i) => `if${i}`;
  private out: RecordBatch | undefined;
  private labels: CgroupLabeler | undefined;
  /** windows closed so far */
  windows = 0;

  constructor(
    readonly intervalMs: number,
    readonly node: string,
  ) {
    if (!(intervalMs > 0)) throw new RangeError(`coalescing interval must be positive, got ${intervalMs}`);
  }

  /** Flows held in the open window. */
  get flows(): number {
    return this.count;
  }

  get open(): boolean {
    return this.count > 0;
  }

  /** Adds an export's records; `emit` gets the windows this completes (one batch per window, possibly in chunks). */
  add(batch: RecordBatch, emit: (b: RecordBatch) => void): void {
    if (batch.count === 0) return;
    // an export that would stretch the open window past the interval starts a new one
    if (this.open && batch.endMs - this.startMs > this.intervalMs) this.close(emit);
    if (!this.open) this.startMs = batch.startMs;
    this.endMs = Math.max(Number.isNaN(this.endMs) ? batch.endMs : this.endMs, batch.endMs);
    this.ifaceName = batch.ifaceName;
    this.labels = batch.labels;
    const addresses = batch.addresses;
    const cgroup = batch.cgroup;
    for (let i = 0; i < batch.count; i++) {
      const src = addresses.text(batch.srcId[i]);
      const dst = addresses.text(batch.dstId[i]);
      const key = `${batch.ifindex[i]},${batch.meta[i]},${batch.ports[i]},${src},${dst}`;
      const row = this.index.get(key);
      if (row === undefined) {
        const r = this.count++;
        this.index.set(key, r);
        this.ifindex[r] = batch.ifindex[i];
        this.meta[r] = batch.meta[i];
        this.ports[r] = batch.ports[i];
        this.srcId[r] = this.addresses.intern(src);
        this.dstId[r] = this.addresses.intern(dst);
        this.packets[r] = batch.packets[i];
        this.bytes[r] = batch.bytes[i];
        this.tcpFlags[r] = batch.tcpFlags[i];
        this.firstSeen[r] = batch.firstSeen[i];
        this.lastSeen[r] = batch.lastSeen[i];
        this.cgroup[r] = cgroup[i];
      } else {
        this.packets[row] += batch.packets[i];
        this.bytes[row] += batch.bytes[i];
        this.tcpFlags[row] |= batch.tcpFlags[i];
        if (batch.firstSeen[i] < this.firstSeen[row]) this.firstSeen[row] = batch.firstSeen[i];
        if (batch.lastSeen[i] > this.lastSeen[row]) this.lastSeen[row] = batch.lastSeen[i];
        if (this.cgroup[row] === 0) this.cgroup[row] = cgroup[i];
      }
    }
    if (this.endMs - this.startMs >= this.intervalMs) this.close(emit);
  }

  /** Closes the open window if the clock is past its interval (no export came to close it). */
  closeIfDue(nowMs: number, emit: (b: RecordBatch) => void): void {
    if (this.open && nowMs - this.startMs >= this.intervalMs) this.close(emit);
  }

  /** Emits the open window's flows as records and starts afresh. */
  close(emit: (b: RecordBatch) => void): void {
    if (!this.open) return;
    const chunk = 4096;
    if (!this.out || this.out.ifaceName !== this.ifaceName) this.out = new RecordBatch(chunk, this.addresses, this.ifaceName, this.node);
    // the attribution's labeler names the cgroup ids of the summed records too (the sink writes their cgroup, workload, pod, container)
    this.out.labels = this.labels;
    const out = this.out;
    out.startMs = this.startMs;
    out.endMs = this.endMs;
    for (let from = 0; from < this.count; from += chunk) {
      const n = Math.min(chunk, this.count - from);
      for (let k = 0; k < n; k++) {
        const r = from + k;
        out.flowId[k] = r;
        out.ifindex[k] = this.ifindex[r];
        out.meta[k] = this.meta[r];
        out.ports[k] = this.ports[r];
        out.srcId[k] = this.srcId[r];
        out.dstId[k] = this.dstId[r];
        out.packets[k] = this.packets[r];
        out.bytes[k] = this.bytes[r];
        out.tcpFlags[k] = this.tcpFlags[r];
        out.firstSeen[k] = this.firstSeen[r];
        out.lastSeen[k] = this.lastSeen[r];
        out.cgroup[k] = this.cgroup[r];
      }
      out.count = n;
      emit(out);
    }
    for (let r = 0; r < this.count; r++) {
      this.addresses.release(this.srcId[r]);
      this.addresses.release(this.dstId[r]);
    }
    this.index.clear();
    this.count = 0;
    this.startMs = NaN;
    this.endMs = NaN;
    this.windows++;
  }
}
