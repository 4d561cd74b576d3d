/**
 * flowscope status: the agent's (or relay's) /api/v1/status as a summary a
 * person reads: human units, rounded, interfaces, sinks and relay nodes as
 * table rows. `-o json` prints the answer as it came.
 */
import type { AgentStatus } from '../api/queries.js';
import type { RelayStatus } from '../relay/relay.js';
import { ApiClient, clientOptions } from './client.js';
import { STATUS_FLAGS } from './flags.js';
import { table } from './format.js';
import { interfaceRows, INTERFACE_HEADER, type InterfaceAnswer } from './interfaces.js';
import { bytesText, countText, durationText, msText, percentText, timeText } from './units.js';
import { HELP, parseCommandArgs } from './usage.js';

/** A sink's status as the API has it: the common fields, and the Redis sink's own. */
interface SinkAnswer {
  name: string;
  exported: number;
  dropped: number;
  pending?: number;
  lastError?: string;
  connected?: boolean;
  buffer?: number;
  writer?: string;
  duplicateNode?: boolean;
  otherWriter?: string;
  idClashes?: number;
  otherWriterSeen?: number;
}

export type StatusAnswer = Omit<AgentStatus, 'sinks'> & { sinks: SinkAnswer[] } & Partial<Pick<RelayStatus, 'role' | 'relay'>> & {
  interfaces: (AgentStatus['interfaces'][number] & { adopted?: boolean })[];
};

