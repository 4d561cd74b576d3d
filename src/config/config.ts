/**
 * The agent's configuration: one table of options, each settable by a flag
 * (`--poll-interval 2s`), an environment variable (`FLOWSCOPE_POLL_INTERVAL`)
 * or a key of the config file (`poll-interval: 2s`, YAML or JSON), in that
 * order of precedence, over the defaults. Every value is validated here, and
 * a bad one is a ConfigError whose message is one line for the user.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { formatDuration, parseDuration } from '../flow/duration.js';
import { DEFAULT_EXPIRY } from '../engine/expiry.js';
import { DEFAULT_MEMORY_LIMIT, formatBytes, memoryBudget, parseBytes, possibleCpus, type MemoryBudget } from '../engine/memory-budget.js';
import { DEFAULT_TOP } from '../engine/top/top-windows.js';
import { isLoopbackListen, parseListen } from '../lib/listen.js';
import { DEFAULT_BATCH_SIZE, DEFAULT_BUFFER_RECORDS } from '../redis/defaults.js';
import { redactUrl, redisUrlProblem } from '../redis/url.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Kind = 'string' | 'list' | 'duration' | 'int' | 'enum' | 'bool' | 'bytes';

interface OptionSpec {
  kind: Kind;
  help: string;
  default?: string | number | string[];
  min?: number;
  max?: number;
  values?: readonly string[];
  /** checks a string value; returns an error text or undefined */
  check?: (v: string) => string | undefined;
  /** not shown in `--help` */
  hidden?: boolean;
  /** more environment variables read for the option, after FLOWSCOPE_<OPTION> */
  env?: readonly string[];
}

/** A command's options by flag name: each is also FLOWSCOPE_<OPTION> and a key of the config file. */
export type OptionTable = Record<string, OptionSpec>;

/** An option's value after resolution: durations and sizes in ms and bytes, booleans as 'true'/'false'. */
export type OptionValue = string | number | string[] | undefined;

const ms = (n: number) => n;

