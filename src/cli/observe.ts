/** flowscope observe: print flow records, or follow them (-f), like hubble observe. */
import type { FlowRecord } from '../flow/record.js';
import { ApiClient, clientOptions } from './client.js';
import { filterQuery, positiveInt } from './filters.js';
import { OBSERVE_FLAGS } from './flags.js';
import { FLOW_TABLE_HEADER, compactLine, flowRow, table } from './format.js';
import { HELP, parseCommandArgs } from './usage.js';

export async function observe(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const values = parseCommandArgs('observe', args, OBSERVE_FLAGS);
  if (values.help) return out(HELP.observe + '\n');
  const format = values.output ?? 'compact';
  const last = positiveInt('--last', values.last, 10_000);
  const query = filterQuery(values);
  const client = new ApiClient(clientOptions(values, env));

  const print = (records: FlowRecord[], header: boolean): void => {
    if (records.length === 0) return;
    if (format === 'json') out(records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    else if (format === 'table') {
      const text = table(FLOW_TABLE_HEADER, records.map(flowRow), header ? undefined : FOLLOW_WIDTHS);
      out((header ? text : text.split('\n').slice(1).join('\n')) + '\n');
    } else out(records.map(compactLine).join('\n') + '\n');
  };

  if (!values.follow) {
    const page = await client.json<{ flows: FlowRecord[] }>('/api/v1/flows', { ...query, limit: last ?? 20 });
    print(page.flows.reverse(), true);
    return;
  }
  if (format === 'table') out(table(FLOW_TABLE_HEADER, [], FOLLOW_WIDTHS) + '\n');
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await client.follow('/api/v1/flows/stream', { ...query, limit: last }, (data) => print([data as FlowRecord], false), abort.signal);
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}

/** Column widths of the follow table (rows arrive one by one). */
const FOLLOW_WIDTHS = [24, 10, 7, 45, 45, 12, 10, 12, 12, 24];