export async function status(args: string[], env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<void> {
  const values = parseCommandArgs('status', args, STATUS_FLAGS);
  if (values.help) return out(HELP.status + '\n');
  const client = new ApiClient(clientOptions(values, env));
  if (values.output === 'json') return out(JSON.stringify(await client.json<StatusAnswer>('/api/v1/status')) + '\n');
  // The interface counters are not in the status: ask for both at once; the
  // status alone still prints (attachments without counters) if that fails.
  const [answer, counters] = await Promise.all([
    client.json<StatusAnswer>('/api/v1/status'),
    client.json<InterfaceAnswer[]>('/api/v1/interfaces').catch(() => undefined),
  ]);
  out(statusText(answer, counters) + '\n');
}

/** `name 3, other 1`, only the nonzero ones, or `none`. */
function nonzero(counts: Record<string, number> | undefined): string {
  const parts = Object.entries(counts ?? {})
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${countText(n)}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

const plural = (n: number, one: string, many = `${one}s`) => `${countText(n)} ${n === 1 ? one : many}`;

/** The summary: a few labelled lines, then the interfaces, sinks (agent) or nodes (relay) as tables. */
export function statusText(s: StatusAnswer, counters?: InterfaceAnswer[]): string {
  const relay = s.role === 'relay' || s.relay !== undefined ? s.relay : undefined;
  const lines: [string, string][] = [];
  const head = `${relay ? 'relay' : 'agent'} ${s.node}, version ${s.version}: ${s.ready === false ? 'NOT READY' : 'ready'}, up ${durationText(s.uptimeSeconds)}` +
    (s.startedAt ? ` (since ${timeText(s.startedAt)})` : '');

  if (relay) {
    lines.push(['Redis', `${relay.redis} ${relay.connected ? 'connected' : 'NOT CONNECTED'}; group ${relay.group}, consumer ${relay.consumer}`]);
    lines.push(['Ingested', `${plural(relay.entries, 'entry', 'entries')} (${countText(relay.replayed)} replayed at start, ${countText(relay.recovered)} recovered from other consumers), ${plural(s.polls, 'read round')}, ${plural(s.pollErrors, 'error')}`]);
    lines.push(['Refused', `${plural(relay.badEntries, 'entry', 'entries')}${relay.badEntries > 0 ? ` (${nonzero(relay.rejected)})` : ''}; ${plural(relay.ignoredNodes, 'node')} ignored${relay.nodesKeyError ? `; reading flowscope:nodes: ${relay.nodesKeyError}` : ''}`]);
    if (relay.scaleOut) {
      const so = relay.scaleOut;
      const missing = so.lastFanout.missing.length > 0 ? `, missing ${so.lastFanout.missing.join(' ')}` : '';
      const incomplete = so.lastFanout.incomplete.length > 0 ? `, partitions ${so.lastFanout.incomplete.join(' ')} unanswered` : '';
      lines.push(['Scale-out', `${so.id}: owns partitions ${so.owned.join(' ') || 'none'} of ${so.partitions} (holds ${so.held.join(' ') || 'none'}), ${plural(so.live.length, 'live relay')}; last fan-out ${plural(so.lastFanout.peers, 'peer')}${missing}${incomplete}${so.lastError ? `; ${so.lastError}` : ''}`]);
    }
  } else {
    const lastPoll = s.lastPollAt ? `; last at ${timeText(s.lastPollAt)} took ${msText(s.lastPollDurationMs ?? NaN)}${s.lastDrainDurationMs !== null ? ` (drain ${msText(s.lastDrainDurationMs)})` : ''}` : '; none yet';
    lines.push(['Polls', `${countText(s.polls)} every ${durationText(s.pollIntervalMs / 1000)}, ${plural(s.pollErrors, 'error')}, ${countText(s.partialDrains)} partial${lastPoll}`]);
    lines.push(['Flow map', `${percentText(s.mapFill)} of ${countText(s.mapCapacity)} entries filled at the last drain`]);
  }
  lines.push(['Flows', `${countText(s.flowsTracked)} tracked; expired: ${nonzero(s.flowsExpired)}`]);
  lines.push(['Store', `${countText(s.store.records)} of ${countText(s.store.capacity)} records, ${countText(s.store.lost)} overwritten unread${relay ? '' : `; ${countText(s.recordsExported)} exported`}`]);
  lines.push(['Top', `${durationText(s.top.bucketMs / 1000)} buckets over ${durationText(s.top.horizonMs / 1000)} (${countText(s.top.buckets)} kept)`]);
  lines.push(['Overflow', `${countText(s.overflowPackets)} packets, ${bytesText(s.overflowBytes)} found the flow map full (in no record)`]);
  lines.push(['Not flows', `${countText(s.otherPackets)} packets, ${bytesText(s.otherBytes)} (non-IP or too short)`]);
  if (!relay) lines.push(['Failures', `${nonzero(s.datapathFailures)} (datapath events)`]);
  if (!relay) lines.push(['Pinned', pinnedText(s.pinned)]);
  lines.push(['Last error', s.lastError ?? 'none']);

  const width = Math.max(...lines.map(([label]) => label.length)) + 1;
  const sections = [[head, ...lines.map(([label, text]) => `  ${`${label}:`.padEnd(width)} ${text}`)].join('\n')];
  sections.push(interfacesSection(s, counters));
  if (relay && relay.nodes.length > 0) sections.push(table(NODE_HEADER, relay.nodes.map(nodeRow)));
  if (!relay && s.sinks.length > 0) sections.push(table(SINK_HEADER, s.sinks.map(sinkRow)));
  return sections.join('\n\n');
}

function pinnedText(pinned: AgentStatus['pinned']): string {
  if (!pinned) return 'no (not the kernel source)';
  const adopted = pinned.adopted
    ? `adopted ${pinned.adoptedInterfaces.join(', ') || 'no interface'} from a previous agent${pinned.resumedFrom ? `, counting since ${timeText(pinned.resumedFrom)}` : ''}`
    : 'attached fresh';
  const parts = [`${pinned.dir}: ${adopted}`];
  if (pinned.unconfirmedDrains > 0) parts.push(`${plural(pinned.unconfirmedDrains, 'drain')} of the previous agent maybe not exported`);
  if (pinned.problems.length > 0) parts.push(`problems: ${pinned.problems.join('; ')}`);
  const earlier = pinned.previousLayout;
  if (earlier) {
    const state = earlier.mapsLeft > 0 ? `${plural(earlier.mapsLeft, 'map')} left to drain` : 'all drained';
    parts.push(`flow maps of an earlier version (${earlier.valueBytes}-byte values): ${countText(earlier.flowsDrained)} flows read, ${state}`);
  }
  parts.push(pinned.keepAttached ? 'stays attached when stopped' : 'detaches when stopped');
  return parts.join('; ');
}

function interfacesSection(s: StatusAnswer, counters: InterfaceAnswer[] | undefined): string {
  if (s.interfaces.length === 0) return 'no interfaces attached';
  if (!counters) {
    return table(['IFACE', 'IFINDEX', 'HOOK'], s.interfaces.map((i) => [i.iface, i.ifindex, hookText(i)])) + '\n(interface counters unavailable)';
  }
  // A relay's status names interfaces NODE/IFACE; its /interfaces has node and iface apart.
  const attachment = new Map(s.interfaces.map((i) => [i.iface, i]));
  const rows = interfaceRows(counters, (report) => {
    const a = attachment.get(report.node ? `${report.node}/${report.iface}` : report.iface);
    return a ? hookText(a) : report.hook;
  });
  return table(INTERFACE_HEADER(counters), rows);
}

function hookText(a: { hook: string; tcMechanism?: string; adopted?: boolean }): string {
  const hook = a.tcMechanism && a.hook === 'tc' ? `tc/${a.tcMechanism}` : a.hook;
  return a.adopted ? `${hook} (adopted)` : hook;
}

const SINK_HEADER = ['SINK', 'EXPORTED', 'DROPPED', 'PENDING', 'BUFFER', 'STATE'];

function sinkRow(sink: SinkAnswer): (string | number)[] {
  const state: string[] = [];
  if (sink.connected !== undefined) state.push(sink.connected ? 'connected' : 'NOT CONNECTED');
  if (sink.duplicateNode) state.push(`ANOTHER WRITER ${sink.otherWriter ?? ''} writes this node's stream`.replace('  ', ' '));
  if (sink.idClashes) state.push(`${countText(sink.idClashes)} id clashes`);
  if (sink.lastError) state.push(`error: ${sink.lastError}`);
  return [sink.name, countText(sink.exported), countText(sink.dropped), sink.pending === undefined ? '-' : countText(sink.pending), sink.buffer === undefined ? '-' : countText(sink.buffer), state.join('; ') || 'ok'];
}

const NODE_HEADER = ['NODE', 'ENTRIES', 'LAST_RECORD', 'STORE', 'IFACES', 'REFUSED', 'READ_ERRORS', 'STATE'];

function nodeRow(n: NonNullable<RelayStatus['relay']>['nodes'][number]): (string | number)[] {
  const refused = Object.values(n.rejected).reduce((a, b) => a + b, 0);
  return [n.node, countText(n.entries), timeText(n.lastRecordEnd), countText(n.storeRecords), n.interfaces, countText(refused), countText(n.readErrors), n.lastError ? `error: ${n.lastError}` : 'ok'];
}

