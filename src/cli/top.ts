/** flowscope top: the top talkers of a window. */
import { TOP_DIMENSIONS } from '../flow/top-dimensions.js';
import { ApiClient, clientOptions } from './client.js';
import { FILTER_FLAG_OPTIONS, filterQuery, positiveInt } from './filters.js';
import { table } from './format.js';
import { CLIENT_FLAG_OPTIONS, HELP, UsageError, parseCommandArgs } from './usage.js';

interface TopAnswer {
  by: string;
  metric: string;
  window: string;
  from: string | null;
  to: string | null;
  exact?: boolean;
  entries: { key: Record<string, string | number>; bytes: number; packets: number; share: number }[];
}


export function keyText(key: Record<string, string | number>): string {
  if ('sport' in key && 'dport' in key && 'src' in key) {
    const ep = (a: string | number, p: string | number) => (String(a).includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
    const icmp = key.icmpType !== undefined ? ` type ${key.icmpType} code ${key.icmpCode}` : '';
    return `${key.iface} ${key.direction} ${ep(key.src, key.sport)} -> ${ep(key.dst, key.dport)} ${key.proto}${icmp}`;
  }
  if ('src' in key && 'dst' in key) return `${key.src} -> ${key.dst}`;
  return Object.values(key).join(' ');
}

export async function top(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const values = parseCommandArgs('top', args, {
    ...FILTER_FLAG_OPTIONS,
    ...CLIENT_FLAG_OPTIONS,
    by: { type: 'string' },
    metric: { type: 'string' },
    window: { type: 'string' },
    k: { type: 'string', short: 'k' },
    output: { type: 'string', short: 'o' },
  });
  if (values.help) return out(HELP.top + '\n');
  if (values.by !== undefined && !(TOP_DIMENSIONS as readonly string[]).includes(values.by)) throw new UsageError(`top: --by "${values.by}" is unknown; use ${TOP_DIMENSIONS.join(', ')}`);
  if (values.metric !== undefined && values.metric !== 'bytes' && values.metric !== 'packets') throw new UsageError(`top: --metric "${values.metric}" is unknown; use bytes or packets`);
  const format = values.output ?? 'table';
  if (format !== 'table' && format !== 'json') throw new UsageError(`top: -o "${format}" is unknown; use table or json`);
  const k = positiveInt('-k', values.k, 1_000_000);
  const client = new ApiClient(clientOptions(values, env));
  const answer = await client.json<TopAnswer>('/api/v1/top', { ...filterQuery(values), by: values.by, metric: values.metric, window: values.window, k });
  if (format === 'json') return out(JSON.stringify(answer) + '\n');
  const rows = answer.entries.map((e, i) => [i + 1, keyText(e.key), e.bytes, e.packets, `${(e.share * 100).toFixed(1)}%`]);
  const span = answer.from ? `${answer.from} .. ${answer.to}` : 'no data yet';
  out(`top ${answer.by} by ${answer.metric}, window ${answer.window} (${span})${answer.exact === false ? ', approximate' : ''}\n`);
  out(table(['#', answer.by.toUpperCase(), 'BYTES', 'PACKETS', 'SHARE'], rows) + '\n');
}
