/** The hubble-like filter flags of observe/top, mapped to the API's parameters. */
import { UsageError } from './usage.js';

export const FILTER_FLAG_OPTIONS = {
  ip: { type: 'string' },
  'from-ip': { type: 'string' },
  'to-ip': { type: 'string' },
  port: { type: 'string' },
  'from-port': { type: 'string' },
  'to-port': { type: 'string' },
  protocol: { type: 'string' },
  iface: { type: 'string' },
  direction: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

const FLAG_TO_PARAM: Record<keyof typeof FILTER_FLAG_OPTIONS, string> = {
  ip: 'ip',
  'from-ip': 'src',
  'to-ip': 'dst',
  port: 'port',
  'from-port': 'sport',
  'to-port': 'dport',
  protocol: 'proto',
  iface: 'iface',
  direction: 'direction',
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
  if (query.direction !== undefined && query.direction !== 'ingress' && query.direction !== 'egress') {
    throw new UsageError(`--direction: "${query.direction}" must be ingress or egress`);
  }
  return query;
}

export function positiveInt(flag: string, text: string | undefined, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new UsageError(`${flag}: "${text}" must be an integer from 1 to ${max}`);
  return Number(text);
}
