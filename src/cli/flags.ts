/**
 * Every command's flags, in one table per command: the parser
 * (parseCommandArgs) reads them, checks the values of enum flags with them,
 * and the shell completion scripts are generated from them (completion.ts),
 * so a flag or a value cannot be added to one and missed by the other.
 */
import { RUN_OPTIONS, type OptionTable } from '../config/config.js';
import { RELAY_OPTIONS } from '../config/relay.js';
import { TOP_DIMENSIONS, TOP_METRICS } from '../flow/top-dimensions.js';

/** One flag: what node:util parseArgs takes, plus what the checks and the completion use. */
export interface CliFlag {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** the only values allowed: checked by parseCommandArgs, offered by the completion */
  values?: readonly string[];
  /** offered by the completion, not enforced: a list, the host's interface names, or file paths */
  complete?: readonly string[] | 'iface' | 'file';
  /** one line, shown by the zsh completion */
  help: string;
  /** not offered by the completion (options that --help does not show either) */
  hidden?: boolean;
}

export type CliFlags = Record<string, CliFlag>;

const HELP_FLAG = { help: { type: 'boolean', short: 'h', help: 'show the options' } } as const satisfies CliFlags;

/** --server, --token and --help, which every client command takes. */
export const CLIENT_FLAGS = {
  server: { type: 'string', help: 'agent or relay API URL (default http://127.0.0.1:9797)' },
  token: { type: 'string', help: 'bearer token of the API' },
  ...HELP_FLAG,
} as const satisfies CliFlags;

export const PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp'] as const;
export const DIRECTIONS = ['ingress', 'egress'] as const;

/** The hubble-like filters of observe and top (filters.ts maps them to the API's parameters). */
export const FILTER_FLAGS = {
  ip: { type: 'string', help: 'address or CIDR, either side' },
  'from-ip': { type: 'string', help: 'source address or CIDR' },
  'to-ip': { type: 'string', help: 'destination address or CIDR' },
  port: { type: 'string', help: 'port, either side' },
  'from-port': { type: 'string', help: 'source port' },
  'to-port': { type: 'string', help: 'destination port' },
  protocol: { type: 'string', complete: PROTOCOLS, help: 'tcp, udp, icmp, icmpv6, sctp or 0-255' },
  iface: { type: 'string', complete: 'iface', help: 'interface' },
  direction: { type: 'string', values: DIRECTIONS, help: 'ingress or egress' },
  cgroup: { type: 'string', help: 'cgroup v2 path prefix of the local socket (/system.slice)' },
  workload: { type: 'string', help: 'workload label, exactly (nginx.service, NAMESPACE/POD)' },
  since: { type: 'string', help: 'ISO time or duration ago (5m)' },
  until: { type: 'string', help: 'ISO time or duration ago' },
} as const satisfies CliFlags;

export const OBSERVE_FORMATS = ['compact', 'json', 'table'] as const;
export const TABLE_FORMATS = ['table', 'json'] as const;
export const STATUS_FORMATS = ['text', 'json'] as const;

export const OBSERVE_FLAGS = {
  ...FILTER_FLAGS,
  last: { type: 'string', help: 'the N most recent records (default 20)' },
  follow: { type: 'boolean', short: 'f', help: 'keep printing new records' },
  output: { type: 'string', short: 'o', values: OBSERVE_FORMATS, help: 'output format' },
  ...CLIENT_FLAGS,
} as const satisfies CliFlags;

export const TOP_FLAGS = {
  by: { type: 'string', values: TOP_DIMENSIONS, help: 'group by' },
  metric: { type: 'string', values: TOP_METRICS, help: 'rank by' },
  window: { type: 'string', complete: ['10s', '30s', '1m', '5m', '15m', '1h'], help: 'window length (default 1m)' },
  k: { type: 'string', short: 'k', help: 'entries (default 10)' },
  ...FILTER_FLAGS,
  output: { type: 'string', short: 'o', values: TABLE_FORMATS, help: 'output format' },
  ...CLIENT_FLAGS,
} as const satisfies CliFlags;

export const INTERFACES_FLAGS = {
  watch: { type: 'boolean', short: 'w', help: 'refresh until Ctrl-C' },
  interval: { type: 'string', complete: ['1s', '2s', '5s', '10s'], help: 'refresh interval of --watch (default 1s)' },
  output: { type: 'string', short: 'o', values: TABLE_FORMATS, help: 'output format' },
  ...CLIENT_FLAGS,
} as const satisfies CliFlags;

export const STATUS_FLAGS = {
  output: { type: 'string', short: 'o', values: STATUS_FORMATS, help: 'output format' },
  ...CLIENT_FLAGS,
} as const satisfies CliFlags;

export const DETACH_FLAGS = {
  'pin-path': { type: 'string', complete: 'file', help: 'bpffs directory of pinned state' },
  ...HELP_FLAG,
} as const satisfies CliFlags;

export const COMPLETION_SHELLS = ['bash', 'zsh'] as const;
export const COMPLETION_FLAGS = { ...HELP_FLAG } as const satisfies CliFlags;

/** The flags of a config option table (run, relay): values are checked by the config, so only offered here. */
function optionFlags(table: OptionTable): CliFlags {
  const flags: CliFlags = {};
  for (const [name, spec] of Object.entries(table)) {
    flags[name] = {
      type: spec.kind === 'bool' ? 'boolean' : 'string',
      ...(spec.kind === 'list' ? { multiple: true } : {}),
      ...(spec.values ? { complete: spec.values } : name === 'iface' ? { complete: 'iface' as const } : {}),
      help: spec.help,
      ...(spec.hidden ? { hidden: true } : {}),
    };
  }
  return flags;
}

const CONFIG_FLAG = { config: { type: 'string', complete: 'file', help: 'config file (YAML or JSON)' } } as const satisfies CliFlags;

export const RUN_FLAGS: CliFlags = { ...optionFlags(RUN_OPTIONS), ...CONFIG_FLAG, ...HELP_FLAG };
export const RELAY_FLAGS: CliFlags = { ...optionFlags(RELAY_OPTIONS), ...CONFIG_FLAG, ...HELP_FLAG };

interface CommandSpec {
  /** one line of `flowscope --help` */
  summary: string;
  flags: CliFlags;
  /** the words a command takes besides flags (the others take flags only) */
  words?: readonly string[];
}

/** Every command, in the order `flowscope --help` lists them. */
export const COMMANDS = {
  run: { summary: 'run the agent: attach to interfaces, serve the HTTP API', flags: RUN_FLAGS },
  observe: { summary: 'print flow records (like hubble observe); -f to follow', flags: OBSERVE_FLAGS },
  top: { summary: 'print the top talkers of a window', flags: TOP_FLAGS },
  interfaces: { summary: 'print per-interface accounting; --watch to refresh', flags: INTERFACES_FLAGS },
  status: { summary: "print the agent's (or relay's) status", flags: STATUS_FLAGS },
  relay: { summary: "serve the whole fleet's flows from Redis streams (docs/redis.md)", flags: RELAY_FLAGS },
  detach: { summary: 'uninstall: remove every program, link, pin and qdisc flowscope created on this node', flags: DETACH_FLAGS },
  completion: { summary: 'print the bash or zsh completion script', flags: COMPLETION_FLAGS, words: COMPLETION_SHELLS },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;
export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];
