/** flowscope top: the top talkers of a window; says why when there are none. */
import { ApiClient, clientOptions } from './client.js';
import { filterQuery, filterText, positiveInt } from './filters.js';
import { TOP_FLAGS } from './flags.js';
import { table } from './format.js';
import type { StatusAnswer } from './status.js';
import { bytesText, countText, durationText, timeText } from './units.js';
import { HELP, parseCommandArgs } from './usage.js';

type KeyValue = string | number | null;

interface TopEntryAnswer {
  key: Record<string, KeyValue>;
  bytes: number;
  packets: number;
  share: number;
  /** upper bounds of the group's true sums, when the answer is not exact (servers before issue 11 leave them out) */
  bytesMax?: number;
  packetsMax?: number;
}

export interface TopAnswer {
  by: string;
  metric: string;
  window: string;
  windowSeconds?: number;
  from: string | null;
  to: string | null;
  totalBytes?: number;
  totalPackets?: number;
  exact?: boolean;
  /** the most a group that is not listed can have */
  unlistedBytesMax?: number;
  unlistedPacketsMax?: number;
  entries: TopEntryAnswer[];
}

/** A key's value; null (cgroup, workload: the flow has no local socket) reads `-`. */
const keyValue = (v: KeyValue | undefined) => (v === null || v === undefined ? '-' : String(v));

