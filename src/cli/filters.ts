/** The hubble-like filter flags of observe/top (flags.ts), mapped to the API's parameters. */
import type { FILTER_FLAGS } from './flags.js';
import { UsageError } from './usage.js';

const FLAG_TO_PARAM: Record<keyof typeof FILTER_FLAGS, string> = {
  ip: 'ip',
  'from-ip': 'src',
  'to-ip': 'dst',
  port: 'port',
  'from-port': 'sport',
  'to-port': 'dport',
  protocol: 'proto',
  iface: 'iface',
  direction: 'direction',
  cgroup: 'cgroup',
  workload: 'workload',
  since: 'since',
  until: 'until',
};

/** Query parameters for the filter flags given. Values are checked by the server (400 -> exit 2). */
export function filterQuery(values: Record<string, unknown>): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [flag, param] of Object.entries(FLAG_TO_PARAM)) {
    const v = values[flag];
    if (typeof v === 'string') query[param] = v;
  }
  return query;
}

/** The filters given, as the user wrote them: `--from-ip 10.0.0.0/8 --protocol udp`. */
export function filterText(values: Record<string, unknown>, skip: readonly string[] = []): string {
  return Object.keys(FLAG_TO_PARAM)
    .filter((flag) => typeof values[flag] === 'string' && !skip.includes(flag))
    .map((flag) => `--${flag} ${values[flag] as string}`)
    .join(' ');
}

export function positiveInt(flag: string, text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new UsageError(`${flag}: "${text}" must be an integer from 1 to ${max}`);
  return Number(text);
}
