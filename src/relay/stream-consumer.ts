/**
 * The relay's reader: every node's stream through one consumer group.
 *
 * For each node (found in `flowscope:nodes`, re-read every discoverEveryMs):
 *
 * 1. the group is created at the stream's end (`XGROUP CREATE ... $`) if it
 *    does not exist; its last-delivered ID L is read (XINFO GROUPS);
 * 2. replay: the entries up to L that are within the view's horizon are read
 *    back with XRANGE (not through the group) - the history the relay must
 *    show but the group will not deliver again. At start the replay of all
 *    nodes is merged by ID (IDs follow export time), so the top-talkers
 *    buckets fill in time order;
 * 3. pending entries of this consumer (delivered to a previous run that died
 *    before XACK) are all <= L, so already replayed: they are acknowledged;
 * 4. then new entries come with XREADGROUP `>`, are added to the view and
 *    acknowledged (XACK) right after.
 *
 * Every entry of a stream is thus counted once per relay run: up to L from the
 * replay, after L from the group. Entries another consumer of the group left
 * pending for claimIdleMs (a dead relay sharing the group) are taken over
 * with XAUTOCLAIM: counted if they are after L, acknowledged either way.
 *
 * Redis is input from outside: whatever a client with write access put there
 * must not stop the relay. Every node is read on its own: a key of the wrong
 * type, a deleted group or any other error reply for one node is recorded for
 * that node (status, metrics, a rate-limited log line) and retried later,
 * while the other nodes are read as usual; only a lost connection stops a
 * round. Every entry and interfaces hash value is checked
 * (entry-decoder.ts, entry-encoding.ts: validateEntry, validateInterface);
 * what fails is skipped and counted per node and reason.
 *
 * The hot path (XREADGROUP, XRANGE, XACK) runs on connections of the relay's
 * own (stream-read-connection.ts): replies are decoded from their bytes, the
 * XREADGROUPs of many nodes are on the wire at once, and each node's entries
 * are acknowledged by one XACK right after they are in the view. The rest
 * (discovery, groups, pending entries, interfaces) uses the ioredis client.
 */
import type { SinkLog } from '../redis/stream-sink.js';
import { describeError, isReady, type RedisClient } from '../redis/connection.js';
import {
  DEFAULT_MAX_AGE_MS,
  DEFAULT_MAX_FUTURE_MS,
  isReject,
  validateEntry,
  validateInterface,
  type DecodedEntry,
  type EntryReject,
  type PublishedInterface,
  type RejectReason,
} from '../redis/entry-encoding.js';
import type { FleetView } from './fleet-view.js';
import { flowsKey, interfacesKey, NODES_KEY } from '../redis/keys.js';
import { DecodedRows, EntryDecoder } from '../redis/entry-decoder.js';
import { EntryList, releaseReply, type RawReply } from '../redis/resp-reader.js';
import { RedirectError, StreamReadConnections } from '../redis/stream-read-connection.js';
import { compareIds } from '../redis/stream-id.js';
import { eachConcurrently } from '../lib/each-concurrently.js';

export interface ConsumerOptions {
  client: RedisClient;
  view: FleetView;
  group: string;
  consumer: string;
  /** history replayed at start: entries exported at most this long ago */
  replayWindowMs: number;
  /** entries per read */
  readCount?: number;
  /** pause when a round read nothing */
  idleSleepMs?: number;
  discoverEveryMs?: number;
  /** entries pending this long at another consumer are taken over */
  claimIdleMs?: number;
  interfacesEveryMs?: number;
  /** entry times later than now by more than this are refused (default a day) */
  maxFutureMs?: number;
  /** entry times earlier than now by more than this are refused (default 30 days) */
  maxAgeMs?: number;
  /** most nodes read; further names in flowscope:nodes are ignored (and counted) */
  maxNodes?: number;
  /** the nodes this consumer reads (default all): a scaled-out relay reads its partitions' nodes only */
  owns?: (node: string) => boolean;
  /** the relay's stream-read connections, shared by its consumers (default: this consumer's own, closed at stop) */
  reads?: StreamReadConnections;
  /**
   * read with XREADGROUP NOACK: entries are not kept pending, so there is
   * nothing to XACK. Only for a group no other consumer reads (a scaled-out
   * relay's own group): its recovery is the replay from the stream, and no
   * one would claim what it left pending.
   */
  noAck?: boolean;
  log?: SinkLog;
  clock?: () => number;
}