export function keyText(key: Record<string, KeyValue>): string {
  if ('sport' in key && 'dport' in key && 'src' in key) {
    const ep = (a: KeyValue, p: KeyValue) => (String(a).includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
    const icmp = key.icmpType !== undefined ? ` type ${key.icmpType} code ${key.icmpCode}` : '';
    return `${key.iface} ${key.direction} ${ep(key.src, key.sport)} -> ${ep(key.dst, key.dport)} ${key.proto}${icmp}`;
  }
  if ('src' in key && 'dst' in key) return `${key.src} -> ${key.dst}`;
  return Object.values(key).map(keyValue).join(' ');
}

export async function top(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const values = parseCommandArgs('top', args, TOP_FLAGS);
  if (values.help) return out(HELP.top + '\n');
  const k = positiveInt('-k', values.k, 1_000_000);
  const client = new ApiClient(clientOptions(values, env));
  const answer = await client.json<TopAnswer>('/api/v1/top', { ...filterQuery(values), by: values.by, metric: values.metric, window: values.window, k });
  if (values.output === 'json') return out(JSON.stringify(answer) + '\n');
  out(topText(answer));
  if (answer.entries.length === 0) process.stderr.write(`${await emptyReason(client, answer, values)}\n`);
}

/** The heading, the table and, for an answer that is not exact, a footnote on which ranks are certain. */
export function topText(answer: TopAnswer): string {
  const metric = answer.metric === 'packets' ? 'packets' : 'bytes';
  const bounded = answer.exact === false && answer.entries.some((e) => e[`${metric}Max`] !== undefined);
  const certain = bounded ? certainRanks(answer, metric) : [];
  const span = answer.from ? `${timeText(answer.from)} .. ${timeText(answer.to)}` : 'no data yet';
  const lines = [`top ${answer.by} by ${answer.metric}, window ${answer.window} (${span})${answer.exact === false ? ', approximate' : ''}`];
  const header = ['#', answer.by.toUpperCase(), 'BYTES', 'PACKETS', 'SHARE'];
  if (bounded) header.splice(metric === 'bytes' ? 3 : 4, 0, `${metric.toUpperCase()}_MAX`);
  const rows = answer.entries.map((e, i) => {
    const row: (string | number)[] = [bounded && !certain.includes(i + 1) ? `~${i + 1}` : i + 1, keyText(e.key), e.bytes, e.packets, `${(e.share * 100).toFixed(1)}%`];
    if (bounded) row.splice(metric === 'bytes' ? 3 : 4, 0, `≤ ${e[`${metric}Max`] ?? e[metric]}`);
    return row;
  });
  lines.push(table(header, rows));
  if (answer.exact === false) lines.push(footnote(answer, metric, bounded, certain));
  return lines.join('\n') + '\n';
}

/**
 * Ranks whose place is certain: the entry's value (a lower bound) is at least
 * the upper bound of every entry below it and of every group not listed, and
 * at most the value of every entry above it.
 */
export function certainRanks(answer: TopAnswer, metric: 'bytes' | 'packets'): number[] {
  const entries = answer.entries;
  const low = entries.map((e) => e[metric]);
  const high = entries.map((e) => e[`${metric}Max`] ?? e[metric]);
  const unlisted = answer[metric === 'bytes' ? 'unlistedBytesMax' : 'unlistedPacketsMax'] ?? Infinity;
  // highestBelow[i]: the largest upper bound among the entries after i and the unlisted groups
  const highestBelow = new Array<number>(entries.length);
  let max = unlisted;
  for (let i = entries.length - 1; i >= 0; i--) {
    highestBelow[i] = max;
    max = Math.max(max, high[i]);
  }
  const ranks: number[] = [];
  let lowestAbove = Infinity;
  for (let i = 0; i < entries.length; i++) {
    if (low[i] >= highestBelow[i] && high[i] <= lowestAbove) ranks.push(i + 1);
    lowestAbove = Math.min(lowestAbove, low[i]);
  }
  return ranks;
}

/** 1-3, 5, 7-8 */
function rangesText(ranks: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ranks.length; ) {
    let j = i;
    while (j + 1 < ranks.length && ranks[j + 1] === ranks[j] + 1) j++;
    parts.push(i === j ? `${ranks[i]}` : `${ranks[i]}-${ranks[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

function footnote(answer: TopAnswer, metric: 'bytes' | 'packets', bounded: boolean, certain: number[]): string {
  if (!bounded) return `approximate: the counts are lower bounds (a bucket kept only its --top-capacity largest groups)`;
  const n = answer.entries.length;
  const which = certain.length === n ? 'every rank is certain' : certain.length === 0 ? 'no rank is certain' : `rank${certain.length > 1 ? 's' : ''} ${rangesText(certain)} ${certain.length > 1 ? 'are' : 'is'} certain (~: may move)`;
  const unlisted = answer[metric === 'bytes' ? 'unlistedBytesMax' : 'unlistedPacketsMax'];
  const unlistedText = unlisted === undefined ? '' : `; a group not listed has at most ${metric === 'bytes' ? bytesText(unlisted) : `${countText(unlisted)} packets`}`;
  return `approximate: ${which}; each true ${metric} count lies between ${metric.toUpperCase()} and ${metric.toUpperCase()}_MAX${unlistedText}`;
}

/** Why a table is empty, in one line: nothing in the window, or nothing that the filters match. */
async function emptyReason(client: ApiClient, answer: TopAnswer, values: Record<string, unknown>): Promise<string> {
  const window = answer.window;
  const span = values.until !== undefined && answer.to ? `in the ${window} window ending ${timeText(answer.to)}` : `in the last ${window}`;
  const filters = filterText(values, ['since', 'until']);
  if (filters) {
    // The filtered answer's totals are the filtered flows': ask for the window's whole.
    const whole = await client
      .json<TopAnswer>('/api/v1/top', { window: values.window as string | undefined, since: values.since as string | undefined, until: values.until as string | undefined, k: 1 })
      .catch(() => undefined);
    if (whole && ((whole.totalBytes ?? 0) > 0 || (whole.totalPackets ?? 0) > 0 || whole.entries.length > 0)) {
      const total = whole.totalBytes !== undefined ? `; ${bytesText(whole.totalBytes)} (${countText(whole.totalPackets ?? 0)} packets) in the window in total` : '';
      return `no flows matched ${filters} ${span}${total}`;
    }
  }
  const status = await client.json<StatusAnswer>('/api/v1/status').catch(() => undefined);
  if (status && status.interfaces.length === 0) return `no traffic ${span}: no interface is attached`;
  const windowSeconds = answer.windowSeconds;
  if (status && windowSeconds !== undefined && status.uptimeSeconds < windowSeconds) {
    return `no traffic ${span} yet (the ${status.role === 'relay' ? 'relay' : 'agent'} started ${durationText(status.uptimeSeconds)} ago)`;
  }
  return `no traffic ${span}`;
}
