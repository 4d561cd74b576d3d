/**
 * Filter state, its validation and the query strings the dashboard sends to
 * the HTTP API (see the contract: /api/v1/flows, /flows/stream, /top). Pure
 * functions (no DOM), unit-tested in test/web/query.test.ts.
 *
 * The client validates as the server does so that a typo shows next to its
 * field instead of as a 400 from the server; the server stays the authority
 * and its 400 message is shown when it disagrees.
 */

import { Address4, Address6 } from 'ip-address';
import { parseDuration } from '../../flow/duration.js';
import { TOP_DIMENSIONS, TOP_METRICS, type TopDimension, type TopMetric } from '../../flow/top-dimensions.js';

export { TOP_METRICS, type TopMetric };

/** The contract's flow filters, as typed into the filter bar (strings; '' = unset). */
export interface FlowFilter {
  ip: string;
  src: string;
  dst: string;
  port: string;
  sport: string;
  dport: string;
  proto: string;
  iface: string;
  direction: string;
  /** cgroup v2 path prefix of the local socket, by whole components */
  cgroup: string;
  /** workload label, exactly */
  workload: string;
  /** only offered when the API serves several nodes (a relay) */
  node: string;
}

export const FILTER_FIELDS = [
  'ip', 'src', 'dst', 'port', 'sport', 'dport', 'proto', 'iface', 'direction', 'cgroup', 'workload', 'node',
] as const satisfies readonly (keyof FlowFilter)[];
export type FilterField = (typeof FILTER_FIELDS)[number];

export function emptyFilter(): FlowFilter {
  return { ip: '', src: '', dst: '', port: '', sport: '', dport: '', proto: '', iface: '', direction: '', cgroup: '', workload: '', node: '' };
}

export const TOP_BY = TOP_DIMENSIONS;
export type TopBy = TopDimension;
export const TOP_WINDOWS = ['10s', '30s', '1m', '5m', '15m', '1h'] as const;

export interface TopQuery {
  by: TopBy;
  metric: TopMetric;
  window: string;
  k: number;
}

export const PROTO_NAMES = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp'] as const;

// ---------------------------------------------------------------- validation

// Addresses are checked by `ip-address`, as the server parses filters (src/lib/ip.ts).
export function isIPv4(s: string): boolean {
  return !s.includes('/') && Address4.isValid(s);
}

/** RFC 4291 text forms, including :: compression and a trailing dotted quad (no zone). */
export function isIPv6(s: string): boolean {
  return !s.includes('/') && !s.includes('%') && Address6.isValid(s);
}

/** An address or a CIDR prefix, IPv4 or IPv6. */
export function isAddressOrCidr(s: string): boolean {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  if (slash >= 0 && !/^\d{1,3}$/.test(s.slice(slash + 1))) return false;
  if (isIPv4(addr)) return Address4.isValid(s);
  return isIPv6(addr) && Address6.isValid(s);
}

export function isPort(s: string): boolean {
  return /^\d{1,5}$/.test(s) && Number(s) <= 65535;
}

export function isProto(s: string): boolean {
  return (PROTO_NAMES as readonly string[]).includes(s.toLowerCase()) || (/^\d{1,3}$/.test(s) && Number(s) <= 255);
}

/** A duration as the server reads it (30s, 5m, 1h30m, 1.5h), and a positive one. */
export function isDuration(s: string): boolean {
  const ms = parseDuration(s);
  return ms !== undefined && ms > 0;
}

/** Problems in a filter, by field: a message per invalid field, empty when all is well. */
export function validateFilter(f: FlowFilter): Partial<Record<FilterField, string>> {
  const errors: Partial<Record<FilterField, string>> = {};
  for (const k of ['ip', 'src', 'dst'] as const) {
    if (f[k] && !isAddressOrCidr(f[k])) errors[k] = 'an IPv4/IPv6 address or CIDR, e.g. 10.0.0.0/8 or fd00::/64';
  }
  for (const k of ['port', 'sport', 'dport'] as const) {
    if (f[k] && !isPort(f[k])) errors[k] = 'a port number from 0 to 65535';
  }
  if (f.proto && !isProto(f.proto)) errors.proto = 'tcp, udp, icmp, icmpv6, sctp or a protocol number 0–255';
  if (f.direction && f.direction !== 'ingress' && f.direction !== 'egress') errors.direction = 'ingress or egress';
  if (f.iface && !/^[^\s/]{1,64}$/.test(f.iface)) errors.iface = 'an interface name';
  // as the server: an absolute path below the cgroup v2 root; a label of at most 512 characters
  if (f.cgroup && !(f.cgroup.startsWith('/') && f.cgroup.length <= 4096 && !f.cgroup.includes('\0'))) {
    errors.cgroup = 'a cgroup path from the cgroup v2 root, e.g. /system.slice or /kubepods.slice';
  }
  if (f.workload.length > 512) errors.workload = 'a workload label of at most 512 characters, e.g. nginx.service or shop/cart-7d9f';
  if (f.node && !/^\S{1,253}$/.test(f.node)) errors.node = 'a node name';
  return errors;
}

/** Trims every field; lower-cases the protocol. */
export function normalizeFilter(f: Partial<FlowFilter>): FlowFilter {
  const out = emptyFilter();
  for (const k of FILTER_FIELDS) {
    const v = f[k];
    out[k] = typeof v === 'string' ? v.trim() : v === undefined || v === null ? '' : String(v);
  }
  out.proto = out.proto.toLowerCase();
  return out;
}