/** What went wrong with one node's keys and entries. */
export interface NodeHealth {
  /** entries and interfaces hash values refused, by reason */
  rejected: Map<RejectReason, number>;
  /** error replies for this node's keys (wrong type, no group, ...) */
  errors: number;
  lastError?: string;
  lastErrorAtMs?: number;
}

/** A node name as the relay accepts it from flowscope:nodes: 1-256 characters, no control characters. */
const NODE_NAME = /^[^\x00-\x1f\x7f]{1,256}$/;

/** An error reply from Redis about a key or command (WRONGTYPE, NOGROUP, ERR ...), as opposed to a lost connection. */
export function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

const LOG_EVERY_MS = 10_000;
/** XREADGROUPs on the wire at once, ahead of the node being decoded */
const READ_AHEAD = 8;
/**
 * A node whose stream had nothing new is read again after a wait that
 * doubles from IDLE_MIN_MS to IDLE_MAX_MS (back to none once it has
 * entries). Agents export every few seconds (10 s by default): without it a
 * relay asked each of a thousand streams for new entries on every round,
 * nearly all of them empty, and most of its and Redis's time at a light load
 * went into those reads. An entry waits at most IDLE_MAX_MS longer.
 */
const IDLE_MIN_MS = 25;
const IDLE_MAX_MS = 500;
/** per-node round trips of the ioredis client (groups, interfaces hashes) in flight at once */
const PER_NODE_CONCURRENCY = 64;

type RawEntry = [id: string, fields: string[] | null];

interface NodeCursor {
  node: string;
  key: string;
  /** the group's last-delivered ID when this run took the node over: replayed up to here */
  replayedTo: string;
  /** not read again before this time (performance.now() ms): its last reads found nothing */
  idleUntil?: number;
  /** the current wait after an empty read (ms): doubles from IDLE_MIN_MS to IDLE_MAX_MS, 0 after entries */
  idleMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref?.());

export class StreamConsumer {
  private readonly cursors = new Map<string, NodeCursor>();
  private readonly readCount: number;
  private readonly clock: () => number;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private lastDiscover = 0;
  private lastClaim = 0;
  private lastInterfaces = 0;
  /** per node: the interfaces hash values last refused (field -> value), so each bad value is counted once */
  private readonly badInterfaceValues = new Map<string, Map<string, string>>();
  /** node names in flowscope:nodes that are not read (bad names, or past maxNodes) */
  readonly ignoredNodes = new Set<string>();
  readonly health = new Map<string, NodeHealth>();
  private rejectsSinceLog = 0;
  private lastRejectLogMs = -Infinity;
  private rejectExample: { node: string; id: string; reason: RejectReason; detail: string } | undefined;
  /** the first discovery and its replay are done */
  caughtUp = false;
  replayed = 0;
  recovered = 0;
  /** entries and interfaces hash values refused, all nodes and reasons */
  badEntries = 0;
  acked = 0;
  rounds = 0;
  errors = 0;
  lastError: string | undefined;

  private readonly reads: StreamReadConnections;
  private readonly decoder: EntryDecoder;
  private readonly rows: DecodedRows;
  private readonly list = new EntryList();
  /** XACKs a lost connection left unsent, sent again first thing next round */
  private readonly unacknowledged: { cursor: NodeCursor; bytes: Buffer }[] = [];