/** Every option of `flowscope run`, by flag name. */
export const RUN_OPTIONS = {
  iface: { kind: 'list', help: "interface to attach to (repeatable, or comma-separated); a glob such as 'veth*' also attaches matching interfaces that appear later" },
  'iface-rescan': { kind: 'duration', default: ms(2000), min: 100, max: 3_600_000, help: 'how often interfaces are listed to attach new matches and drop vanished ones' },
  hook: { kind: 'enum', values: ['tc', 'xdp'], default: 'tc', help: 'tc: TC ingress+egress; xdp: XDP ingress + TC egress' },
  listen: {
    kind: 'string',
    default: '127.0.0.1:9797',
    help: 'HTTP API address HOST:PORT (port 0 = any free port)',
    check: (v) => (parseListen(v) ? undefined : 'use HOST:PORT, e.g. 127.0.0.1:9797 or [::1]:9797'),
  },
  node: { kind: 'string', help: 'node name in records (default: the hostname)' },
  redis: {
    kind: 'string',
    help: 'Redis URL for the streams sink: redis://[USER:PASS@]HOST:PORT[/DB], rediss:// (TLS), redis+cluster://H1:P1,H2:P2 (see docs/redis.md)',
    check: redisUrlProblem,
    // the usual name for a Redis URL; FLOWSCOPE_REDIS (the option's own name) wins
    env: ['FLOWSCOPE_REDIS_URL'],
  },
  'redis-maxlen': { kind: 'int', default: 1_000_000, min: 1, max: 1e12, help: 'approximate MAXLEN of each Redis stream' },
  'redis-buffer': { kind: 'int', default: DEFAULT_BUFFER_RECORDS, min: 1, max: 1 << 26, help: 'records buffered while Redis is down or slow; beyond, records are dropped and counted' },
  'redis-batch': { kind: 'int', default: DEFAULT_BATCH_SIZE, min: 1, max: 100_000, help: 'XADDs per Redis pipeline' },
  'redis-export-interval': {
    kind: 'duration',
    default: ms(10_000),
    min: 10,
    max: 86_400_000,
    help: 'one Redis entry per flow per this interval, its counts summed over the exports (a multiple of --poll-interval, rounded up to one of --export-interval); the in-memory store keeps every export',
  },
  token: { kind: 'string', help: 'bearer token required by the HTTP API (except /healthz, /readyz)', check: (v) => (v.length >= 1 && !/\s/.test(v) ? undefined : 'a token has no spaces') },
  'insecure-no-auth': { kind: 'bool', default: 'false', help: 'serve the API on a non-loopback --listen without --token (anyone who reaches the port reads every flow)' },
  'max-followers': { kind: 'int', default: 64, min: 1, max: 100_000, help: 'clients following /api/v1/flows/stream at once (the dashboard, observe -f); beyond, 503' },
  'poll-interval': { kind: 'duration', default: ms(1000), min: 10, max: 3_600_000, help: 'how often the kernel counters are drained' },
  'export-interval': { kind: 'duration', min: 10, max: 86_400_000, help: 'how often records are emitted (a multiple of --poll-interval; default: every poll)' },
  'flow-map-size': { kind: 'int', default: 65_536, min: 16, max: 1 << 24, help: 'entries of each kernel flow map' },
  'iface-map-size': { kind: 'int', default: 8192, min: 64, max: 1 << 20, help: 'entries of the kernel interface counter map (4 per attached interface)' },
  attribution: { kind: 'bool', default: 'true', help: "label flows with their local socket's cgroup (cgroup, workload, pod, container); --attribution false turns it off in the kernel too" },
  'metrics-workloads': { kind: 'int', default: 20, min: 0, max: 1000, help: 'workloads with their own series in flowscope_workload_{bytes,packets}_total (the busiest; the rest count as "other"); 0: no per-workload metrics' },
  'tc-mechanism': { kind: 'enum', values: ['tcx', 'clsact'], default: 'tcx', help: 'how tc hooks attach: tcx links (kernel >= 6.6; clsact filters on older kernels) or clsact filters always' },
  'keep-attached': { kind: 'bool', default: 'false', help: 'on SIGTERM/SIGINT leave the programs attached, pinned and counting for the next start to adopt (upgrades, restarts)' },
  'pin-path': { kind: 'string', default: '/sys/fs/bpf/flowscope', help: 'bpffs directory for pinned state; the agent uses PIN_PATH/NODE', check: (v) => (/^\/[^\s]*$/.test(v) ? undefined : 'an absolute path under a bpffs mount') },
  'store-size': { kind: 'int', default: 262_144, min: 1, max: 1 << 26, help: 'records kept in memory for /api/v1/flows' },
  'memory-limit': {
    kind: 'bytes',
    default: DEFAULT_MEMORY_LIMIT,
    min: 64 * 1024 * 1024,
    max: 2 ** 44,
    help: 'memory budget of the agent, kernel flow maps included (512Mi, 1Gi, bytes); sets the default of --max-flows',
  },
  'max-flows': { kind: 'int', min: 1, max: 1 << 26, help: 'flows tracked at most (default: what --memory-limit affords); beyond, the oldest are evicted, flows seen once first' },
  'tcp-timeout': { kind: 'duration', default: DEFAULT_EXPIRY.tcpIdleMs, min: 1000, help: 'idle timeout of a TCP flow' },
  'tcp-syn-timeout': { kind: 'duration', default: DEFAULT_EXPIRY.tcpSynMs, min: 1000, help: 'idle timeout of a TCP flow that never got past the handshake (SYN, SYN-ACK, refused, scans)' },
  'tcp-fin-timeout': { kind: 'duration', default: DEFAULT_EXPIRY.tcpFinMs, min: 1000, help: 'idle timeout of a TCP flow after a FIN' },
  'tcp-rst-timeout': { kind: 'duration', default: DEFAULT_EXPIRY.tcpRstMs, min: 1000, help: 'idle timeout of a TCP flow after a RST' },
  'udp-timeout': { kind: 'duration', default: DEFAULT_EXPIRY.udpIdleMs, min: 1000, help: 'idle timeout of a UDP flow' },
  'icmp-timeout': { kind: 'duration', default: DEFAULT_EXPIRY.icmpIdleMs, min: 1000, help: 'idle timeout of an ICMP/ICMPv6 flow' },
  'idle-timeout': { kind: 'duration', default: DEFAULT_EXPIRY.otherIdleMs, min: 1000, help: 'idle timeout of a flow of any other protocol' },
  'active-timeout': { kind: 'duration', default: DEFAULT_EXPIRY.activeMs, min: 1000, help: 'longest life of a flow, busy or not' },
  'top-bucket': { kind: 'duration', default: DEFAULT_TOP.bucketMs, min: 100, max: 3_600_000, help: 'granularity of the top-talkers windows' },
  'top-horizon': { kind: 'duration', default: DEFAULT_TOP.horizonMs, min: 1000, max: 7 * 86_400_000, help: 'longest top-talkers window kept' },
  'top-capacity': { kind: 'int', default: DEFAULT_TOP.capacity, min: 10, max: 1_000_000, help: 'groups kept per top-talkers bucket, dimension and metric' },
  'log-level': { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', help: 'log level' },
  'log-format': { kind: 'enum', values: ['auto', 'json', 'pretty'], default: 'auto', help: 'auto: pretty on a terminal, JSON otherwise' },
  source: { kind: 'enum', values: ['kernel', 'synthetic'], default: 'kernel', help: 'synthetic: generated traffic, no kernel (development and demos)', hidden: true },
  'synthetic-flows': { kind: 'int', default: 64, min: 1, max: 1 << 24, help: 'flows of the synthetic source', hidden: true },
} as const satisfies Record<string, OptionSpec>;

export type RunOptionName = keyof typeof RUN_OPTIONS;

export interface AgentConfig {
  /** names and glob patterns */
  ifaces: string[];
  ifaceRescanMs: number;
  hook: 'tc' | 'xdp';
  listen: string;
  node: string;
  redis?: string;
  redisMaxLen: number;
  redisBuffer: number;
  redisBatch: number;
  /** the Redis sink's entry interval (a multiple of exportIntervalMs); equal to it: one entry per export */
  redisExportIntervalMs: number;
  token?: string;
  /** a non-loopback listen without a token was asked for */
  insecureNoAuth: boolean;
  maxFollowers: number;
  pollIntervalMs: number;
  exportIntervalMs: number;
  flowMapSize: number;
  ifaceMapSize: number;
  keepAttached: boolean;
  tcMechanism: 'tcx' | 'clsact';
  attribution: boolean;
  /** workloads with their own Prometheus series (0: none) */
  metricsWorkloads: number;
  /** bpffs directory of this node's pinned state (pin-path/node) */
  pinDir: string;
  storeSize: number;
  /** bytes */
  memoryLimit: number;
  maxFlows: number;
  /** what --memory-limit affords, and where max-flows came from */
  memoryBudget: MemoryBudget;
  maxFlowsFrom: 'max-flows' | 'memory-limit';
  tcpTimeoutMs: number;
  tcpSynTimeoutMs: number;
  tcpFinTimeoutMs: number;
  tcpRstTimeoutMs: number;
  udpTimeoutMs: number;
  icmpTimeoutMs: number;
  idleTimeoutMs: number;
  activeTimeoutMs: number;
  topBucketMs: number;
  topHorizonMs: number;
  topCapacity: number;
  logLevel: string;
  logFormat: 'auto' | 'json' | 'pretty';
  source: 'kernel' | 'synthetic';
  syntheticFlows: number;
}

/** FLOWSCOPE_POLL_INTERVAL for poll-interval. */
export const envName = (option: string): string => `FLOWSCOPE_${option.toUpperCase().replace(/-/g, '_')}`;

type Raw = string | number | string[] | boolean | undefined;

/** A node name as one bpffs directory name: no slash, no leading dot. */
export function pinName(node: string): string {
  return node.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_');
}

/** Reads a config file (YAML or JSON: JSON is YAML) into option -> value, for the options of `table`. */
export function readConfigFile(path: string, table: OptionTable = RUN_OPTIONS): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`config file ${path} must hold a mapping of option: value`);
  // Accept camelCase keys too (pollInterval) by mapping them to flag names.
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-');
    const name = flag === 'ifaces' || flag === 'interfaces' ? 'iface' : flag;
    if (!(name in table)) throw new ConfigError(`config file ${path}: unknown option "${key}"; known: ${Object.keys(table).join(', ')}`);
    out[name] = value;
  }
  return out;
}

