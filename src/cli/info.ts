/** flowscope interfaces / flowscope status. */
import type { InterfaceReport } from '../engine/interface-accounting.js';
import { ApiClient, clientOptions } from './client.js';
import { human, table } from './format.js';
import { CLIENT_FLAG_OPTIONS, HELP, UsageError, parseCommandArgs } from './usage.js';

function parseClientArgs(command: string, args: string[]) {
  return parseCommandArgs(command, args, { ...CLIENT_FLAG_OPTIONS, output: { type: 'string', short: 'o' } });
}

export async function interfaces(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const values = parseClientArgs('interfaces', args);
  if (values.help) return out(HELP.interfaces + '\n');
  const format = values.output ?? 'table';
  if (format !== 'table' && format !== 'json') throw new UsageError(`interfaces: -o "${format}" is unknown; use table or json`);
  const list = await new ApiClient(clientOptions(values, env)).json<InterfaceReport[]>('/api/v1/interfaces');
  if (format === 'json') return out(JSON.stringify(list) + '\n');
  const rows = list.map((i) => [
    i.iface, i.ifindex, i.hook,
    i.rx.packets, i.rx.bytes, human(i.rx.pps), `${human(i.rx.bps)}b/s`,
    i.tx.packets, i.tx.bytes, human(i.tx.pps), `${human(i.tx.bps)}b/s`,
    i.rx.overflowPackets + i.tx.overflowPackets,
  ]);
  out(table(['IFACE', 'IFINDEX', 'HOOK', 'RX_PACKETS', 'RX_BYTES', 'RX_PPS', 'RX_RATE', 'TX_PACKETS', 'TX_BYTES', 'TX_PPS', 'TX_RATE', 'OVERFLOW'], rows) + '\n');
}

export async function status(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const values = parseClientArgs('status', args);
  if (values.help) return out(HELP.status + '\n');
  const format = values.output ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`status: -o "${format}" is unknown; use text or json`);
  const s = await new ApiClient(clientOptions(values, env)).json<Record<string, unknown>>('/api/v1/status');
  if (format === 'json') return out(JSON.stringify(s) + '\n');
  const lines: string[] = [];
  for (const [key, value] of Object.entries(s)) {
    lines.push(`${key.padEnd(20)} ${typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`);
  }
  out(lines.join('\n') + '\n');
}