  constructor(private readonly options: ConsumerOptions) {
    this.readCount = options.readCount ?? 1000;
    this.clock = options.clock ?? Date.now;
    this.reads = options.reads ?? new StreamReadConnections(options.client, `flowscope-relay-read-${options.consumer}`);
    this.decoder = new EntryDecoder(options.view.addresses);
    this.rows = new DecodedRows(options.view.addresses);
  }

  start(): void {
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    if (!this.options.reads) this.reads.close();
  }

  /** Entries decoded by the checks' slow path (not in an agent's plain form, or refused). */
  get slowDecodes(): number {
    return this.decoder.slow;
  }

  get nodeCount(): number {
    return this.cursors.size;
  }

  private async run(): Promise<void> {
    const o = this.options;
    while (!this.stopped) {
      if (!isReady(o.client)) {
        await sleep(200);
        continue;
      }
      try {
        const now = this.clock();
        if (!this.caughtUp || now - this.lastDiscover >= (o.discoverEveryMs ?? 5000)) await this.discover();
        await this.retryAcks();
        if (now - this.lastInterfaces >= (o.interfacesEveryMs ?? 2000)) await this.readInterfaces();
        // a group read with NOACK never has pending entries: nothing to claim
        if (!o.noAck && now - this.lastClaim >= (o.claimIdleMs ?? 60_000) / 2) await this.claimAbandoned();
        const n = await this.readNew();
        await o.view.advance();
        this.rounds++;
        if (this.lastError && n >= 0) this.lastError = undefined;
        if (n === 0) await sleep(o.idleSleepMs ?? 100);
      } catch (err) {
        this.errors++;
        const message = describeError(err as Error);
        if (message !== this.lastError) o.log?.warn({ err: message }, 'relay: reading Redis failed; retrying');
        this.lastError = message;
        await sleep(500);
      }
    }
  }

  /** Takes over the nodes not seen yet (see the steps above). */
  private async discover(): Promise<void> {
    const { client, group } = this.options;
    let names: string[];
    try {
      names = (await client.smembers(NODES_KEY)).sort();
    } catch (err) {
      if (!isReplyError(err)) throw err;
      // flowscope:nodes is not a set: keep reading the nodes already known.
      this.keyFailed('', NODES_KEY, err as Error);
      names = [];
    }
    const maxNodes = this.options.maxNodes ?? 4096;
    const fresh: NodeCursor[] = [];
    // Names are taken a batch at a time, as many as there is room for, so that a key Redis refuses
    // (tried again at the next discovery) leaves its room to the next name, as when taken one by one.
    let next = 0;
    while (next < names.length) {
      const batch: string[] = [];
      for (; next < names.length && batch.length < PER_NODE_CONCURRENCY; next++) {
        const node = names[next];
        if (this.cursors.has(node) || this.ignoredNodes.has(node)) continue;
        if (this.options.owns && !this.options.owns(node)) continue;
        const full = this.cursors.size + fresh.length + batch.length >= maxNodes;
        // full with a batch under way: that batch first (one of its keys may fail and leave room)
        if (full && batch.length > 0 && NODE_NAME.test(node)) break;
        if (!NODE_NAME.test(node) || full) {
          if (this.ignoredNodes.size < 10_000) this.ignoredNodes.add(node);
          this.options.log?.warn({ node: node.slice(0, 80), nodes: this.cursors.size, maxNodes }, 'relay: node name in flowscope:nodes ignored (malformed, or more nodes than --max-nodes)');
          continue;
        }
        batch.push(node);
      }
      // in the names' order, whatever order the round trips end in
      const taken: (NodeCursor | undefined)[] = new Array(batch.length);
      await eachConcurrently(batch, PER_NODE_CONCURRENCY, async (node, i) => {
        const key = flowsKey(node);
        try {
          try {
            await client.xgroup('CREATE', key, group, '$', 'MKSTREAM');
          } catch (err) {
            if (!/BUSYGROUP/.test((err as Error).message)) throw err;
          }
          taken[i] = { node, key, replayedTo: await this.lastDelivered(key) };
        } catch (err) {
          if (!isReplyError(err) && !(err instanceof GroupVanished)) throw err;
          // Wrong type, or anything else Redis refuses for this key: tried again at the next discovery.
          this.keyFailed(node, key, err as Error);
        }
      });
      for (const c of taken) if (c !== undefined) fresh.push(c);
    }
    if (fresh.length > 0) {
      await this.replay(fresh);
      await eachConcurrently(fresh, PER_NODE_CONCURRENCY, async (c) => {
        try {
          await this.ackOwnPending(c);
        } catch (err) {
          if (!isReplyError(err)) throw err;
          this.keyFailed(c.node, c.key, err as Error);
        }
      });
      for (const c of fresh) {
        this.cursors.set(c.node, c);
        this.options.view.node(c.node);
      }
      this.options.log?.info({ nodes: fresh.map((c) => c.node), replayed: this.replayed }, 'relay: reading nodes');
    }
    this.lastDiscover = this.clock();
    this.caughtUp = true;
  }

