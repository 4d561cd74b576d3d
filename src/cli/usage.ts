/** Usage errors (exit status 2, one line on stderr), argument parsing and the help texts. */
import { parseArgs } from 'node:util';
import { optionsHelp, RUN_OPTIONS } from '../config/config.js';
import { TOP_DIMENSIONS } from '../flow/top-dimensions.js';
import { COMMANDS, type CliFlags } from './flags.js';

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

/** The closest flag to a mistyped one (a prefix of it, or at most two edits away). */
function closestFlag(typed: string, flags: string[]): string | undefined {
  const prefixed = flags.filter((f) => f.startsWith(typed));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = 3;
  for (const flag of flags) {
    const d = editDistance(typed, flag);
    if (d < bestDistance) [best, bestDistance] = [flag, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length];
}

/** "a, b or c" */
export function orList(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** Beyond this many flags an unknown flag's message points to --help instead of listing them. */
const LISTED_FLAGS_MAX = 24;

/** Turns a node:util parseArgs error into one line saying what is allowed. */
export function argsError(err: unknown, command: string, flags: CliFlags = {}): UsageError {
  const { code, message } = err as { code?: string; message: string };
  const seeHelp = `(see flowscope ${command} --help)`;
  // "Unknown option '--bogus'", "Option '-f, --follow' does not take an argument", "Option '--by <value>' argument missing"
  const flagOf = (text: string) => /'(?:-\w, )?(-[^'\s]*)/.exec(text)?.[1] ?? '';
  const names = Object.entries(flags).filter(([, f]) => !f.hidden).map(([name]) => `--${name}`);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const typed = flagOf(message);
    const closest = typed.startsWith('--') ? closestFlag(typed, names) : undefined;
    if (closest) return new UsageError(`${command}: unknown flag ${typed}; did you mean ${closest}? ${seeHelp}`);
    if (names.length > 0 && names.length <= LISTED_FLAGS_MAX) return new UsageError(`${command}: unknown flag ${typed}; use ${orList(names)}`);
    return new UsageError(`${command}: unknown flag ${typed} ${seeHelp}`);
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = flagOf(message);
    const allowed = flags[flag.replace(/^--/, '')]?.values;
    if (/does not take an argument/.test(message)) return new UsageError(`${command}: ${flag} takes no value ${seeHelp}`);
    return new UsageError(`${command}: ${flag} needs a value${allowed ? `: ${orList(allowed)}` : ''} ${seeHelp}`);
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const word = /'([^']*)'/.exec(message)?.[1] ?? '';
    return new UsageError(`${command}: unexpected argument "${word}"; ${command} takes flags only ${seeHelp}`);
  }
  return new UsageError(`${command}: ${message.split('\n')[0]} ${seeHelp}`);
}

function parse<F extends CliFlags>(command: string, args: string[], flags: F, allowPositionals: boolean) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: flags, strict: true, allowPositionals });
  } catch (err) {
    throw argsError(err, command, flags);
  }
  for (const [name, value] of Object.entries(parsed.values)) {
    const allowed = flags[name]?.values;
    if (allowed && typeof value === 'string' && !allowed.includes(value)) {
      throw new UsageError(`${command}: --${name} "${value}" is unknown; use ${orList(allowed)}`);
    }
  }
  return parsed;
}

/** Parses a command's flags strictly (no positionals); a bad flag or enum value is a one-line UsageError. */
export function parseCommandArgs<F extends CliFlags>(command: string, args: string[], flags: F) {
  return parse(command, args, flags, false).values;
}

/** Like parseCommandArgs, for a command that also takes words (flowscope completion bash). */
export function parseCommandWords<F extends CliFlags>(command: string, args: string[], flags: F) {
  return parse(command, args, flags, true);
}

export const CLIENT_OPTIONS_HELP = `  --server URL        agent or relay API (default http://127.0.0.1:9797)   [FLOWSCOPE_SERVER]
  --token TOKEN       bearer token of the API   [FLOWSCOPE_TOKEN]`;

const commandList = Object.entries(COMMANDS)
  .map(([name, spec]) => `  ${name.padEnd(12)} ${spec.summary}`)
  .join('\n');

export const HELP: Record<string, string> = {
  main: `flowscope: exact eBPF network flow monitor

Usage: flowscope COMMAND [options]

Commands:
${commandList}

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
  --cgroup PATH          cgroup v2 path prefix of the local socket (/system.slice)
  --workload NAME        workload label, exactly (nginx.service, NAMESPACE/POD)
  --since TIME|DURATION  e.g. 5m or 2024-05-01T12:00:00Z
  --until TIME|DURATION

  --last N               the N most recent records (default 20; with -f: replay N first)
  -f, --follow           keep printing new records
  -o, --output FORMAT    compact (default), json (one record per line) or table;
                         compact shows the workload (or cgroup) by the local end
${CLIENT_OPTIONS_HELP}`,
  top: `Usage: flowscope top [--by DIM] [--metric bytes|packets] [--window DURATION] [-k N] [filters]

  --by DIM              ${TOP_DIMENSIONS.map((d) => (d === 'src' ? 'src (default)' : d === 'node' ? 'node (on a relay)' : d)).join(', ')}
  --metric M            bytes (default) or packets
  --window DURATION     e.g. 30s, 5m, 1h (default 1m)
  -k N                  entries (default 10)
  filters as for observe (--ip, --from-ip, --to-ip, --port, --from-port, --to-port,
                        --protocol, --iface, --direction, --cgroup, --workload, --since, --until)
  -o, --output FORMAT   table (default) or json

An empty table comes with one line on stderr saying why (no traffic in the
window yet, or the filters matched nothing). An answer that is not exact marks
the ranks that may move with ~ and shows each entry's upper bound.
${CLIENT_OPTIONS_HELP}`,
  interfaces: `Usage: flowscope interfaces [-w] [--interval DURATION] [-o table|json]

Per-interface totals since attach (exact) and current rates (rx = ingress, tx = egress).

  -w, --watch           refresh until Ctrl-C (in place on a terminal; else a table each time)
  --interval DURATION   refresh interval of --watch, 100ms to 1h (default 1s)
  -o, --output FORMAT   table (default) or json (with --watch: one line each time)
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

A summary of the agent's (or relay's) status: polls, flows, store, overflow
and failure counters, pinned state, then the interfaces, and the sinks (an
agent) or the nodes read from Redis (a relay) as tables.

  -o, --output FORMAT   text (default) or json (the API's answer as it is)
${CLIENT_OPTIONS_HELP}`,
  completion: `Usage: flowscope completion bash|zsh

Prints a completion script for the shell, made from the CLI's own flag tables.
  bash:  source <(flowscope completion bash)          (e.g. in ~/.bashrc)
  zsh:   flowscope completion zsh > "\${fpath[1]}/_flowscope"   (then a new shell)`,
};
