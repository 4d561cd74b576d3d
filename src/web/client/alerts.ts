/// <reference lib="dom" />
/** The alert banners (API errors, nodes down, overflow, full map, poll and exporter errors) and error handling. */
import { ApiError } from './api.js';
import { updateConn } from './connection.js';
import { $, h } from './dom.js';
import { exact, formatBytes, formatCount, formatPercent } from './format.js';
import { state } from './state.js';
import { askTokenOnce } from './token.js';

export const UNAUTHORIZED = 'the API asks for a bearer token';

export function renderAlerts(): void {
  const box = $('#alerts');
  const items: HTMLElement[] = [];
  if (state.apiError) {
    const unauthorized = state.apiError.startsWith(UNAUTHORIZED);
    items.push(h('div', { class: 'alert bad' }, h('b', {}, unauthorized ? 'Unauthorized' : 'API unreachable'), h('span', {}, state.apiError)));
  }
  const now = Date.now();
  const nodes = state.status?.nodes ?? [];
  const multi = state.status?.multiNode ?? false;
  const who = (names: string[]) => (multi ? `${names.join(', ')}: ` : '');
  const down = nodes.filter((n) => !n.up);
  if (down.length) {
    items.push(h('div', { class: 'alert bad' }, h('b', {}, down.length > 1 ? 'Nodes down' : 'Node down'),
      h('span', {}, down.map((n) => `${n.node}${n.error ? ` (${n.error})` : ''}`).join(', '))));
  }
  const overflowing = nodes.filter((n) => {
    const seen = state.overflowSeen.get(n.node);
    return n.overflowPackets > 0 && seen && now - seen.changedAt < 60_000;
  });
  if (overflowing.length) {
    const p = overflowing.reduce((a, n) => a + n.overflowPackets, 0);
    const b = overflowing.reduce((a, n) => a + n.overflowBytes, 0);
    items.push(
      h('div', { class: 'alert warn' }, h('b', {}, 'Accounting degraded'),
        h('span', { title: `${exact(p, 'packets')}, ${exact(b, 'bytes')}` },
          `${who(overflowing.map((n) => n.node))}the flow map is full: ${formatCount(p)} packets (${formatBytes(b)}) since attach were counted per interface but not attributed to a flow.`)),
    );
  }
  const full = nodes.filter((n) => n.mapFill !== undefined && n.mapFill >= 0.9);
  if (full.length) {
    const worst = Math.max(...full.map((n) => n.mapFill!));
    items.push(h('div', { class: 'alert warn' }, h('b', {}, 'Flow map nearly full'),
      h('span', {}, `${who(full.map((n) => n.node))}${formatPercent(worst)} of the flow map's entries in use.`)));
  }
  const pollErr = nodes.filter((n) => n.pollError);
  if (pollErr.length) {
    items.push(h('div', { class: 'alert warn' }, h('b', {}, 'Poll error'),
      h('span', {}, pollErr.map((n) => `${multi ? `${n.node}: ` : ''}${n.pollError}`).join('; '))));
  }
  const badSinks = new Map<string, { nodes: string[]; dropped: number; error?: string; healthy: boolean }>();
  for (const n of nodes) {
    for (const s of n.sinks) {
      if (s.dropped === 0 && s.healthy) continue;
      const e = badSinks.get(s.name) ?? { nodes: [], dropped: 0, healthy: true };
      e.nodes.push(n.node);
      e.dropped += s.dropped;
      e.healthy &&= s.healthy;
      e.error ??= s.error;
      badSinks.set(s.name, e);
    }
  }
  for (const [name, e] of badSinks) {
    items.push(h('div', { class: `alert ${e.healthy ? 'warn' : 'bad'}` }, h('b', {}, `Exporter ${name}`),
      h('span', { title: exact(e.dropped, 'records dropped') },
        `${who(e.nodes)}${e.dropped > 0 ? `${formatCount(e.dropped)} records dropped` : 'unhealthy'}${e.error ? ` — ${e.error}` : ''}.`)));
  }
  box.replaceChildren(...items);
}

export function setApiError(msg: string): void {
  if (state.apiError === msg) return;
  state.apiError = msg;
  renderAlerts();
  updateConn();
}

export function handleError(e: unknown): void {
  if (e instanceof DOMException && e.name === 'AbortError') return;
  if (e instanceof ApiError && e.unauthorized) {
    setApiError(`${UNAUTHORIZED} (401): set it with the Token button.`);
    askTokenOnce('The API answered 401 Unauthorized: enter its bearer token.');
    return;
  }
  setApiError(e instanceof Error ? e.message : String(e));
}
