/** Usage errors (exit status 2, one line on stderr), argument parsing and the help texts. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { optionsHelp, RUN_OPTIONS } from '../config/config.js';
import { TOP_DIMENSIONS } from '../flow/top-dimensions.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure that is not the user's input: exit status 1, one line. */
export class RuntimeFailure extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'RuntimeFailure';
  }
}

/** Turns a node:util parseArgs error into one line. */
export function argsError(err: unknown, command: string): UsageError {
  const message = (err as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
  return new UsageError(`${command}: ${message} (see flowscope ${command} --help)`);
}

type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** --server, --token and --help, which every client command takes. */
export const CLIENT_FLAG_OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagOptions;

/** Parses a command's flags strictly (no positionals); a bad flag is a one-line UsageError. */
export function parseCommandArgs<O extends FlagOptions>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw argsError(err, command);
  }
}

export const CLIENT_OPTIONS_HELP = `  --server URL        agent or relay API (default http://127.0.0.1:9797)   [FLOWSCOPE_SERVER]
  --token TOKEN       bearer token of the API   [FLOWSCOPE_TOKEN]`;

export const HELP: Record<string, string> = {
  main: `flowscope: exact eBPF network flow monitor

Usage: flowscope COMMAND [options]

Commands:
  run          run the agent: attach to interfaces, serve the HTTP API
  observe      print flow records (like hubble observe); -f to follow
  top          print the top talkers of a window
  interfaces   print per-interface accounting
  status       print the agent's status
  relay        serve the whole fleet's flows from Redis streams (docs/redis.md)
  detach       uninstall: remove every program, link, pin and qdisc flowscope created on this node

Run "flowscope COMMAND --help" for a command's options.`,
  run: `Usage: flowscope run --iface NAME [--iface NAME...] [options]

Needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON. Options may also be set by
environment variables (shown in brackets) and a config file (--config FILE,
YAML or JSON, keys as the option names); flags win over the environment,
which wins over the file.

  --config FILE        config file   [FLOWSCOPE_CONFIG]
${optionsHelp(RUN_OPTIONS)}`,
  observe: `Usage: flowscope observe [filters] [-f] [--last N] [-o compact|json|table]

Filters (combined with AND):
  --ip ADDR|CIDR         either side          --port N        either port
  --from-ip ADDR|CIDR    source               --from-port N   source port
  --to-ip ADDR|CIDR      destination          --to-port N     destination port
  --protocol NAME|NUM    tcp, udp, icmp, icmpv6, sctp or 0-255
  --iface NAME           interface            --direction ingress|egress
  --since TIME|DURATION  e.g. 5m or 2024-05-01T12:00:00Z
  --until TIME|DURATION

  --last N               the N most recent records (default 20; with -f: replay N first)
  -f, --follow           keep printing new records
  -o, --output FORMAT    compact (default), json (one record per line) or table
${CLIENT_OPTIONS_HELP}`,
  top: `Usage: flowscope top [--by DIM] [--metric bytes|packets] [--window DURATION] [-k N] [filters]

  --by DIM              ${TOP_DIMENSIONS.map((d) => (d === 'src' ? 'src (default)' : d === 'node' ? 'node (on a relay)' : d)).join(', ')}
  --metric M            bytes (default) or packets
  --window DURATION     e.g. 30s, 5m, 1h (default 1m)
  -k N                  entries (default 10)
  filters as for observe (--ip, --from-ip, --port, --protocol, --iface, --direction...)
  -o, --output FORMAT   table (default) or json
${CLIENT_OPTIONS_HELP}`,
  interfaces: `Usage: flowscope interfaces [-o table|json]

Per-interface totals since attach and current rates (rx = ingress, tx = egress).
${CLIENT_OPTIONS_HELP}`,
  detach: `Usage: flowscope detach [--pin-path DIR]

Removes everything flowscope created on this node: the programs that agents
stopped with --keep-attached (or killed) left attached and counting, their
pinned maps under DIR (default /sys/fs/bpf/flowscope, every node's), the
clsact qdiscs flowscope created (only where no other filter uses them), and
flowscope tc filters that no pin accounts for. Counts not yet drained are
lost. Refuses, exit 1, while an agent runs.

  --pin-path DIR      bpffs directory of pinned state   [FLOWSCOPE_PIN_PATH]`,
  status: `Usage: flowscope status [-o text|json]

${CLIENT_OPTIONS_HELP}`,
};