  private async lastDelivered(key: string): Promise<string> {
    const groups = (await this.options.client.xinfo('GROUPS', key)) as unknown[][];
    for (const g of groups) {
      const fields = pairs(g);
      if (fields.name === this.options.group) return String(fields['last-delivered-id']);
    }
    throw new GroupVanished(`consumer group ${this.options.group} vanished from ${key}`);
  }

  /** Reads back each node's entries up to its replayedTo, merged across nodes by ID. */
  private async replay(cursors: NodeCursor[]): Promise<void> {
    const fromId = `${Math.max(0, this.clock() - this.options.replayWindowMs)}-0`;
    const readers = cursors.filter((c) => c.replayedTo !== '0-0').map((c) => new RangeReader(this.reads, c, fromId, this.readCount));
    // A node whose stream cannot be read (its key replaced meanwhile) leaves the replay; the others go on.
    const fill = async (r: RangeReader): Promise<void> => {
      try {
        await r.fill();
      } catch (err) {
        if (!isReplyError(err)) throw err;
        if (!(err instanceof RedirectError)) this.keyFailed(r.cursor.node, r.cursor.key, err as Error);
        r.done = true;
      }
    };
    await Promise.all(readers.map(fill));
    const view = this.options.view;
    let active = readers.filter((r) => !r.done);
    // Bucket by bucket: all nodes' entries of the oldest top-talkers bucket any reader holds, then the next.
    // (Within a bucket the order does not matter; entry by entry across nodes would make runs of one entry.)
    while (active.length > 0) {
      let bucket = Infinity;
      for (const r of active) bucket = Math.min(bucket, view.bucketOf(r.headMs));
      for (const r of active) {
        while (!r.done && view.bucketOf(r.headMs) <= bucket) {
          const run = r.takeWhile((ms) => view.bucketOf(ms) <= bucket);
          await this.ingestList(r.cursor.node, r.list, run.from, run.to);
          this.replayed += run.to - run.from;
          if (r.empty) await fill(r);
        }
      }
      active = active.filter((r) => !r.done);
    }
  }

