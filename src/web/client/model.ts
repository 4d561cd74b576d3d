/**
 * Shapes of the HTTP API answers (contract: /api/v1/status, /interfaces, /top,
 * flow records) and normalizers that read them defensively: the dashboard runs
 * against an agent and against a relay that serves several nodes, and an
 * answer with a missing or extra field must degrade one cell, not the page.
 * Pure, unit-tested in test/web/model.test.ts.
 */

export interface FlowRecord {
  node?: string;
  iface: string;
  ifindex?: number;
  direction: 'ingress' | 'egress';
  family?: 4 | 6;
  src: string;
  dst: string;
  proto: string;
  sport: number;
  dport: number;
  icmpType?: number;
  icmpCode?: number;
  packets: number;
  bytes: number;
  tcpFlags?: string[];
  start?: string;
  end?: string;
  firstSeen?: string;
  lastSeen?: string;
  /** attribution: the local socket's cgroup v2 path (null: not resolved); absent without a local socket */
  cgroup?: string | null;
  workload?: string | null;
  pod?: { namespace: string; name: string };
  container?: string;
}

export interface DirCounters {
  packets: number;
  bytes: number;
  /** packets per second, current */
  pps: number;
  /** bits per second, current */
  bps: number;
}

export interface IfaceInfo {
  /** unique among the answer's entries: "node/iface" on a relay, the name otherwise */
  id: string;
  node?: string;
  iface: string;
  ifindex?: number;
  hook?: string;
  rx: DirCounters;
  tx: DirCounters;
  /** rx + tx packets that found the flow map full */
  overflowPackets: number;
  overflowBytes: number;
}

export interface SinkInfo {
  name: string;
  exported: number;
  dropped: number;
  /** error text when the sink reports one */
  error?: string;
  healthy: boolean;
}

export interface NodeInfo {
  node: string;
  version?: string;
  uptimeSeconds?: number;
  flowsTracked?: number;
  mapCapacity?: number;
  /** 0..1: the agent's own figure when it gives one, else flowsTracked / mapCapacity */
  mapFill?: number;
  overflowPackets: number;
  overflowBytes: number;
  lastPollMs?: number;
  hook?: string;
  interfaces: string[];
  sinks: SinkInfo[];
  /** false when a relay reports the node unreachable or stale */
  up: boolean;
  /** why the node is down (relay) */
  error?: string;
  /** programs attached and a poll completed (agent's readiness) */
  ready?: boolean;
  /** the agent's last poll error, if any */
  pollError?: string;
  pollErrors?: number;
  /** non-IP frames counted per interface, not as flows */
  otherPackets?: number;
  otherBytes?: number;
  /** datapath failure counters that are not zero, e.g. { fragment: 3 } */
  failures: Record<string, number>;
  /** records the in-memory store lost (overwritten before anyone read them is normal; this is what the agent reports) */
  storeLost?: number;
}

export interface StatusInfo {
  /** several nodes behind one API (a relay) */
  multiNode: boolean;
  version?: string;
  nodes: NodeInfo[];
}

export interface TopEntry {
  key: Record<string, string | number | null | undefined>;
  bytes: number;
  packets: number;
  share: number;
}

export interface TopAnswer {
  by: string;
  metric: string;
  window: string;
  entries: TopEntry[];
  /** the window's totals, when the server gives them */
  totalBytes?: number;
  totalPackets?: number;
  /** false when the server says the ranking is approximate */
  exact?: boolean;
  /** start of the data the window holds; null when it holds none yet */
  from?: string | null;
  /** end of the window: the last poll */
  to?: string | null;
}

