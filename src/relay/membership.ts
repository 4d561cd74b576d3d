/**
 * Scale-out, part 1: which relays are alive, and which relay owns which
 * partition of the fleet.
 *
 * Every relay of a fleet holds a lease in Redis: its id in the sorted set
 * `flowscope:{relays}:live` with the lease's expiry (ms) as the score,
 * renewed every leaseMs / 3, and the URL its peers reach it at in the hash
 * `flowscope:{relays}:urls`. The live relays are the ids whose lease has not
 * expired. A relay that stops leaves at once (ZREM); one that dies (kill -9)
 * drops out when its lease expires, i.e. within leaseMs.
 *
 * The node streams are split into `partitions` partitions by a hash of the
 * node name; each partition belongs to one live relay by rendezvous hashing
 * (the relay with the highest hash of relay id and partition). Every relay
 * computes the same owners from the same live set, with no coordination, and
 * a relay joining or leaving moves only the partitions it gains or had (about
 * 1/n of them).
 *
 * The hash tag keeps both keys in one cluster slot.
 */
import type { RedisClient } from '../redis/connection.js';

export const RELAYS_LIVE_KEY = 'flowscope:{relays}:live';
export const RELAYS_URLS_KEY = 'flowscope:{relays}:urls';
/** relay id -> the partitions it holds and has replayed (comma-separated), for handovers */
export const RELAYS_READY_KEY = 'flowscope:{relays}:ready';

/** FNV-1a 32-bit: the partition of a node, and rendezvous weights. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // final mix (murmur3 fmix32): FNV alone clusters on similar short inputs
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The partition of a node's stream. */
export function partitionOf(node: string, partitions: number): number {
  return fnv1a(node) % partitions;
}

/** The owner of a partition among the live relays (rendezvous hashing); undefined when none is live. */
export function ownerOf(partition: number, live: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const id of live) {
    const w = fnv1a(`${id}/${partition}`);
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}

export interface MembershipOptions {
  client: RedisClient;
  /** this relay's id (its consumer name: stable across restarts) */
  id: string;
  /** where peers reach this relay's API (for fanned-out queries) */
  url?: string;
  partitions: number;
  /** a relay that does not renew its lease for this long is dead (default 3 s) */
  leaseMs?: number;
  clock?: () => number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export class Membership {
  readonly partitions: number;
  private readonly leaseMs: number;
  private readonly clock: () => number;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private stopped = true;
  /** live relay ids, sorted */
  live: string[] = [];
  /** peer id -> URL */
  urls = new Map<string, string>();
  /** called after a heartbeat that changed the live set */
  onChange: (() => void) | undefined;
  /** called after every heartbeat */
  onBeat: (() => void) | undefined;
  /** the partitions this relay holds and has replayed (published at every heartbeat) */
  readyPartitions: (() => number[]) | undefined;
  /** live relay id -> partitions it has replayed */
  ready = new Map<string, Set<number>>();
  lastError: string | undefined;
  beats = 0;
  /** where peers reach this relay (set once its peer endpoint listens) */
  url: string | undefined;

  constructor(private readonly options: MembershipOptions) {
    if (!Number.isInteger(options.partitions) || options.partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${options.partitions}`);
    this.partitions = options.partitions;
    this.leaseMs = options.leaseMs ?? 3000;
    this.clock = options.clock ?? Date.now;
    this.url = options.url;
  }

  get id(): string {
    return this.options.id;
  }

  /** Takes the lease (one heartbeat) and renews it from then on. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.heartbeat();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.beating = this.heartbeat().finally(() => this.schedule());
    }, Math.max(50, Math.floor(this.leaseMs / 3)));
    this.timer.unref?.();
  }

  /** Renews this relay's lease and reads the live set. */
  async heartbeat(): Promise<void> {
    const { client, id } = this.options;
    const url = this.url;
    const now = this.clock();
    try {
      const p = client.pipeline();
      p.zadd(RELAYS_LIVE_KEY, now + this.leaseMs, id);
      if (url) p.hset(RELAYS_URLS_KEY, id, url);
      p.hset(RELAYS_READY_KEY, id, (this.readyPartitions?.() ?? []).join(','));
      // leases expired a minute ago are removed (their URLs too, below)
      p.zremrangebyscore(RELAYS_LIVE_KEY, '-inf', now - 60_000);
      p.zrangebyscore(RELAYS_LIVE_KEY, now, '+inf');
      p.hgetall(RELAYS_READY_KEY);
      p.hgetall(RELAYS_URLS_KEY);
      const replies = await p.exec();
      if (!replies) throw new Error('pipeline not executed');
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0];
      const live = [...new Set([...(replies[replies.length - 3][1] as string[]), ...(this.stopped ? [] : [id])])].sort();
      const ready = replies[replies.length - 2][1] as Record<string, string>;
      this.ready = new Map(live.map((r) => [r, new Set((ready[r] ?? '').split(',').filter(Boolean).map(Number))]));
      const urls = replies[replies.length - 1][1] as Record<string, string>;
      this.urls = new Map(Object.entries(urls).filter(([k]) => live.includes(k)));
      this.beats++;
      this.lastError = undefined;
      if (live.join('\n') !== this.live.join('\n')) {
        const before = this.live;
        this.live = live;
        this.options.log?.info({ relay: id, live, joined: live.filter((x) => !before.includes(x)), left: before.filter((x) => !live.includes(x)) }, 'relay: fleet membership changed');
        this.onChange?.();
      }
      this.onBeat?.();
    } catch (err) {
      // Redis unreachable: keep the last view; this relay's lease may lapse and its partitions move (they come back when it does).
      const message = (err as Error).message.split('\n')[0];
      if (message !== this.lastError) this.options.log?.warn({ err: message }, 'relay: membership heartbeat failed');
      this.lastError = message;
    }
  }

  /** The live relay that owns a partition. */
  owner(partition: number): string | undefined {
    return ownerOf(partition, this.live);
  }

  /** The partitions this relay owns in the current live set. */
  owned(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.partitions; p++) if (this.owner(p) === this.options.id) out.push(p);
    return out;
  }

  /** Leaves the fleet at once (its partitions move to the others at their next heartbeat). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.beating;
    try {
      await this.options.client.zrem(RELAYS_LIVE_KEY, this.options.id);
      await this.options.client.hdel(RELAYS_URLS_KEY, this.options.id);
      await this.options.client.hdel(RELAYS_READY_KEY, this.options.id);
    } catch {
      /* the lease expires by itself */
    }
  }
}