function convert(name: string, spec: OptionSpec, value: Raw, origin: string): string | number | string[] {
  const where = origin === '--' ? `--${name}` : `${origin} ${name}`;
  if (spec.kind === 'list') {
    const items = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter(Boolean);
    for (const item of items) if (!/^[^\s/:]{1,15}$/.test(item)) throw new ConfigError(`${where}: "${item}" is not an interface name`);
    return items;
  }
  if (Array.isArray(value)) throw new ConfigError(`${where}: give one value, not a list`);
  const text = String(value);
  switch (spec.kind) {
    case 'duration': {
      const parsed = typeof value === 'number' ? value : parseDuration(text);
      if (parsed === undefined) throw new ConfigError(`${where}: "${text}" is not a duration; use e.g. 500ms, 1s, 5m, 1h`);
      if ((spec.min !== undefined && parsed < spec.min) || (spec.max !== undefined && parsed > spec.max)) {
        throw new ConfigError(`${where}: ${text} is out of range (${spec.min ?? 0}ms to ${spec.max ?? 'any'}${spec.max ? 'ms' : ''})`);
      }
      return parsed;
    }
    case 'bytes': {
      const parsed = typeof value === 'number' ? value : parseBytes(text);
      if (parsed === undefined || (spec.min !== undefined && parsed < spec.min) || (spec.max !== undefined && parsed > spec.max)) {
        throw new ConfigError(`${where}: "${text}" must be a size from ${formatBytes(spec.min ?? 0)} to ${formatBytes(spec.max ?? 0)}, e.g. 512Mi, 1Gi, 1.5G or bytes`);
      }
      return parsed;
    }
    case 'int': {
      const n = typeof value === 'number' ? value : /^\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isInteger(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(`${where}: "${text}" must be an integer from ${spec.min} to ${spec.max}`);
      }
      return n;
    }
    case 'bool': {
      if (typeof value === 'boolean') return value ? 'true' : 'false';
      const t = text.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(t)) return 'true';
      if (['false', '0', 'no', 'off'].includes(t)) return 'false';
      throw new ConfigError(`${where}: "${text}" must be true or false`);
    }
    case 'enum':
      if (!spec.values!.includes(text)) throw new ConfigError(`${where}: "${text}" must be one of ${spec.values!.join(', ')}`);
      return text;
    case 'string': {
      const problem = spec.check?.(text);
      if (problem) throw new ConfigError(`${where}: "${redactUrl(text)}" is invalid: ${problem}`);
      return text;
    }
  }
}

