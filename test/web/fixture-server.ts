/**
 * A stand-in for the agent's (or the relay's) HTTP API, serving the contract's
 * routes with synthetic but live data, plus the dashboard plugin. The browser
 * tests use it to exercise the page without a kernel; the e2e test
 * (dashboard.e2e.test.ts) uses the real agent instead.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { InterfaceDelta } from '../../src/datapath/types.js';
import { historyRoute } from '../../src/api/routes/history.js';
import { InterfaceAccounting } from '../../src/engine/interface-accounting.js';
import { InterfaceHistory } from '../../src/engine/interface-history.js';
import { parseDuration } from '../../src/flow/duration.js';
import dashboard from '../../src/web/plugin.js';

export interface FixtureRecord {
  node: string;
  iface: string;
  ifindex: number;
  direction: 'ingress' | 'egress';
  family: 4 | 6;
  src: string;
  dst: string;
  proto: string;
  sport: number;
  dport: number;
  icmpType?: number;
  icmpCode?: number;
  packets: number;
  bytes: number;
  tcpFlags: string[];
  start: string;
  end: string;
  firstSeen: string;
  lastSeen: string;
  cgroup?: string | null;
  cgroupId?: number;
  workload?: string | null;
  pod?: { namespace: string; name: string };
  container?: string;
}

export interface FixtureOptions {
  /** node names; more than one makes it look like a relay */
  nodes?: string[];
  /** require Authorization: Bearer <token> on /api routes */
  token?: string;
  /** ms between synthetic records on the stream; 0 = only what emit() sends */
  emitEveryMs?: number;
  assetsRoot?: string;
  /** overflow packets reported by the status route */
  overflowPackets?: number;
  /** interface counters and rates that do not move with time (exact assertions) */
  staticRates?: boolean;
  /** seconds of interface history the agent has when the page loads (one node only: a relay has none); default 600 */
  historySeconds?: number;
  /** false: no /api/v1/top/series (an agent from before it) */
  topSeries?: boolean;
  /** records of local sockets carry cgroup, workload (and pod, container) as an agent with --attribution */
  attribution?: boolean;
}

interface Tuple {
  iface: string;
  direction: 'ingress' | 'egress';
  src: string;
  dst: string;
  proto: string;
  sport: number;
  dport: number;
  size: number;
  /** the local socket's cgroup, when the flow has one */
  who?: Pick<FixtureRecord, 'cgroup' | 'cgroupId' | 'workload' | 'pod' | 'container'>;
}

