/**
 * What a node's cgroup ids stand for, as its stream entries said (cgroup,
 * workload, pod, container): the labeler of the node's record store on the
 * relay, as the cgroup resolver is on the agent.
 *
 * A label is kept while a record of the node's store carries its id; the
 * store's ring forgets records, so the labels of ids no stored record carries
 * any more are pruned. Entries are input from outside: a node that names more
 * cgroups than MAX_LABELS, or more than MAX_LABEL_BYTES of text, within its
 * store's records gets no label for the further ones (their records say
 * `cgroup: null`, their counts are kept) and the loss is counted.
 */
import type { CgroupLabel } from '../redis/entry-encoding.js';

/** distinct cgroups a node's records may name at once (a busy Kubernetes node has a few hundred) */
export const MAX_LABELS = 4096;
/** text of those labels, at most (~150 bytes for a pod's) */
export const MAX_LABEL_BYTES = 1 << 20;

interface Held {
  label: CgroupLabel;
  /** sequence number (in the node's store) of the last record with this id */
  lastSeq: number;
  bytes: number;
}

const sizeOf = (l: CgroupLabel): number => l.path.length + l.workload.length + (l.pod ? l.pod.namespace.length + l.pod.name.length : 0) + (l.container?.length ?? 0);

export class NodeCgroupLabels {
  private readonly held = new Map<number, Held>();
  private bytes = 0;
  /** the store's oldest sequence number at the last prune */
  private prunedAt = -Infinity;
  /** labels not kept (over the bounds) */
  dropped = 0;

  constructor(
    /** the store's oldest record still held */
    private readonly oldestSeq: () => number,
    private readonly maxLabels = MAX_LABELS,
    private readonly maxBytes = MAX_LABEL_BYTES,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** The label of a cgroup id (the store's labeler). */
  readonly lookup = (id: number): CgroupLabel | undefined => this.held.get(id)?.label;

  /**
   * The store's record `seq` carries cgroup `id`, which its entry labels
   * `label` (undefined: the entry named no label; an earlier one stays).
   */
  note(id: number, label: CgroupLabel | undefined, seq: number): void {
    const h = this.held.get(id);
    if (h !== undefined) {
      h.lastSeq = seq;
      if (label !== undefined && label !== h.label) {
        const bytes = sizeOf(label);
        if (this.bytes - h.bytes + bytes > this.maxBytes) return void this.dropped++;
        this.bytes += bytes - h.bytes;
        h.label = label;
        h.bytes = bytes;
      }
      return;
    }
    if (label === undefined) return;
    const bytes = sizeOf(label);
    if (this.held.size >= this.maxLabels || this.bytes + bytes > this.maxBytes) this.prune();
    if (this.held.size >= this.maxLabels || this.bytes + bytes > this.maxBytes) return void this.dropped++;
    this.held.set(id, { label, lastSeq: seq, bytes });
    this.bytes += bytes;
  }

  /**
   * Forgets the labels of ids no stored record carries. A prune frees only
   * ids last seen in records forgotten since the previous one, so it runs
   * once the store has forgotten a quarter of the bound's worth of records:
   * its walk costs O(1) per stored record.
   */
  private prune(): void {
    const oldest = this.oldestSeq();
    if (oldest - this.prunedAt < this.maxLabels / 4) return;
    this.prunedAt = oldest;
    for (const [id, h] of this.held) {
      if (h.lastSeq >= oldest) continue;
      this.held.delete(id);
      this.bytes -= h.bytes;
    }
  }
}

/**
 * Fleet-wide numbers for (node, cgroup id): a cgroup id is a host's own (an
 * inode number), so two nodes' ids may be equal and stand for different
 * cgroups. The relay's top-talkers windows, which group by cgroup id, take
 * these numbers and name them through `labeler`. A number stays while the
 * open bucket may hold it: after a bucket closes (its groups are named by
 * then), numbers not used since the previous close are given back.
 */
export class FleetCgroupIds {
  /** by fleet number (0: none): the node's labels and its cgroup id */
  private readonly owners: ({ labels: NodeCgroupLabels; numbers: Map<number, number>; cgroupId: number; usedAt: number } | undefined)[] = [undefined];
  private readonly free: number[] = [];
  private generation = 0;

  get size(): number {
    return this.owners.length - 1 - this.free.length;
  }

  /** The fleet number of a node's cgroup id; `numbers` is the node's own index of them. */
  number(labels: NodeCgroupLabels, numbers: Map<number, number>, cgroupId: number): number {
    let n = numbers.get(cgroupId);
    if (n === undefined) {
      n = this.free.pop() ?? this.owners.length;
      this.owners[n] = { labels, numbers, cgroupId, usedAt: this.generation };
      numbers.set(cgroupId, n);
    } else this.owners[n]!.usedAt = this.generation;
    return n;
  }

  /** Names a fleet number as its node's entries named its cgroup id. */
  readonly labeler = (n: number): CgroupLabel | undefined => {
    const o = this.owners[n];
    return o?.labels.lookup(o.cgroupId);
  };

  /** After a top-talkers bucket closed: numbers unused since the previous close are given back. */
  bucketClosed(): void {
    for (let n = 1; n < this.owners.length; n++) {
      const o = this.owners[n];
      if (o === undefined || o.usedAt >= this.generation) continue;
      o.numbers.delete(o.cgroupId);
      this.owners[n] = undefined;
      this.free.push(n);
    }
    this.generation++;
  }
}