  /** Entries this consumer received in an earlier run and never acknowledged: replayed, so only acknowledged. */
  private async ackOwnPending(c: NodeCursor): Promise<void> {
    const { client, group, consumer } = this.options;
    for (;;) {
      const reply = (await client.xreadgroup('GROUP', group, consumer, 'COUNT', this.readCount, 'STREAMS', c.key, '0')) as [string, RawEntry[]][] | null;
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) return;
      await client.xack(c.key, group, ...entries.map((e) => e[0]));
      this.recovered += entries.length;
    }
  }

  /** Entries another consumer left pending for claimIdleMs: taken over, counted if not replayed. */
  private async claimAbandoned(): Promise<void> {
    const { client, group, consumer } = this.options;
    const minIdle = this.options.claimIdleMs ?? 60_000;
    for (const c of this.cursors.values()) {
      let start = '0-0';
      try {
        do {
          const [next, claimed, deleted] = (await client.xautoclaim(c.key, group, consumer, minIdle, start, 'COUNT', this.readCount)) as [string, RawEntry[], string[]?];
          const fresh = claimed.filter((e) => e[1] !== null && compareIds(e[0], c.replayedTo) > 0);
          if (fresh.length > 0) await this.ingest(c.node, fresh);
          const ids = claimed.map((e) => e[0]);
          if (ids.length > 0) await client.xack(c.key, group, ...ids);
          this.recovered += ids.length + (deleted?.length ?? 0);
          start = next;
        } while (start !== '0-0');
      } catch (err) {
        if (!isReplyError(err)) throw err;
        this.keyFailed(c.node, c.key, err as Error);
      }
    }
    this.lastClaim = this.clock();
  }

  /**
   * One round of XREADGROUP > over every node; returns the entries read.
   * Reads go out READ_AHEAD / 2 nodes at a time, in one write, while the
   * nodes before are decoded; each node's entries are acknowledged once they
   * are in the view, its XACK sent with the next batch of reads (one write),
   * all awaited at the end of the round.
   */
  private async readNew(): Promise<number> {
    const { group, consumer } = this.options;
    const noAck = this.options.noAck === true;
    // real time, not the data clock (a test's clock may stand still)
    const now = performance.now();
    const cursors: NodeCursor[] = [];
    for (const c of this.cursors.values()) if ((c.idleUntil ?? 0) <= now) cursors.push(c);
    const replies: (Promise<RawReply> | undefined)[] = new Array(cursors.length);
    let sent = 0;
    const readUpTo = (end: number): void => {
      for (; sent < Math.min(end, cursors.length); sent++) {
        const p = this.reads.xreadgroup(cursors[sent].key, group, consumer, this.readCount, noAck);
        p.catch(() => undefined); // handled where awaited
        replies[sent] = p;
      }
    };
    const acks: Promise<void>[] = [];
    let toAck: { cursor: NodeCursor; bytes: Buffer }[] = [];
    const sendAcks = (): void => {
      for (const a of toAck) acks.push(this.ack(a.cursor, a.bytes));
      toAck = [];
    };
    let total = 0;
    try {
      for (let k = 0; k < cursors.length; k++) {
        if (k === sent - READ_AHEAD / 2 || k === sent) {
          // in one tick: the acknowledgements so far and the next reads share a write
          sendAcks();
          readUpTo(k + READ_AHEAD);
        }
        const c = cursors[k];
        let reply: RawReply;
        try {
          reply = await replies[k]!;
        } catch (err) {
          if (!isReplyError(err)) throw err;
          await this.readFailed(c, err as Error);
          continue;
        } finally {
          replies[k] = undefined;
        }
        const health = this.health.get(c.node);
        if (health?.lastError !== undefined) health.lastError = undefined; // readable again
        const list = this.list;
        try {
          list.readGroupReply(reply);
          const n = list.count;
          if (n === 0) {
            c.idleMs = Math.min(IDLE_MAX_MS, Math.max(IDLE_MIN_MS, 2 * (c.idleMs ?? 0)));
            c.idleUntil = now + c.idleMs;
            continue;
          }
          c.idleMs = 0;
          c.idleUntil = 0;
          await this.ingestList(c.node, list, 0, n);
          if (!noAck) toAck.push({ cursor: c, bytes: this.reads.xackBytes(c.key, group, list, 0, n) });
          this.acked += n;
          total += n;
        } finally {
          releaseReply(reply);
        }
      }
      sendAcks();
    } finally {
      // a failed round leaves no read or acknowledgement unobserved
      await Promise.allSettled(replies.filter((r) => r !== undefined));
      for (const a of toAck) this.unacknowledged.push(a);
      const settled = await Promise.allSettled(acks);
      const failed = settled.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    return total;
  }

  /**
   * Acknowledges entries that are in the view. When the connection fails
   * first, the same XACK is sent again at the start of the next round: the
   * entries must not stay pending, or claimAbandoned would take them over
   * and count them again.
   */
  private async ack(c: NodeCursor, bytes: Buffer): Promise<void> {
    try {
      await this.reads.ack(c.key, bytes);
    } catch (err) {
      if (isReplyError(err)) this.keyFailed(c.node, c.key, err as Error);
      else {
        this.unacknowledged.push({ cursor: c, bytes });
        throw err;
      }
    }
  }

  /** Sends the acknowledgements a lost connection left unsent. */
  private async retryAcks(): Promise<void> {
    while (this.unacknowledged.length > 0) {
      const { cursor, bytes } = this.unacknowledged[0];
      try {
        await this.reads.ack(cursor.key, bytes);
      } catch (err) {
        if (!isReplyError(err)) throw err;
        this.keyFailed(cursor.node, cursor.key, err as Error);
      }
      this.unacknowledged.shift();
    }
  }

  /** An error reply to a node's XREADGROUP: the group is recreated when it is gone; other errors are recorded for the node. */
  private async readFailed(c: NodeCursor, err: Error): Promise<void> {
    if (err instanceof RedirectError) return; // the slot moved: read again at the next round
    if (!/NOGROUP/.test(err.message)) {
      // e.g. WRONGTYPE: the key is no stream now; the other nodes are read as usual.
      this.keyFailed(c.node, c.key, err);
      return;
    }
    // The stream or group was deleted (or Redis lost its data): start again after what this run has.
    const last = this.options.view.nodes.get(c.node)?.lastId ?? '$';
    await this.options.client.xgroup('CREATE', c.key, this.options.group, last, 'MKSTREAM').catch((e: Error) => {
      if (!isReplyError(e)) throw e;
      this.keyFailed(c.node, c.key, e);
    });
  }

  private limits(node: string): { node: string; nowMs: number; maxFutureMs: number; maxAgeMs: number } {
    return {
      node,
      nowMs: this.clock(),
      maxFutureMs: this.options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS,
      maxAgeMs: this.options.maxAgeMs ?? DEFAULT_MAX_AGE_MS,
    };
  }

  /** Checks, decodes and adds entries [from, to) of a list of node's stream. */
  private async ingestList(node: string, list: EntryList, from: number, to: number): Promise<void> {
    if (to <= from) return;
    const rows = this.rows;
    this.decoder.decode(list, from, to, this.limits(node), rows, (i, r) => this.rejected(node, list.id(i), r));
    try {
      await this.options.view.ingestRows(node, rows, list.id(to - 1));
    } finally {
      rows.clear();
    }
  }

  /** Entries read through ioredis (taken over from another consumer): the checks' reference path. */
  private async ingest(node: string, raw: RawEntry[]): Promise<void> {
    const decoded: DecodedEntry[] = [];
    const limits = this.limits(node);
    for (const [id, fields] of raw) {
      const d = validateEntry(fields, limits);
      if (isReject(d)) this.rejected(node, id, d);
      else decoded.push(d);
    }
    if (raw.length > 0) await this.options.view.ingest(node, decoded, raw[raw.length - 1][0]);
  }

  /** Reads each node's interface counters hash; values that fail the checks are left out (and counted once). */
  private async readInterfaces(): Promise<void> {
    await eachConcurrently([...this.cursors.values()], PER_NODE_CONCURRENCY, async (c) => {
      const key = interfacesKey(c.node);
      let hash: Record<string, string>;
      try {
        hash = await this.options.client.hgetall(key);
      } catch (err) {
        if (!isReplyError(err)) throw err;
        this.keyFailed(c.node, key, err as Error);
        return;
      }
      const reports: PublishedInterface[] = [];
      const badBefore = this.badInterfaceValues.get(c.node);
      const bad = new Map<string, string>();
      for (const [field, value] of Object.entries(hash)) {
        const r = validateInterface(value, c.node);
        if (!isReject(r)) {
          reports.push(r);
          continue;
        }
        bad.set(field, value);
        if (badBefore?.get(field) !== value) this.rejected(c.node, `${key} ${field.slice(0, 40)}`, r);
      }
      if (bad.size > 0) this.badInterfaceValues.set(c.node, bad);
      else this.badInterfaceValues.delete(c.node);
      reports.sort((a, b) => a.ifindex - b.ifindex);
      this.options.view.node(c.node).interfaces = reports;
    });
    this.lastInterfaces = this.clock();
  }

  private nodeHealth(node: string): NodeHealth {
    let h = this.health.get(node);
    if (!h) this.health.set(node, (h = { rejected: new Map(), errors: 0 }));
    return h;
  }

  /** Counts a refused entry or hash value; logs a summary at most every 10 s. */
  private rejected(node: string, id: string, r: EntryReject): void {
    const h = this.nodeHealth(node);
    h.rejected.set(r.reason, (h.rejected.get(r.reason) ?? 0) + 1);
    this.badEntries++;
    this.rejectsSinceLog++;
    this.rejectExample ??= { node, id, reason: r.reason, detail: r.detail };
    const now = this.clock();
    if (now - this.lastRejectLogMs >= LOG_EVERY_MS) {
      this.options.log?.warn({ rejected: this.rejectsSinceLog, rejectedTotal: this.badEntries, example: this.rejectExample }, 'relay: entries refused (see relay.nodes[].rejected in /api/v1/status)');
      this.lastRejectLogMs = now;
      this.rejectsSinceLog = 0;
      this.rejectExample = undefined;
    }
  }

  /** Records an error reply for one node's key; logged when it changes, else at most every 10 s per node. */
  private keyFailed(node: string, key: string, err: Error): void {
    const h = this.nodeHealth(node);
    const message = `${key}: ${err.message.split('\n')[0]}`;
    const now = this.clock();
    h.errors++;
    if (message !== h.lastError || now - (h.lastErrorAtMs ?? -Infinity) >= LOG_EVERY_MS) {
      this.options.log?.warn({ node, key, err: message, errors: h.errors }, 'relay: cannot read a node\'s key; reading the other nodes');
      h.lastErrorAtMs = now;
    }
    h.lastError = message;
  }
}

