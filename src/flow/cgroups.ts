/**
 * cgroup v2 id -> path, relative to the cgroup v2 root, from the cgroup
 * filesystem: a cgroup's id is its directory's inode number. Resolved ids are
 * cached; an unknown id makes the resolver read the tree again, at most once
 * per `rescanMs`, so a burst of flows from a new container costs one walk.
 * Also: pod UID -> namespace and name, from the node's /var/log/pods
 * (NAMESPACE_NAME_UID directories), refreshed the same way.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describeCgroup, type Workload } from './workload.js';

/** Where cgroup v2 is mounted (a hybrid host mounts it at /sys/fs/cgroup/unified). */
export function cgroup2Root(mounts = '/proc/mounts'): string | undefined {
  try {
    const line = readFileSync(mounts, 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
    return line?.split(' ')[1];
  } catch {
    return undefined;
  }
}

export interface CgroupResolverOptions {
  /** the cgroup v2 mount; default: from /proc/mounts */
  root?: string;
  /** the kubelet's pod log directory; default /var/log/pods */
  podLogDir?: string;
  /** least time between two walks of the tree (and of the pod directory) */
  rescanMs?: number;
  /** ids kept at most; the oldest go first */
  maxEntries?: number;
  clock?: () => number;
}

export class CgroupResolver {
  readonly root: string | undefined;
  private readonly podLogDir: string;
  private readonly rescanMs: number;
  private readonly maxEntries: number;
  private readonly clock: () => number;
  private readonly paths = new Map<number, string>();
  private readonly workloads = new Map<number, Workload>();
  private pods = new Map<string, { namespace: string; name: string }>();
  private lastWalkMs = -Infinity;
  private lastPodScanMs = -Infinity;
  /** walks of the cgroup tree so far (metrics, tests) */
  walks = 0;

  constructor(options: CgroupResolverOptions = {}) {
    this.root = options.root ?? cgroup2Root();
    this.podLogDir = options.podLogDir ?? '/var/log/pods';
    this.rescanMs = options.rescanMs ?? 1000;
    this.maxEntries = options.maxEntries ?? 65_536;
    this.clock = options.clock ?? Date.now;
  }

  /** The path of cgroup `id` (`/system.slice/nginx.service`), or undefined if it is gone or unknown. */
  path(id: number): string | undefined {
    if (id === 0 || !this.root) return undefined;
    const known = this.paths.get(id);
    if (known !== undefined) return known;
    if (this.clock() - this.lastWalkMs < this.rescanMs) return undefined;
    this.walk();
    return this.paths.get(id);
  }

  /** The workload of cgroup `id`, or undefined when its path is unknown. */
  workload(id: number): Workload | undefined {
    const cached = this.workloads.get(id);
    if (cached) return cached;
    const p = this.path(id);
    if (p === undefined) return undefined;
    const w = describeCgroup(p, (uid) => this.pod(uid));
    // A pod not yet in /var/log/pods is asked again next time.
    if (!w.workload.startsWith('pod:')) this.workloads.set(id, w);
    return w;
  }

  private pod(uid: string): { namespace: string; name: string } | undefined {
    const known = this.pods.get(uid);
    if (known || this.clock() - this.lastPodScanMs < this.rescanMs) return known;
    this.lastPodScanMs = this.clock();
    const pods = new Map<string, { namespace: string; name: string }>();
    try {
      for (const entry of readdirSync(this.podLogDir)) {
        // NAMESPACE_NAME_UID: namespaces and pod names never hold "_"
        const m = /^([^_]+)_([^_]+)_([0-9a-f-]{36})$/.exec(entry);
        if (m) pods.set(m[3], { namespace: m[1], name: m[2] });
      }
    } catch {
      /* no kubelet on this node */
    }
    this.pods = pods;
    return pods.get(uid);
  }

  private walk(): void {
    this.lastWalkMs = this.clock();
    this.walks++;
    if (this.paths.size > this.maxEntries) {
      this.paths.clear();
      this.workloads.clear();
    }
    const visit = (dir: string, rel: string, depth: number) => {
      let ino: number;
      try {
        ino = statSync(dir).ino;
      } catch {
        return; // gone meanwhile
      }
      this.paths.set(ino, rel || '/');
      if (depth > 32) return;
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) visit(path.join(dir, e.name), `${rel}/${e.name}`, depth + 1);
    };
    visit(this.root!, '', 0);
  }
}