export interface ConfigSources {
  /** parsed flags (parseArgs values), by flag name */
  flags: Record<string, Raw>;
  env: NodeJS.ProcessEnv;
  /** options read from the config file, by flag name */
  file?: Record<string, unknown>;
  /** CPUs the kernel sizes per-CPU maps for (default: this host's, /sys/devices/system/cpu/possible) */
  possibleCpus?: number;
}

/** Merges flags > environment > file > defaults for every option of `table`, each value checked. */
export function resolveOptions(table: OptionTable, { flags, env, file = {} }: Omit<ConfigSources, 'possibleCpus'>): Record<string, OptionValue> {
  const values: Record<string, OptionValue> = {};
  for (const [name, spec] of Object.entries(table)) {
    const fromFlag = flags[name];
    const envVar = [envName(name), ...(spec.env ?? [])].find((v) => env[v] !== undefined && env[v] !== '');
    const fromFile = file[name] as Raw;
    if (fromFlag !== undefined && !(Array.isArray(fromFlag) && fromFlag.length === 0)) values[name] = convert(name, spec, fromFlag, '--');
    else if (envVar !== undefined) values[name] = convert(name, spec, env[envVar], `${envVar}:`);
    else if (fromFile !== undefined && fromFile !== null) values[name] = convert(name, spec, fromFile, 'config file:');
    else values[name] = spec.default as OptionValue;
  }
  if (values['top-horizon'] !== undefined && (values['top-horizon'] as number) < (values['top-bucket'] as number)) {
    throw new ConfigError('top-horizon must be at least top-bucket');
  }
  if (values.listen !== undefined && values.token === undefined && values['insecure-no-auth'] !== 'true' && !isLoopbackListen(values.listen as string)) {
    throw new ConfigError(`listen ${values.listen as string} is not a loopback address and no token is set: anyone who reaches it would read every flow; set --token (FLOWSCOPE_TOKEN), or --insecure-no-auth to serve it open`);
  }
  return values;
}