/** /api/v1/top/series: the window's top groups per time bucket. */
export interface TopSeriesAnswer {
  by: string;
  metric: string;
  bucketMs: number;
  /** start of each bucket, epoch ms, oldest first; the last may be the open bucket */
  times: number[];
  entries: { key: TopEntry['key']; values: number[] }[];
  /** per bucket: the rest of the bucket's total */
  other: number[];
  exact?: boolean;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function num(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** The first of the given (possibly dotted) paths that holds a number. */
function pickNum(o: Obj, ...paths: string[]): number | undefined {
  for (const p of paths) {
    let cur: unknown = o;
    for (const part of p.split('.')) cur = isObj(cur) ? cur[part] : undefined;
    const n = num(cur);
    if (n !== undefined) return n;
  }
  return undefined;
}

function dir(v: unknown): DirCounters {
  const o = isObj(v) ? v : {};
  return {
    packets: pickNum(o, 'packets') ?? 0,
    bytes: pickNum(o, 'bytes') ?? 0,
    pps: pickNum(o, 'pps') ?? 0,
    bps: pickNum(o, 'bps') ?? 0,
  };
}

/** /api/v1/interfaces: an array (agent), or an object holding one (defensive). */
export function normalizeInterfaces(body: unknown): IfaceInfo[] {
  const arr = Array.isArray(body) ? body : isObj(body) && Array.isArray(body.interfaces) ? body.interfaces : [];
  const out: IfaceInfo[] = [];
  for (const e of arr) {
    if (!isObj(e)) continue;
    const iface = str(e.iface) ?? str(e.name);
    if (!iface) continue;
    const node = str(e.node);
    out.push({
      id: node ? `${node}/${iface}` : iface,
      node,
      iface,
      ifindex: num(e.ifindex),
      hook: str(e.hook),
      rx: dir(e.rx),
      tx: dir(e.tx),
      overflowPackets:
        pickNum(e, 'overflowPackets', 'overflow.packets') ?? (pickNum(e, 'rx.overflowPackets') ?? 0) + (pickNum(e, 'tx.overflowPackets') ?? 0),
      overflowBytes:
        pickNum(e, 'overflowBytes', 'overflow.bytes') ?? (pickNum(e, 'rx.overflowBytes') ?? 0) + (pickNum(e, 'tx.overflowBytes') ?? 0),
    });
  }
  // the same interface name on two nodes must not collide; with no node field
  // a duplicate name gets its ifindex appended
  const seen = new Set<string>();
  for (const i of out) {
    if (seen.has(i.id) && i.ifindex !== undefined) i.id = `${i.id}#${i.ifindex}`;
    seen.add(i.id);
  }
  return out;
}

function sinks(v: unknown): SinkInfo[] {
  const list: [string, Obj][] = [];
  if (Array.isArray(v)) {
    v.forEach((s, i) => {
      if (isObj(s)) list.push([str(s.name) ?? str(s.sink) ?? str(s.type) ?? `sink ${i + 1}`, s]);
    });
  } else if (isObj(v)) {
    for (const [k, s] of Object.entries(v)) if (isObj(s)) list.push([str(s.name) ?? k, s]);
  }
  return list.map(([name, s]) => {
    const error = str(s.error) ?? str(s.lastError);
    const dropped = pickNum(s, 'dropped', 'recordsDropped', 'droppedRecords') ?? 0;
    const ok = s.healthy ?? s.ok ?? s.connected ?? s.up;
    return {
      name,
      exported: pickNum(s, 'exported', 'recordsExported', 'exportedRecords', 'records') ?? 0,
      dropped,
      error: error || undefined,
      healthy: typeof ok === 'boolean' ? ok && !error : !error,
    };
  });
}

function nodeInfo(o: Obj, fallbackName: string): NodeInfo {
  let uptime = pickNum(o, 'uptimeSeconds', 'uptimeSec', 'uptime');
  if (uptime === undefined) {
    const ms = pickNum(o, 'uptimeMs');
    if (ms !== undefined) uptime = ms / 1000;
  }
  let lastPollMs = pickNum(o, 'lastPollMs', 'lastPollDurationMs', 'poll.lastDurationMs', 'lastPoll.durationMs');
  if (lastPollMs === undefined) {
    const s = pickNum(o, 'lastPollSeconds', 'lastPollDurationSeconds', 'lastPollDuration');
    if (s !== undefined) lastPollMs = s * 1000;
  }
  const ifaces = Array.isArray(o.interfaces)
    ? o.interfaces.map((i) => (isObj(i) ? str(i.iface) ?? str(i.name) : str(i))).filter((x): x is string => !!x)
    : [];
  const up = o.up ?? o.reachable ?? o.healthy ?? o.ok;
  const error = str(o.error);
  const failures: Record<string, number> = {};
  if (isObj(o.datapathFailures)) {
    for (const [k, v] of Object.entries(o.datapathFailures)) {
      const n = num(v);
      if (n) failures[k] = n;
    }
  }
  let hook = str(o.hook);
  if (!hook && Array.isArray(o.interfaces)) {
    const hooks = new Set(o.interfaces.map((i) => (isObj(i) ? str(i.hook) : undefined)).filter((x): x is string => !!x));
    if (hooks.size) hook = [...hooks].join('+');
  }
  const tracked = pickNum(o, 'flowsTracked', 'flows.tracked', 'flowMap.entries', 'trackedFlows', 'flows');
  const capacity = pickNum(o, 'mapCapacity', 'flowMapCapacity', 'flows.capacity', 'flowMap.capacity', 'capacity');
  return {
    node: str(o.node) ?? str(o.name) ?? fallbackName,
    version: str(o.version),
    uptimeSeconds: uptime,
    flowsTracked: tracked,
    mapCapacity: capacity,
    mapFill: pickNum(o, 'mapFill') ?? (tracked !== undefined && capacity ? tracked / capacity : undefined),
    overflowPackets: pickNum(o, 'overflowPackets', 'overflow.packets') ?? 0,
    overflowBytes: pickNum(o, 'overflowBytes', 'overflow.bytes') ?? 0,
    lastPollMs,
    hook,
    interfaces: ifaces,
    sinks: sinks(o.sinks ?? o.exporters ?? o.exports),
    up: typeof up === 'boolean' ? up : !error,
    error: error || undefined,
    ready: typeof o.ready === 'boolean' ? o.ready : undefined,
    pollError: str(o.lastError) || undefined,
    pollErrors: pickNum(o, 'pollErrors'),
    otherPackets: pickNum(o, 'otherPackets'),
    otherBytes: pickNum(o, 'otherBytes'),
    failures,
    storeLost: pickNum(o, 'store.lost'),
  };
}

/**
 * /api/v1/status of an agent (one node, fields at the top level) or of a relay
 * (a `nodes` array or object of per-node statuses, possibly with its own
 * fields at the top level).
 */
export function normalizeStatus(body: unknown): StatusInfo {
  const o = isObj(body) ? body : {};
  const nodesField = o.nodes;
  const nodes: NodeInfo[] = [];
  if (Array.isArray(nodesField) && nodesField.some(isObj)) {
    nodesField.forEach((n, i) => {
      if (isObj(n)) nodes.push(nodeInfo(n, `node ${i + 1}`));
    });
  } else if (isObj(nodesField)) {
    for (const [name, n] of Object.entries(nodesField)) if (isObj(n)) nodes.push(nodeInfo(n, name));
  }
  if (nodes.length === 0) {
    nodes.push(nodeInfo(o, Array.isArray(nodesField) && typeof nodesField[0] === 'string' ? nodesField[0] : 'node'));
  }
  const multiNode = nodes.length > 1 || o.relay === true || o.mode === 'relay' || o.role === 'relay';
  return { multiNode, version: str(o.version) ?? nodes[0]?.version, nodes };
}

export function normalizeTop(body: unknown): TopAnswer {
  const o = isObj(body) ? body : {};
  const entries: TopEntry[] = [];
  if (Array.isArray(o.entries)) {
    for (const e of o.entries) {
      if (!isObj(e)) continue;
      entries.push({
        key: isObj(e.key) ? (e.key as TopEntry['key']) : { value: str(e.key) },
        bytes: num(e.bytes) ?? 0,
        packets: num(e.packets) ?? 0,
        share: Math.min(1, Math.max(0, num(e.share) ?? 0)),
      });
    }
  }
  return {
    by: str(o.by) ?? '',
    metric: str(o.metric) ?? '',
    window: str(o.window) ?? '',
    entries,
    totalBytes: num(o.totalBytes),
    totalPackets: num(o.totalPackets),
    exact: typeof o.exact === 'boolean' ? o.exact : undefined,
    from: o.from === null ? null : str(o.from),
    to: o.to === null ? null : str(o.to),
  };
}

/** /api/v1/top/series; an entry (or `other`) whose values do not match the buckets is left out (other: zeros). */
export function normalizeTopSeries(body: unknown): TopSeriesAnswer {
  const o = isObj(body) ? body : {};
  const times = Array.isArray(o.times) ? o.times.map((t) => Date.parse(String(t))) : [];
  const ok = times.every((t) => Number.isFinite(t));
  const column = (v: unknown): number[] | undefined =>
    Array.isArray(v) && v.length === times.length ? v.map((x) => num(x) ?? 0) : undefined;
  const entries: TopSeriesAnswer['entries'] = [];
  if (ok && Array.isArray(o.entries)) {
    for (const e of o.entries) {
      const values = isObj(e) ? column(e.values) : undefined;
      if (isObj(e) && values) entries.push({ key: isObj(e.key) ? (e.key as TopEntry['key']) : { value: str(e.key) }, values });
    }
  }
  return {
    by: str(o.by) ?? '',
    metric: str(o.metric) ?? '',
    bucketMs: num(o.bucketMs) ?? 0,
    times: ok ? times : [],
    entries,
    other: (ok && column(o.other)) || times.map(() => 0),
    exact: typeof o.exact === 'boolean' ? o.exact : undefined,
  };
}

/** One interface's rates over its history steps, as the charts draw them. */
export interface RateSeries {
  /** as IfaceInfo.id: "node/iface" on a relay, the name otherwise */
  id: string;
  /** end of each step, epoch seconds (a live point is drawn when its rate was read) */
  t: number[];
  /** bits per second */
  rxBps: number[];
  txBps: number[];
  /** packets per second */
  rxPps: number[];
  txPps: number[];
}

/**
 * /api/v1/interfaces/history: counts per step, turned into rates (count /
 * step). A series whose columns disagree in length is left out.
 */
export function normalizeHistory(body: unknown): { stepMs: number; series: RateSeries[] } {
  const o = isObj(body) ? body : {};
  const stepMs = num(o.stepMs) ?? 0;
  const series: RateSeries[] = [];
  if (stepMs <= 0 || !Array.isArray(o.interfaces)) return { stepMs, series };
  const perSecond = 1000 / stepMs;
  for (const e of o.interfaces) {
    if (!isObj(e)) continue;
    const iface = str(e.iface);
    const cols = [e.t, e.rxPackets, e.rxBytes, e.txPackets, e.txBytes];
    if (!iface || !cols.every((c) => Array.isArray(c) && c.length === (e.t as unknown[]).length)) continue;
    const [t, rxPackets, rxBytes, txPackets, txBytes] = cols.map((c) => (c as unknown[]).map((v) => num(v) ?? 0));
    // per series on a server of several nodes, as /api/v1/interfaces has it; an agent's ids are the names
    const node = str(e.node);
    series.push({
      id: node ? `${node}/${iface}` : iface,
      t: t.map((start) => (start + stepMs) / 1000),
      rxBps: rxBytes.map((b) => b * 8 * perSecond),
      txBps: txBytes.map((b) => b * 8 * perSecond),
      rxPps: rxPackets.map((p) => p * perSecond),
      txPps: txPackets.map((p) => p * perSecond),
    });
  }
  return { stepMs, series };
}

/** A flow record from JSON, or undefined when it lacks the fields a row needs. */
export function normalizeFlow(v: unknown): FlowRecord | undefined {
  if (!isObj(v)) return undefined;
  const src = str(v.src);
  const dst = str(v.dst);
  if (src === undefined || dst === undefined) return undefined;
  const direction = v.direction === 'egress' ? 'egress' : 'ingress';
  return {
    node: str(v.node),
    iface: str(v.iface) ?? '',
    ifindex: num(v.ifindex),
    direction,
    family: v.family === 6 || v.family === '6' ? 6 : 4,
    src,
    dst,
    proto: str(v.proto) ?? '',
    sport: num(v.sport) ?? 0,
    dport: num(v.dport) ?? 0,
    icmpType: num(v.icmpType),
    icmpCode: num(v.icmpCode),
    packets: num(v.packets) ?? 0,
    bytes: num(v.bytes) ?? 0,
    tcpFlags: Array.isArray(v.tcpFlags) ? v.tcpFlags.map(String) : undefined,
    start: str(v.start),
    end: str(v.end),
    firstSeen: str(v.firstSeen),
    lastSeen: str(v.lastSeen),
    cgroup: v.cgroup === null ? null : str(v.cgroup),
    workload: v.workload === null ? null : str(v.workload),
    pod: isObj(v.pod) && str(v.pod.namespace) && str(v.pod.name) ? { namespace: str(v.pod.namespace)!, name: str(v.pod.name)! } : undefined,
    container: str(v.container),
  };
}

/** Whether a record says who sent or received it (a local socket's cgroup). */
export function attributed(r: FlowRecord): boolean {
  return r.cgroup !== undefined || (r.workload !== undefined && r.workload !== null);
}

/** Identity of one record (one flow over one interval), to drop a record seen twice (backlog + stream). */
export function flowRecordKey(r: FlowRecord): string {
  return [r.node ?? '', r.iface, r.direction, r.src, r.sport, r.dst, r.dport, r.proto, r.icmpType ?? '', r.start ?? '', r.end ?? ''].join('|');
}