export function isFilterEmpty(f: FlowFilter): boolean {
  return FILTER_FIELDS.every((k) => !f[k]);
}

// ------------------------------------------------------------- query strings

/** The set filter fields as URL parameters, in a fixed order. */
export function filterParams(f: FlowFilter): URLSearchParams {
  const p = new URLSearchParams();
  for (const k of FILTER_FIELDS) if (f[k]) p.set(k, f[k]);
  return p;
}

/** Query string (with its "?", or '') for /api/v1/flows and /api/v1/flows/stream. */
export function flowsQuery(f: FlowFilter, opts: { limit?: number; since?: string } = {}): string {
  const p = filterParams(f);
  if (opts.since) p.set('since', opts.since);
  if (opts.limit !== undefined) p.set('limit', String(opts.limit));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Query string for /api/v1/top. */
export function topQuery(q: TopQuery, f?: FlowFilter): string {
  const p = new URLSearchParams({ by: q.by, metric: q.metric, window: q.window, k: String(q.k) });
  if (f) for (const [k, v] of filterParams(f)) p.set(k, v);
  return `?${p.toString()}`;
}

// ------------------------------------------------------------------ top keys

export type TopKey = Record<string, string | number | null | undefined>;

/**
 * The flow filter that selects a top-talkers entry: clicking the entry applies
 * it to the flow list. Every grouping field the key carries that is also a
 * filter becomes that filter (src → src, pair → src + dst, dport → dport …).
 */
export function keyToFilter(key: TopKey): FlowFilter {
  const f = emptyFilter();
  for (const k of ['src', 'dst', 'sport', 'dport', 'proto', 'iface', 'direction', 'cgroup', 'workload', 'node'] as const) {
    const v = key[k];
    if (v !== undefined && v !== null && v !== '') f[k] = String(v);
  }
  return f;
}

/** A short text for a top-talkers key. */
export function formatKey(by: string, key: TopKey): string {
  const s = (v: unknown) => (v === undefined || v === null ? '' : String(v));
  const ep = (a: unknown, p: unknown) => {
    const addr = s(a);
    const port = Number(p) || 0;
    if (!port) return addr;
    return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
  };
  switch (by) {
    case 'src':
      return s(key.src);
    case 'dst':
      return s(key.dst);
    case 'pair':
      return `${s(key.src)} → ${s(key.dst)}`;
    case 'flow': {
      const proto = s(key.proto);
      return `${proto ? proto + ' ' : ''}${ep(key.src, key.sport)} → ${ep(key.dst, key.dport)}`;
    }
    case 'sport':
      return s(key.sport);
    case 'dport':
      return s(key.dport);
    case 'proto':
      return s(key.proto);
    case 'iface':
      return key.node ? `${s(key.node)}/${s(key.iface)}` : s(key.iface);
    case 'node':
      return s(key.node);
    case 'cgroup':
      // null: no local socket, or (with cgroupId) a cgroup whose path could not be read
      return key.cgroup ? s(key.cgroup) : key.cgroupId ? `cgroup id ${s(key.cgroupId)}` : 'no local socket';
    case 'workload':
      return key.workload ? s(key.workload) : 'none';
    default: {
      const parts = Object.entries(key).map(([k, v]) => `${k}=${s(v)}`);
      return parts.join(' ');
    }
  }
}

// -------------------------------------------------- location hash (bookmarks)

export interface ViewState {
  filter: FlowFilter;
  top: TopQuery;
}

export const DEFAULT_TOP: TopQuery = { by: 'src', metric: 'bytes', window: '1m', k: 10 };

/** The view as a location hash: "#ip=10.0.0.0%2F8&by=dport". Defaults are left out. */
export function stateToHash(v: ViewState): string {
  const p = filterParams(v.filter);
  if (v.top.by !== DEFAULT_TOP.by) p.set('by', v.top.by);
  if (v.top.metric !== DEFAULT_TOP.metric) p.set('metric', v.top.metric);
  if (v.top.window !== DEFAULT_TOP.window) p.set('window', v.top.window);
  if (v.top.k !== DEFAULT_TOP.k) p.set('k', String(v.top.k));
  const s = p.toString();
  return s ? `#${s}` : '';
}

/** Reads a location hash back; invalid or unknown values fall back to the defaults. */
export function hashToState(hash: string): ViewState {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const raw: Partial<FlowFilter> = {};
  for (const k of FILTER_FIELDS) {
    const v = p.get(k);
    if (v !== null) raw[k] = v;
  }
  let filter = normalizeFilter(raw);
  const errors = validateFilter(filter);
  for (const k of Object.keys(errors) as FilterField[]) filter = { ...filter, [k]: '' };
  const by = p.get('by');
  const metric = p.get('metric');
  const window = p.get('window');
  const k = Number(p.get('k'));
  return {
    filter,
    top: {
      by: by && (TOP_BY as readonly string[]).includes(by) ? (by as TopBy) : DEFAULT_TOP.by,
      metric: metric && (TOP_METRICS as readonly string[]).includes(metric) ? (metric as TopMetric) : DEFAULT_TOP.metric,
      window: window && isDuration(window) ? window : DEFAULT_TOP.window,
      k: Number.isInteger(k) && k >= 1 && k <= 100 ? k : DEFAULT_TOP.k,
    },
  };
}