class GroupVanished extends Error {}

/** [k1, v1, k2, v2, ...] as an object. */
function pairs(list: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = list[i + 1];
  return out;
}

/** Pages through one stream with XRANGE, from an ID (inclusive) to the cursor's replayedTo (inclusive). */
class RangeReader {
  readonly list = new EntryList();
  private reply: RawReply | undefined;
  private pos = 0;
  private next: string;
  done = false;

  constructor(
    private readonly reads: StreamReadConnections,
    readonly cursor: NodeCursor,
    from: string,
    private readonly count: number,
  ) {
    this.next = from;
  }

  get empty(): boolean {
    return this.pos >= this.list.count;
  }

  get headMs(): number {
    return this.list.idMs(this.pos);
  }

  async fill(): Promise<void> {
    if (this.done || !this.empty) return;
    if (this.reply) releaseReply(this.reply);
    this.reply = await this.reads.xrange(this.cursor.key, this.next, this.cursor.replayedTo, this.count);
    this.list.readRangeReply(this.reply);
    this.pos = 0;
    if (this.list.count === 0) {
      this.done = true;
      releaseReply(this.reply);
      this.reply = undefined;
    } else this.next = `(${this.list.id(this.list.count - 1)}`;
  }

  /** The buffered entries, from the head, whose ID's ms part passes the test; at least one. */
  takeWhile(test: (ms: number) => boolean): { from: number; to: number } {
    const l = this.list;
    let end = this.pos + 1;
    while (end < l.count && test(l.idMs(end))) end++;
    const run = { from: this.pos, to: end };
    this.pos = end;
    return run;
  }
}
