/**
 * The flow filters of the contract (src, dst, ip, port, sport, dport, proto,
 * iface, direction, since, until), parsed once per request and then applied
 * to stored records or to top-talker flow keys.
 */
import type { Direction } from '../datapath/types.js';
import { type IpPrefix, parsePrefix, prefixContains } from '../lib/ip.js';
import { parseTimeParam } from './duration.js';
import { protoNumber, PROTO_NAME_LIST } from './protocols.js';

/** The filter parameters as they arrive (query string or CLI), all optional. */
export interface FlowFilterParams {
  src?: string;
  dst?: string;
  ip?: string;
  port?: number;
  sport?: number;
  dport?: number;
  proto?: string;
  iface?: string;
  direction?: Direction;
  /** node name (a relay serves many nodes) */
  node?: string;
  /** cgroup v2 path prefix, by whole components: /system.slice matches /system.slice/nginx.service */
  cgroup?: string;
  /** workload label, exactly (NAMESPACE/POD, nginx.service, docker:ID12, ...) */
  workload?: string;
  since?: string;
  until?: string;
}

export interface FlowFilter {
  src?: IpPrefix;
  dst?: IpPrefix;
  ip?: IpPrefix;
  port?: number;
  sport?: number;
  dport?: number;
  proto?: number;
  iface?: string;
  direction?: 0 | 1;
  node?: string;
  cgroup?: string;
  workload?: string;
  /** epoch ms: records whose interval ends at or after it */
  sinceMs?: number;
  /** epoch ms: records whose interval starts at or before it */
  untilMs?: number;
}

/** Bad filter input; `message` says what is wrong and what is allowed. */
export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterError';
  }
}

function prefix(name: string, text: string | undefined): IpPrefix | undefined {
  if (text === undefined) return undefined;
  const parsed = parsePrefix(text);
  if (!parsed) {
    throw new FilterError(`${name}: "${text}" is not an IP address or CIDR; use e.g. 10.0.0.1, 10.0.0.0/8, 2001:db8::1 or 2001:db8::/32`);
  }
  return parsed;
}

function time(name: string, text: string | undefined, nowMs: number): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseTimeParam(text, nowMs);
  if (ms === undefined) {
    throw new FilterError(`${name}: "${text}" is neither an ISO 8601 time (2024-05-01T12:00:00Z) nor a duration (500ms, 30s, 5m, 1h, 2d, 1h30m)`);
  }
  return ms;
}

/** Validates and parses filter parameters; throws FilterError on bad input. */
export function parseFlowFilter(params: FlowFilterParams, nowMs: number): FlowFilter {
  const filter: FlowFilter = {
    src: prefix('src', params.src),
    dst: prefix('dst', params.dst),
    ip: prefix('ip', params.ip),
    port: params.port,
    sport: params.sport,
    dport: params.dport,
    iface: params.iface,
    node: params.node,
    cgroup: params.cgroup,
    workload: params.workload,
    sinceMs: time('since', params.since, nowMs),
    untilMs: time('until', params.until, nowMs),
  };
  for (const name of ['port', 'sport', 'dport'] as const) {
    const v = params[name];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 65535)) {
      throw new FilterError(`${name}: ${v} is not a port; use an integer from 0 to 65535`);
    }
  }
  if (params.proto !== undefined) {
    filter.proto = protoNumber(params.proto);
    if (filter.proto === undefined) {
      throw new FilterError(`proto: "${params.proto}" is unknown; use one of ${PROTO_NAME_LIST.join(', ')} or a protocol number 0-255`);
    }
  }
  if (params.direction !== undefined) {
    if (params.direction !== 'ingress' && params.direction !== 'egress') {
      throw new FilterError(`direction: "${params.direction}" is unknown; use ingress or egress`);
    }
    filter.direction = params.direction === 'egress' ? 1 : 0;
  }
  if (params.cgroup !== undefined) {
    if (!/^\/[^\0]*$/.test(params.cgroup) || params.cgroup.length > 4096) {
      throw new FilterError(`cgroup: "${params.cgroup}" is not a cgroup path; use an absolute path below the cgroup v2 root, e.g. /system.slice or /kubepods.slice`);
    }
    filter.cgroup = params.cgroup.length > 1 ? params.cgroup.replace(/\/+$/, '') : '/';
  }
  if (filter.sinceMs !== undefined && filter.untilMs !== undefined && filter.sinceMs > filter.untilMs) {
    throw new FilterError(`since (${params.since}) is after until (${params.until}); since must be earlier`);
  }
  return filter;
}

/** True when the filter has no address, port, protocol, interface or direction condition. */
export function hasKeyConditions(f: FlowFilter): boolean {
  return (
    f.src !== undefined ||
    f.dst !== undefined ||
    f.ip !== undefined ||
    f.port !== undefined ||
    f.sport !== undefined ||
    f.dport !== undefined ||
    f.proto !== undefined ||
    f.iface !== undefined ||
    f.direction !== undefined ||
    f.node !== undefined ||
    f.cgroup !== undefined ||
    f.workload !== undefined
  );
}

/** Whether `path` is `prefix` or below it, by whole path components. */
export function cgroupUnder(path: string, prefix: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(prefix + '/');
}

/** Fields of a flow as the filter sees them. */
export interface FilterableFlow {
  iface: string;
  direction: 0 | 1;
  proto: number;
  sport: number;
  dport: number;
  src: string;
  dst: string;
  node?: string;
  /** cgroup v2 path of the local socket; null: none (forwarded traffic), undefined: not known here */
  cgroup?: string | null;
  workload?: string | null;
}

/** Matches one flow given in text form (top-talker keys; slow path, no memo). */
export function matchesFlow(f: FlowFilter, flow: FilterableFlow): boolean {
  if (f.direction !== undefined && flow.direction !== f.direction) return false;
  if (f.proto !== undefined && flow.proto !== f.proto) return false;
  if (f.sport !== undefined && flow.sport !== f.sport) return false;
  if (f.dport !== undefined && flow.dport !== f.dport) return false;
  if (f.port !== undefined && flow.sport !== f.port && flow.dport !== f.port) return false;
  if (f.iface !== undefined && flow.iface !== f.iface) return false;
  if (f.node !== undefined && flow.node !== f.node) return false;
  if (f.cgroup !== undefined && (typeof flow.cgroup !== 'string' || !cgroupUnder(flow.cgroup, f.cgroup))) return false;
  if (f.workload !== undefined && flow.workload !== f.workload) return false;
  if (f.src && !prefixContains(f.src, flow.src)) return false;
  if (f.dst && !prefixContains(f.dst, flow.dst)) return false;
  if (f.ip && !prefixContains(f.ip, flow.src) && !prefixContains(f.ip, flow.dst)) return false;
  return true;
}
