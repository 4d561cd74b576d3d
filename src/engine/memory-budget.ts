/**
 * The agent's memory budget (`--memory-limit`) and the `--max-flows` it
 * affords, so that a flood of new flows cannot grow the agent past its
 * container's limit.
 *
 * What the budget has to hold, besides the flow table:
 * - the kernel's two flow maps (preallocated, charged to the agent's memory
 *   cgroup): 2 × flow-map-size × (48-byte key + 72 bytes of hash-table
 *   overhead + 40 bytes per possible CPU), docs/deploy.md "Sizing";
 * - the two drain buffers: 2 × flow-map-size × 88 bytes;
 * - the record store and its index: store-size × (90 + 40) bytes
 *   (record-index.ts);
 * - the Redis sink's queue when Redis is configured: redis-buffer × 508 bytes;
 * - the per-interface rate history, all its interface slots in use
 *   (interface-history.ts): about 5 MiB at a 1 s poll;
 * - Node.js itself with its code, HTTP server and metrics (RUNTIME_BYTES).
 *
 * The flow table's slots are more than the flows it tracks: a poll can bring
 * up to flow-map-size new flows before its sweep evicts them, and a flow that
 * ends keeps its slot (and addresses) while the open top-talkers bucket reads
 * it; older flows free theirs at once (flow-table.ts). Eviction takes the
 * oldest flows, so under a flood at the kernel map's rate (flow-map-size new
 * flows per poll) the slots in use are
 *   max(max-flows, P × flow-map-size) + flow-map-size,  P = ceil(top-bucket / poll-interval)
 * The budget gives max-flows = slots it affords - flow-map-size, and fits when
 * it also affords the flood's (P + 1) × flow-map-size slots. BYTES_PER_FLOW is
 * the resident memory per slot measured under the worst pattern, every flow a
 * new source address (a SYN flood with random sources).
 */
import { INDEX_BYTES_PER_ROW } from './record-index.js';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { interfaceHistoryBytes } from './interface-history.js';

/**
 * Resident bytes per flow-table slot under a random-source SYN flood: record
 * (128), index, interned address, top-talkers columns and close scratch, V8
 * heap slack. Measured: about 430 B per slot (test/e2e/flood.test.ts, 45 s of
 * hping3 --rand-source: RSS 402 MiB at 732,160 slots, 90 MiB idle); 512 keeps
 * a margin for heap growth and other CPU counts. Since top talkers answer up
 * to the last poll, a query may add scratch of its own for the open bucket
 * (about 50 B per slot at worst, by=pair) and the open bucket keeps each
 * flow's cgroup id (8 B): still inside the margin.
 */
export const BYTES_PER_FLOW = 512;
/** Node.js, the agent's code, fastify, prom-client and GC headroom, idle. */
export const RUNTIME_BYTES = 96 * 1024 * 1024;
export const BYTES_PER_STORED_RECORD = 90;
/** The record store's index, per record (links and buckets; record-index.ts). */
export const BYTES_PER_INDEXED_RECORD = INDEX_BYTES_PER_ROW;
export const BYTES_PER_REDIS_RECORD = 508;
export const DRAIN_BYTES_PER_ENTRY = 2 * 88;
/** The least max-flows the budget may give: one full drain of the default map. */
export const MIN_BUDGET_FLOWS = 65_536;
export const DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024;

export function kernelMapBytes(flowMapSize: number, possibleCpus: number): number {
  return 2 * flowMapSize * (48 + 72 + 40 * possibleCpus);
}

export interface MemoryBudgetInput {
  memoryLimit: number;
  flowMapSize: number;
  possibleCpus: number;
  storeSize: number;
  pollIntervalMs: number;
  topBucketMs: number;
  /** records the Redis sink may queue; 0 without Redis */
  redisBuffer: number;
}

export interface MemoryBudget {
  memoryLimit: number;
  kernelMaps: number;
  drainBuffers: number;
  /** the record store with its index */
  store: number;
  redisQueue: number;
  /** the per-interface rate history at its largest */
  interfaceHistory: number;
  runtime: number;
  /** slots a flood at the kernel map's rate holds whatever max-flows is: a top-talkers bucket's new flows and one drain's */
  floodSlots: number;
  /** flow-table slots the budget affords */
  slots: number;
  bytesPerFlow: number;
  /** the max-flows the budget affords (at least MIN_BUDGET_FLOWS) */
  maxFlows: number;
  /** false when the fixed costs leave room for fewer than MIN_BUDGET_FLOWS flows (max-flows is then MIN_BUDGET_FLOWS, over budget) */
  fits: boolean;
  /** the budget also holds the slots of a flood at the kernel map's rate (floodSlots); if not, such a flood can exceed it by (floodSlots - slots) x bytesPerFlow */
  floodFits: boolean;
}

export function memoryBudget(input: MemoryBudgetInput): MemoryBudget {
  const kernelMaps = kernelMapBytes(input.flowMapSize, input.possibleCpus);
  const drainBuffers = input.flowMapSize * DRAIN_BYTES_PER_ENTRY;
  const store = input.storeSize * (BYTES_PER_STORED_RECORD + BYTES_PER_INDEXED_RECORD);
  const redisQueue = input.redisBuffer * BYTES_PER_REDIS_RECORD;
  const interfaceHistory = interfaceHistoryBytes(input.pollIntervalMs);
  const runtime = RUNTIME_BYTES;
  const floodSlots = input.flowMapSize * (Math.ceil(input.topBucketMs / input.pollIntervalMs) + 1);
  const left = input.memoryLimit - kernelMaps - drainBuffers - store - redisQueue - interfaceHistory - runtime;
  const slots = Math.floor(Math.max(0, left) / BYTES_PER_FLOW);
  const affordable = slots - input.flowMapSize;
  const fits = affordable >= MIN_BUDGET_FLOWS;
  return {
    memoryLimit: input.memoryLimit,
    kernelMaps,
    drainBuffers,
    store,
    redisQueue,
    interfaceHistory,
    runtime,
    floodSlots,
    slots,
    bytesPerFlow: BYTES_PER_FLOW,
    maxFlows: Math.max(affordable, MIN_BUDGET_FLOWS),
    fits,
    floodFits: slots >= floodSlots,
  };
}

/** CPUs the kernel sizes per-CPU maps for (/sys/devices/system/cpu/possible: "0-63", "0,2-5"); os.cpus() if unreadable. */
export function possibleCpus(read: () => string = () => readFileSync('/sys/devices/system/cpu/possible', 'utf8')): number {
  try {
    let n = 0;
    for (const part of read().trim().split(',')) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
      if (!m) throw new Error(`bad cpu list part ${part}`);
      n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
    }
    if (n > 0) return n;
  } catch {
    // fall through
  }
  return Math.max(1, cpus().length);
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/** "512Mi", "512MiB", "1Gi", "1.5G", "536870912" to bytes (Kubernetes units: Ki/Mi/Gi binary, k/M/G decimal); undefined if not a size. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = UNITS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.round(Number(m[1]) * unit);
}

/** Bytes as the largest binary unit that divides them ("512Mi"), or MB with one decimal. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [['Ti', 1024 ** 4], ['Gi', 1024 ** 3], ['Mi', 1024 ** 2], ['Ki', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)}MB` : `${bytes}`;
}