/** Merges flags > environment > file > defaults and validates the result. */
export function resolveConfig({ flags, env, file = {}, possibleCpus: cpus }: ConfigSources): AgentConfig {
  const values = resolveOptions(RUN_OPTIONS, { flags, env, file });
  const poll = values['poll-interval'] as number;
  const exportInterval = (values['export-interval'] as number | undefined) ?? poll;
  if (exportInterval < poll) throw new ConfigError(`export-interval (${exportInterval}ms) must not be shorter than poll-interval (${poll}ms)`);
  const redisExport = values['redis-export-interval'] as number;
  if (redisExport % poll !== 0 && redisExport !== RUN_OPTIONS['redis-export-interval'].default) {
    throw new ConfigError(`redis-export-interval (${redisExport}ms) must be a multiple of poll-interval (${poll}ms)`);
  }
  const budget = memoryBudget({
    memoryLimit: values['memory-limit'] as number,
    flowMapSize: values['flow-map-size'] as number,
    possibleCpus: cpus ?? possibleCpus(),
    storeSize: values['store-size'] as number,
    pollIntervalMs: poll,
    topBucketMs: values['top-bucket'] as number,
    redisBuffer: values.redis === undefined ? 0 : (values['redis-buffer'] as number),
  });
  return {
    ifaces: [...new Set((values.iface as string[] | undefined) ?? [])],
    ifaceRescanMs: values['iface-rescan'] as number,
    hook: values.hook as 'tc' | 'xdp',
    listen: values.listen as string,
    node: (values.node as string | undefined) ?? hostname(),
    redis: values.redis as string | undefined,
    redisMaxLen: values['redis-maxlen'] as number,
    redisBuffer: values['redis-buffer'] as number,
    redisBatch: values['redis-batch'] as number,
    redisExportIntervalMs: Math.max(1, Math.ceil(redisExport / exportInterval)) * exportInterval,
    token: values.token as string | undefined,
    insecureNoAuth: values['insecure-no-auth'] === 'true',
    maxFollowers: values['max-followers'] as number,
    pollIntervalMs: poll,
    exportIntervalMs: exportInterval,
    flowMapSize: values['flow-map-size'] as number,
    ifaceMapSize: values['iface-map-size'] as number,
    keepAttached: values['keep-attached'] === 'true',
    tcMechanism: values['tc-mechanism'] as 'tcx' | 'clsact',
    attribution: values.attribution !== 'false',
    metricsWorkloads: values['metrics-workloads'] as number,
    pinDir: `${(values['pin-path'] as string).replace(/\/+$/, '')}/${pinName((values.node as string | undefined) ?? hostname())}`,
    storeSize: values['store-size'] as number,
    memoryLimit: budget.memoryLimit,
    maxFlows: (values['max-flows'] as number | undefined) ?? budget.maxFlows,
    memoryBudget: budget,
    maxFlowsFrom: values['max-flows'] === undefined ? 'memory-limit' : 'max-flows',
    tcpTimeoutMs: values['tcp-timeout'] as number,
    tcpSynTimeoutMs: values['tcp-syn-timeout'] as number,
    tcpFinTimeoutMs: values['tcp-fin-timeout'] as number,
    tcpRstTimeoutMs: values['tcp-rst-timeout'] as number,
    udpTimeoutMs: values['udp-timeout'] as number,
    icmpTimeoutMs: values['icmp-timeout'] as number,
    idleTimeoutMs: values['idle-timeout'] as number,
    activeTimeoutMs: values['active-timeout'] as number,
    topBucketMs: values['top-bucket'] as number,
    topHorizonMs: values['top-horizon'] as number,
    topCapacity: values['top-capacity'] as number,
    logLevel: values['log-level'] as string,
    logFormat: values['log-format'] as 'auto' | 'json' | 'pretty',
    source: values.source as 'kernel' | 'synthetic',
    syntheticFlows: values['synthetic-flows'] as number,
  };
}

/** Help lines for the options of `table` (`flowscope run --help`, `flowscope relay --help`). */
export function optionsHelp(table: OptionTable): string {
  return Object.entries(table)
    .filter(([, spec]) => !spec.hidden)
    .map(([name, spec]) => {
      const shown = spec.kind === 'duration' ? formatDuration(spec.default as number) : spec.kind === 'bytes' ? formatBytes(spec.default as number) : String(spec.default);
      const def = spec.default === undefined || spec.kind === 'bool' ? '' : ` (default ${shown})`;
      return `  ${`--${name}`.padEnd(20)} ${spec.help}${def}   [${envName(name)}]`;
    })
    .join('\n');
}