const NGINX = { cgroup: '/system.slice/nginx.service', cgroupId: 4101, workload: 'nginx.service' };
const RESOLVED = { cgroup: '/system.slice/systemd-resolved.service', cgroupId: 4102, workload: 'systemd-resolved.service' };
const REDIS_CONTAINER = 'c0ffee'.repeat(10) + 'c0de';
const REDIS = {
  cgroup: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7d1e.slice/cri-containerd-${REDIS_CONTAINER}.scope`,
  cgroupId: 4103,
  workload: 'cache/redis-0',
  pod: { namespace: 'cache', name: 'redis-0' },
  container: REDIS_CONTAINER,
};

const TUPLES: Tuple[] = [
  { iface: 'eth0', direction: 'ingress', src: '10.0.0.5', dst: '10.0.0.1', proto: 'udp', sport: 40000, dport: 53, size: 80, who: RESOLVED },
  { iface: 'eth0', direction: 'egress', src: '10.0.0.1', dst: '10.0.0.5', proto: 'udp', sport: 53, dport: 40000, size: 120, who: RESOLVED },
  { iface: 'eth0', direction: 'ingress', src: '192.168.7.20', dst: '10.0.0.1', proto: 'tcp', sport: 51544, dport: 443, size: 1400, who: NGINX },
  { iface: 'eth0', direction: 'egress', src: '10.0.0.1', dst: '192.168.7.20', proto: 'tcp', sport: 443, dport: 51544, size: 600, who: NGINX },
  { iface: 'eth1', direction: 'ingress', src: 'fd00::10', dst: 'fd00::1', proto: 'tcp', sport: 60222, dport: 6379, size: 300, who: REDIS },
  { iface: 'eth1', direction: 'egress', src: '10.1.0.1', dst: '10.1.0.9', proto: 'icmp', sport: 0, dport: 0, size: 98 },
];

function matchPrefix(addr: string, q: string): boolean {
  if (!q.includes('/')) return addr === q;
  const [net, lenS] = q.split('/');
  const len = Number(lenS);
  if (!addr.includes('.') || !net.includes('.')) return addr.startsWith(net.replace(/::.*$/, ''));
  const n = (a: string) => a.split('.').reduce((x, o) => (x << 8) + Number(o), 0) >>> 0;
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return (n(addr) & mask) === (n(net) & mask);
}

export type Query = Record<string, string | undefined>;

export function matches(r: FixtureRecord, q: Query): boolean {
  if (q.src && !matchPrefix(r.src, q.src)) return false;
  if (q.dst && !matchPrefix(r.dst, q.dst)) return false;
  if (q.ip && !matchPrefix(r.src, q.ip) && !matchPrefix(r.dst, q.ip)) return false;
  if (q.port && r.sport !== Number(q.port) && r.dport !== Number(q.port)) return false;
  if (q.sport && r.sport !== Number(q.sport)) return false;
  if (q.dport && r.dport !== Number(q.dport)) return false;
  if (q.proto && r.proto !== q.proto) return false;
  if (q.iface && r.iface !== q.iface) return false;
  if (q.direction && r.direction !== q.direction) return false;
  if (q.node && r.node !== q.node) return false;
  // a cgroup prefix by whole components, as the server matches it
  if (q.cgroup && !(typeof r.cgroup === 'string' && (q.cgroup === '/' || r.cgroup === q.cgroup || r.cgroup.startsWith(`${q.cgroup}/`)))) return false;
  if (q.workload && r.workload !== q.workload) return false;
  return true;
}

const filterProps = {
  src: { type: 'string', maxLength: 64 },
  dst: { type: 'string', maxLength: 64 },
  ip: { type: 'string', maxLength: 64 },
  port: { type: 'integer', minimum: 0, maximum: 65535 },
  sport: { type: 'integer', minimum: 0, maximum: 65535 },
  dport: { type: 'integer', minimum: 0, maximum: 65535 },
  proto: { type: 'string', maxLength: 16 },
  iface: { type: 'string', maxLength: 64 },
  direction: { type: 'string', enum: ['ingress', 'egress'] },
  node: { type: 'string', maxLength: 253 },
  cgroup: { type: 'string', pattern: '^/', maxLength: 4096 },
  workload: { type: 'string', minLength: 1, maxLength: 512 },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'integer', minimum: 1, maximum: 10000 },
} as const;

export class FixtureApi {
  readonly app: FastifyInstance;
  readonly records: FixtureRecord[] = [];
  private listeners = new Set<(r: FixtureRecord) => void>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private seq = 0;
  private lastEnd = 0;
  private t0 = Date.now();
  readonly nodes: string[];
  url = '';
  /** Authorization headers seen on /api requests, by path */
  readonly authSeen: { path: string; authorization?: string }[] = [];

  constructor(private readonly opts: FixtureOptions = {}) {
    this.nodes = opts.nodes ?? ['fixture-node'];
    this.app = Fastify({ logger: false, forceCloseConnections: true });
    const app = this.app;
    app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
      const status = err.statusCode ?? 500;
      void reply.code(status).send({ error: status === 400 ? 'Bad Request' : 'Error', message: err.message });
    });
    app.addHook('onRequest', async (req) => {
      if (req.url.startsWith('/api/')) this.authSeen.push({ path: req.url.split('?')[0], authorization: req.headers.authorization });
    });
    if (opts.token) {
      app.addHook('onRequest', async (req, reply) => {
        if (!req.url.startsWith('/api/')) return;
        if (req.headers.authorization !== `Bearer ${opts.token}`) {
          return reply.code(401).send({ error: 'Unauthorized', message: 'a bearer token is required' });
        }
      });
    }
    const querystring = { type: 'object', properties: filterProps, additionalProperties: false };

    app.get('/api/v1/status', async () => {
      const per = this.nodes.map((node) => ({
        node,
        version: '0.1.0',
        uptimeSeconds: Math.round((Date.now() - this.t0) / 1000) + 3725,
        hook: 'tc',
        interfaces: ['eth0', 'eth1'],
        flowsTracked: 1234,
        mapCapacity: 65536,
        overflowPackets: opts.overflowPackets ?? 0,
        overflowBytes: (opts.overflowPackets ?? 0) * 100,
        lastPollMs: 1.75,
        sinks: [
          { name: 'memory', exported: 5000 + this.seq, dropped: 0 },
          { name: 'redis', exported: 4990 + this.seq, dropped: 0, pending: 3 },
        ],
      }));
      if (this.nodes.length === 1) return per[0];
      return { relay: true, version: '0.1.0', nodes: per };
    });

    app.get('/api/v1/interfaces', async () => {
      const s = opts.staticRates ? 0 : (Date.now() - this.t0) / 1000;
      const out = [];
      for (const node of this.nodes) {
        for (const [i, iface] of ['eth0', 'eth1'].entries()) {
          const k = i === 0 ? 1 : 0.25;
          const wobble = 1 + 0.2 * Math.sin(s / 3 + i);
          out.push({
            ...(this.nodes.length > 1 ? { node } : {}),
            iface,
            ifindex: i + 2,
            hook: 'tc',
            rx: { packets: Math.round(123456 * k + s * 1000), bytes: Math.round(98765432 * k + s * 1e6), pps: Math.round(1200 * k * wobble), bps: Math.round(9.6e6 * k * wobble) },
            tx: { packets: Math.round(65432 * k + s * 500), bytes: Math.round(45678901 * k + s * 5e5), pps: Math.round(800 * k * wobble), bps: Math.round(4.8e6 * k * wobble) },
          });
        }
      }
      return out;
    });

    app.get<{ Querystring: Query }>('/api/v1/flows', { schema: { querystring } }, async (req) => {
      const q = req.query;
      const limit = Number(q.limit ?? 100);
      const all = this.records.filter((r) => matches(r, q)).reverse();
      return { flows: all.slice(0, limit), total: all.length, truncated: all.length > limit };
    });

    app.get<{ Querystring: Query }>('/api/v1/flows/stream', { schema: { querystring } }, (req, reply) => {
      const q = req.query;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(': hello\n\n');
      const l = (r: FixtureRecord) => {
        if (matches(r, q)) res.write(`data: ${JSON.stringify(r)}\n\n`);
      };
      this.listeners.add(l);
      req.raw.on('close', () => this.listeners.delete(l));
    });

    type TopQ = Query & { by?: string; metric?: string; window?: string; k?: string };
    const topSchema = {
      querystring: {
        type: 'object',
        properties: {
          ...filterProps,
          by: { type: 'string', enum: ['src', 'dst', 'pair', 'flow', 'sport', 'dport', 'proto', 'iface', 'node', 'cgroup', 'workload'] },
          metric: { type: 'string', enum: ['bytes', 'packets'] },
          window: { type: 'string', pattern: '^\\d+(ms|s|m|h|d)$' },
          k: { type: 'integer', minimum: 1, maximum: 1000 },
        },
        additionalProperties: false,
      },
    };
    const fields: Record<string, string[]> = {
      src: ['src'], dst: ['dst'], pair: ['src', 'dst'], flow: ['iface', 'direction', 'src', 'dst', 'proto', 'sport', 'dport'],
      sport: ['sport'], dport: ['dport'], proto: ['proto'], iface: this.nodes.length > 1 ? ['node', 'iface'] : ['iface'], node: ['node'],
      cgroup: ['cgroup', 'cgroupId'], workload: ['workload'],
    };
    /** the k largest groups of the records, by the metric */
    const largest = (records: FixtureRecord[], by: string, metric: 'bytes' | 'packets', k: number) => {
      const groups = new Map<string, { id: string; key: Record<string, unknown>; bytes: number; packets: number }>();
      let total = 0;
      for (const r of records) {
        const key: Record<string, unknown> = {};
        for (const f of fields[by]) key[f] = (r as unknown as Record<string, unknown>)[f];
        // flows without a local socket form the group whose key is null
        if (by === 'cgroup' || by === 'workload') key[by] ??= null;
        const id = JSON.stringify(key);
        const g = groups.get(id) ?? { id, key, bytes: 0, packets: 0 };
        g.bytes += r.bytes;
        g.packets += r.packets;
        groups.set(id, g);
        total += r[metric];
      }
      return { total, top: [...groups.values()].sort((a, b) => b[metric] - a[metric]).slice(0, k) };
    };

    app.get<{ Querystring: TopQ }>('/api/v1/top', { schema: topSchema }, async (req) => {
      const q = req.query;
      const by = q.by ?? 'src';
      const metric = (q.metric ?? 'bytes') as 'bytes' | 'packets';
      const { total, top } = largest(this.records.filter((r) => matches(r, q)), by, metric, Number(q.k ?? 10));
      const entries = top.map(({ key, bytes, packets }) => ({ key, bytes, packets, share: total ? (metric === 'bytes' ? bytes : packets) / total : 0 }));
      return { by, metric, window: q.window ?? '1m', to: new Date().toISOString(), entries };
    });

    // 10 s buckets by record end, the last one open; the window's k largest groups bucket by bucket
    if (opts.topSeries !== false) app.get<{ Querystring: TopQ }>('/api/v1/top/series', { schema: topSchema }, async (req) => {
      const q = req.query;
      const by = q.by ?? 'src';
      const metric = (q.metric ?? 'bytes') as 'bytes' | 'packets';
      const bucketMs = 10_000;
      const now = Date.now();
      const first = Math.floor((now - (parseDuration(q.window ?? '1m') ?? 60_000)) / bucketMs) * bucketMs;
      const times: number[] = [];
      for (let t = first; t <= now; t += bucketMs) times.push(t);
      const inWindow = this.records.filter((r) => matches(r, q) && Date.parse(r.end) >= first);
      const { top } = largest(inWindow, by, metric, Number(q.k ?? 10));
      const entries = top.map((g) => ({ key: g.key, values: times.map(() => 0) }));
      const other = times.map(() => 0);
      for (const r of inWindow) {
        // a record a few ms ahead of the clock (emit() keeps ends distinct) is in the open bucket
        const b = Math.min(times.length - 1, Math.floor((Date.parse(r.end) - first) / bucketMs));
        const key: Record<string, unknown> = {};
        for (const f of fields[by]) key[f] = (r as unknown as Record<string, unknown>)[f];
        if (by === 'cgroup' || by === 'workload') key[by] ??= null;
        const i = top.findIndex((g) => g.id === JSON.stringify(key));
        if (i >= 0) entries[i].values[b] += r[metric];
        else other[b] += r[metric];
      }
      return { by, metric, window: q.window ?? '1m', bucketMs, times: times.map((t) => new Date(t).toISOString()), entries, other, exact: true };
    });

    // The real history (engine and route), fed with the rates above second by second, up to now at each request.
    const accounting = new InterfaceAccounting();
    const history = new InterfaceHistory({ pollIntervalMs: 1000 });
    for (const [i, iface] of ['eth0', 'eth1'].entries()) accounting.attach({ ifindex: i + 2, iface, mode: 'tc', tcMechanism: 'tcx' });
    let recordedUntil = Math.floor(Date.now() / 1000) * 1000 - (opts.historySeconds ?? 600) * 1000;
    const catchUp = async () => {
      for (const now = Date.now(); recordedUntil + 1000 <= now; ) {
        recordedUntil += 1000;
        accounting.apply(this.historyDeltas(recordedUntil), recordedUntil);
        history.record(recordedUntil, accounting);
      }
    };
    app.addHook('onRequest', async (req) => {
      if (req.url.startsWith('/api/v1/interfaces/history')) await catchUp();
    });
    historyRoute(app, this.nodes.length === 1 ? { node: this.nodes[0], history } : undefined, Date.now);

    void app.register(dashboard, opts.assetsRoot ? { root: opts.assetsRoot } : {});
  }

  /** One second of the interface rates served by /api/v1/interfaces, at time t, as the kernel's deltas. */
  private historyDeltas(t: number): InterfaceDelta[] {
    const s = this.opts.staticRates ? 0 : (t - this.t0) / 1000;
    const out: InterfaceDelta[] = [];
    for (const i of [0, 1]) {
      const k = i === 0 ? 1 : 0.25;
      const wobble = 1 + 0.2 * Math.sin(s / 3 + i);
      const rx = { packets: Math.round(1200 * k * wobble), bytes: Math.round((9.6e6 / 8) * k * wobble) };
      const tx = { packets: Math.round(800 * k * wobble), bytes: Math.round((4.8e6 / 8) * k * wobble) };
      for (const [direction, d] of [['ingress', rx], ['egress', tx]] as const) {
        out.push({ ifindex: i + 2, direction, ...d, otherPackets: 0, otherBytes: 0, overflowPackets: 0, overflowBytes: 0 });
      }
    }
    return out;
  }

  /** Adds one record (from the tuple table, round robin) and streams it. */
  emit(t?: Partial<FixtureRecord>): FixtureRecord {
    const tpl = TUPLES[this.seq % TUPLES.length];
    const node = this.nodes[Math.floor(this.seq / TUPLES.length) % this.nodes.length];
    this.seq++;
    // distinct intervals, as a real exporter's successive records of one flow have
    this.lastEnd = Math.max(Date.now(), this.lastEnd + 1);
    const end = new Date(this.lastEnd);
    const start = new Date(end.getTime() - 1000);
    const packets = 1 + (this.seq % 7);
    const r: FixtureRecord = {
      node,
      iface: tpl.iface,
      ifindex: tpl.iface === 'eth0' ? 2 : 3,
      direction: tpl.direction,
      family: tpl.src.includes(':') ? 6 : 4,
      src: tpl.src,
      dst: tpl.dst,
      proto: tpl.proto,
      sport: tpl.sport,
      dport: tpl.dport,
      ...(tpl.proto === 'icmp' ? { icmpType: 8, icmpCode: 0 } : {}),
      packets,
      bytes: packets * tpl.size,
      tcpFlags: tpl.proto === 'tcp' ? ['ACK', 'PSH'] : [],
      start: start.toISOString(),
      end: end.toISOString(),
      firstSeen: new Date(this.t0).toISOString(),
      lastSeen: end.toISOString(),
      ...(this.opts.attribution && tpl.who ? tpl.who : {}),
      ...t,
    };
    this.records.push(r);
    if (this.records.length > 5000) this.records.shift();
    for (const l of this.listeners) l(r);
    return r;
  }

  async start(): Promise<string> {
    for (let i = 0; i < 60; i++) this.emit();
    await this.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = this.app.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${addr.port}`;
    if (this.opts.emitEveryMs) this.timer = setInterval(() => this.emit(), this.opts.emitEveryMs);
    return this.url;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.listeners.clear();
    await this.app.close();
  }
}
