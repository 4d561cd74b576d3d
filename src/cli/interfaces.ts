/** flowscope interfaces: per-interface totals and rates, once or (--watch) refreshed until Ctrl-C. */
import type { InterfaceReport } from '../engine/interface-accounting.js';
import { parseDuration } from '../flow/duration.js';
import { ApiClient, clientOptions } from './client.js';
import { INTERFACES_FLAGS } from './flags.js';
import { table } from './format.js';
import { bitRateText, bytesText, countText, timeText } from './units.js';
import { HELP, UsageError, parseCommandArgs } from './usage.js';
import { watch } from './watch.js';

/** An interface as /api/v1/interfaces has it; a relay adds the node and the time of the node's last report. */
export type InterfaceAnswer = InterfaceReport & { node?: string; at?: string };

const INTERVAL_MIN_MS = 100;
const INTERVAL_MAX_MS = 3_600_000;

export const INTERFACE_HEADER = (list: InterfaceAnswer[]): string[] => [
  ...(list.some((i) => i.node !== undefined) ? ['NODE'] : []),
  'IFACE', 'IFINDEX', 'HOOK',
  'RX_PACKETS', 'RX_BYTES', 'RX_PPS', 'RX_RATE',
  'TX_PACKETS', 'TX_BYTES', 'TX_PPS', 'TX_RATE',
  'OVERFLOW',
];

/**
 * One row per interface. Totals are exact (`exact: true`, what `interfaces`
 * prints: they equal the kernel's counters) or in human units (the status
 * summary); rates are always rounded.
 */
export function interfaceRows(list: InterfaceAnswer[], hook: (i: InterfaceAnswer) => string = (i) => i.hook, exact = false): (string | number)[][] {
  const withNode = list.some((i) => i.node !== undefined);
  const packets = (n: number) => (exact ? n : countText(n));
  const bytes = (n: number) => (exact ? n : bytesText(n));
  return list.map((i) => [
    ...(withNode ? [i.node ?? '-'] : []),
    i.iface, i.ifindex, hook(i),
    packets(i.rx.packets), bytes(i.rx.bytes), countText(i.rx.pps), bitRateText(i.rx.bps),
    packets(i.tx.packets), bytes(i.tx.bytes), countText(i.tx.pps), bitRateText(i.tx.bps),
    packets((i.rx.overflowPackets ?? 0) + (i.tx.overflowPackets ?? 0)),
  ]);
}

export async function interfaces(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const values = parseCommandArgs('interfaces', args, INTERFACES_FLAGS);
  if (values.help) return out(HELP.interfaces + '\n');
  const json = values.output === 'json';
  if (values.interval !== undefined && !values.watch) throw new UsageError('interfaces: --interval goes with --watch');
  const intervalMs = values.interval === undefined ? 1000 : parseDuration(values.interval);
  if (intervalMs === undefined || intervalMs < INTERVAL_MIN_MS || intervalMs > INTERVAL_MAX_MS) {
    throw new UsageError(`interfaces: --interval "${values.interval}" must be a duration from 100ms to 1h, e.g. 1s or 500ms`);
  }
  const client = new ApiClient(clientOptions(values, env));
  const render = async (signal?: AbortSignal) => {
    const list = await client.json<InterfaceAnswer[]>('/api/v1/interfaces', {}, signal);
    if (json) return JSON.stringify(list);
    if (list.length === 0) return 'no interfaces attached';
    return table(INTERFACE_HEADER(list), interfaceRows(list, undefined, true));
  };
  if (!values.watch) return out((await render()) + '\n');

  const tty = !json && process.stdout.isTTY === true;
  const every = `every ${values.interval ?? '1s'}`;
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await watch({
      intervalMs,
      tty,
      // A heading like watch(1)'s says when the frame was taken (and, piped, where one frame ends).
      render: async (signal) => {
        const frame = await render(signal);
        return json ? frame : `flowscope interfaces, ${every}: ${timeText(new Date().toISOString())}\n${frame}${tty ? '' : '\n'}`;
      },
      write: out,
      warn: (line) => void process.stderr.write(line + '\n'),
      signal: abort.signal,
    });
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}
