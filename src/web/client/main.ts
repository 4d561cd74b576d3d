/// <reference lib="dom" />
/**
 * flowscope dashboard: wires the HTTP API (api.ts) to the page (index.html).
 * Plain DOM, no framework; every number shown in human units carries its exact
 * value in a title attribute.
 */
import { ApiError, EventStream, getJson, getToken, setToken } from './api.js';
import { History, PALETTE, RateChart, type SeriesDef } from './charts.js';
import {
  endpoint, exact, formatBitRate, formatByteRate, formatBytes, formatClock, formatCount, formatDuration, formatMs,
  formatPercent, formatPps, portName,
} from './format.js';
import {
  type FilterField, type FlowFilter, type TopBy, type TopMetric, type ViewState, FILTER_FIELDS, flowsQuery,
  formatKey, hashToState, keyToFilter, normalizeFilter, stateToHash, topQuery, validateFilter,
} from './query.js';
import {
  type FlowRecord, type IfaceInfo, type StatusInfo, type TopAnswer, flowRecordKey, normalizeFlow,
  normalizeInterfaces, normalizeStatus, normalizeTop,
} from './model.js';

// ------------------------------------------------------------------ helpers

const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document): T => {
  const el = root.querySelector<T>(sel);
  if (!el) throw new Error(`missing element ${sel}`);
  return el;
};

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** A number cell: human text, exact value on hover. */
function numCell(text: string, title: string): HTMLTableCellElement {
  return h('td', { class: 'num', title }, text);
}

// -------------------------------------------------------------------- state

const POLL_IFACES_MS = 1000;
const POLL_STATUS_MS = 5000;
const POLL_TOP_MS = 3000;
const HISTORY_POINTS = 300;

const initial = hashToState(location.hash);
const state = {
  view: initial as ViewState,
  status: undefined as StatusInfo | undefined,
  ifaces: [] as IfaceInfo[],
  unit: (localStorage.getItem('flowscope.unit') === 'bits' ? 'bits' : 'bytes') as 'bits' | 'bytes',
  paused: false,
  maxRows: 250,
  firstData: false,
  overflowSeen: new Map<string, { value: number; changedAt: number }>(),
  apiError: '' as string,
};

const history = {
  bytes: new History(HISTORY_POINTS),
  pkts: new History(HISTORY_POINTS),
};

function markFirstData(): void {
  if (state.firstData) return;
  state.firstData = true;
  performance.mark('flowscope:first-data');
  document.documentElement.dataset.loaded = 'true';
}

// -------------------------------------------------------------------- theme

function applyTheme(t: string | null): void {
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  bytesChart.invalidate();
  pktsChart.invalidate();
  renderCharts();
}

function currentTheme(): 'light' | 'dark' {
  const t = document.documentElement.dataset.theme;
  if (t === 'light' || t === 'dark') return t;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function toggleTheme(): void {
  const next = currentTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem('flowscope.theme', next);
  applyTheme(next);
  toast(`${next === 'dark' ? 'Dark' : 'Light'} theme`);
}

// -------------------------------------------------------------------- toast

let toastTimer: ReturnType<typeof setTimeout> | undefined;
function toast(msg: string): void {
  const t = $('#toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 2200);
}

// ------------------------------------------------------------------- alerts

function renderAlerts(): void {
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

function setApiError(msg: string): void {
  if (state.apiError === msg) return;
  state.apiError = msg;
  renderAlerts();
  updateConn();
}

const UNAUTHORIZED = 'the API asks for a bearer token';
let tokenPrompted = false;

function handleError(e: unknown): void {
  if (e instanceof DOMException && e.name === 'AbortError') return;
  if (e instanceof ApiError && e.unauthorized) {
    setApiError(`${UNAUTHORIZED} (401): set it with the Token button.`);
    // ask once; after a Cancel the banner and the Token button remain
    if (!tokenPrompted) {
      tokenPrompted = true;
      openTokenDialog('The API answered 401 Unauthorized: enter its bearer token.');
    }
    return;
  }
  setApiError(e instanceof Error ? e.message : String(e));
}

// ------------------------------------------------------------------ polling

interface Poller {
  name: string;
  every: number;
  run: (signal: AbortSignal) => Promise<void>;
  timer?: ReturnType<typeof setTimeout>;
  ctl?: AbortController;
  busy?: boolean;
  /** bumped by kick(): a superseded run neither reschedules nor counts */
  gen: number;
}

const pollers: Poller[] = [];

function schedule(p: Poller, delay: number): void {
  clearTimeout(p.timer);
  p.timer = setTimeout(() => void tick(p), delay);
}

async function tick(p: Poller): Promise<void> {
  if (document.hidden) return; // resumed on visibilitychange
  if (p.busy) return;
  const gen = p.gen;
  p.busy = true;
  p.ctl = new AbortController();
  try {
    await p.run(p.ctl.signal);
    if (gen === p.gen && state.apiError && !state.apiError.startsWith(UNAUTHORIZED)) setApiError('');
  } catch (e) {
    if (gen === p.gen) handleError(e);
  } finally {
    if (gen === p.gen) {
      p.busy = false;
      schedule(p, p.every);
    }
  }
}

function addPoller(name: string, every: number, run: Poller['run']): Poller {
  const p: Poller = { name, every, run, gen: 0 };
  pollers.push(p);
  return p;
}

function kick(p: Poller): void {
  p.gen++;
  p.ctl?.abort();
  p.busy = false;
  schedule(p, 0);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) for (const p of pollers) schedule(p, 0);
});

// ------------------------------------------------------------ status + crumbs

function multiNode(): boolean {
  return state.status?.multiNode ?? false;
}

function renderCrumbs(): void {
  const s = state.status;
  const box = $('#crumbs');
  if (!s) return;
  const chips: HTMLElement[] = [];
  if (s.multiNode) {
    const up = s.nodes.filter((n) => n.up).length;
    chips.push(h('span', { class: 'chip', title: s.nodes.map((n) => n.node).join(', ') }, 'relay · ', h('b', {}, `${up}/${s.nodes.length}`), ' nodes up'));
  } else {
    const n = s.nodes[0];
    chips.push(h('span', { class: 'chip', title: 'node' }, 'node ', h('b', {}, n.node)));
    if (n.hook) chips.push(h('span', { class: 'chip', title: 'hook' }, 'hook ', h('b', {}, n.hook)));
  }
  if (s.version) chips.push(h('span', { class: 'chip', title: 'version' }, 'v', s.version.replace(/^v/, '')));
  box.replaceChildren(...chips);
  $('#foot-version').textContent = s.version ? `flowscope ${s.version}` : '';
}

function tile(id: string, value: string, valueTitle: string, sub?: string, subTitle?: string, cls?: string): void {
  const t = $(`#${id}`);
  const v = $('[data-v]', t);
  v.textContent = value;
  v.title = valueTitle;
  const s = t.querySelector<HTMLElement>('[data-s]');
  if (s && sub !== undefined) {
    s.textContent = sub || '\u00a0';
    s.title = subTitle ?? '';
  }
  t.classList.remove('ok', 'warn', 'bad');
  if (cls) t.classList.add(cls);
}

function renderStatus(): void {
  const s = state.status;
  if (!s) return;
  renderCrumbs();
  document.body.classList.toggle('no-nodes', !s.multiNode);
  $('#top-by').querySelector<HTMLOptionElement>('option[value="node"]')!.hidden = !s.multiNode;
  $('.f-node').hidden = !s.multiNode;
  syncNodeOptions();
  // a node filter (from a bookmark) means nothing to a single agent, which would refuse it
  if (!s.multiNode && state.view.filter.node) applyFilter({ ...state.view.filter, node: '' });

  // tiles
  const sum = (f: (n: StatusInfo['nodes'][number]) => number | undefined) => {
    let any = false;
    let t = 0;
    for (const n of s.nodes) {
      const v = f(n);
      if (v !== undefined) {
        any = true;
        t += v;
      }
    }
    return any ? t : undefined;
  };
  const tracked = sum((n) => n.flowsTracked);
  const cap = sum((n) => n.mapCapacity);
  tile('tile-flows', tracked === undefined ? '–' : formatCount(tracked), tracked === undefined ? '' : exact(tracked, 'flows'),
    cap ? `of ${formatCount(cap)} entries` : '', cap ? exact(cap, 'entries') : '');
  // map fill: the fullest node decides (it is the one that overflows first)
  let fill: number | undefined;
  for (const n of s.nodes) if (n.mapFill !== undefined) fill = Math.max(fill ?? 0, n.mapFill);
  const fillCls = fill === undefined ? undefined : fill >= 0.9 ? 'bad' : fill >= 0.7 ? 'warn' : 'ok';
  tile('tile-fill', fill === undefined ? '–' : formatPercent(fill), fill === undefined ? '' : `${(fill * 100).toFixed(3)}%`, undefined, undefined, fillCls);
  const meter = $('#tile-fill .meter');
  meter.className = `meter ${fillCls ?? ''}`;
  $('[data-m]', meter).style.width = `${Math.min(100, (fill ?? 0) * 100)}%`;

  const ovp = sum((n) => n.overflowPackets) ?? 0;
  const ovb = sum((n) => n.overflowBytes) ?? 0;
  const now = Date.now();
  let recent = false;
  for (const n of s.nodes) {
    const prev = state.overflowSeen.get(n.node);
    if (!prev || prev.value !== n.overflowPackets) {
      // a first sight of a non-zero value counts as a change: it is news to this page
      state.overflowSeen.set(n.node, { value: n.overflowPackets, changedAt: prev || n.overflowPackets > 0 ? now : 0 });
    }
    const seen = state.overflowSeen.get(n.node)!;
    if (n.overflowPackets > 0 && now - seen.changedAt < 60_000) recent = true;
  }
  tile('tile-overflow', formatCount(ovp), exact(ovp, 'packets not attributed to a flow'),
    ovp > 0 ? `${formatBytes(ovb)} ${recent ? 'rising' : 'since attach'}` : 'none: every packet in a flow', exact(ovb, 'bytes'),
    ovp > 0 ? (recent ? 'bad' : 'warn') : 'ok');

  const ups = s.nodes.map((n) => n.uptimeSeconds).filter((x): x is number => x !== undefined);
  const minUp = ups.length ? Math.min(...ups) : undefined;
  tile('tile-uptime', minUp === undefined ? '–' : formatDuration(minUp), minUp === undefined ? '' : exact(Math.floor(minUp), 's'),
    s.multiNode ? `${s.nodes.length} nodes (shortest)` : s.nodes[0].hook ? `${s.nodes[0].hook} hook` : '');

  // panel
  const body = $('#status-body');
  const parts: HTMLElement[] = [];
  if (s.multiNode) {
    parts.push(h('h3', {}, 'Nodes'));
    const tb = h('tbody');
    for (const n of s.nodes) {
      const nf = n.mapFill;
      tb.append(h('tr', {},
        h('td', {}, h('span', { class: `badge ${n.up ? 'ok' : 'bad'}` }, n.up ? 'up' : 'down'), ' ', n.node),
        h('td', {}, n.version ?? '–'),
        numCell(n.uptimeSeconds === undefined ? '–' : formatDuration(n.uptimeSeconds), n.uptimeSeconds === undefined ? '' : exact(Math.floor(n.uptimeSeconds), 's')),
        numCell(n.flowsTracked === undefined ? '–' : formatCount(n.flowsTracked), n.flowsTracked === undefined ? '' : exact(n.flowsTracked)),
        numCell(nf === undefined ? '–' : formatPercent(nf), n.flowsTracked === undefined || !n.mapCapacity ? '' : `${exact(n.flowsTracked)} / ${exact(n.mapCapacity)}`),
        numCell(formatCount(n.overflowPackets), exact(n.overflowPackets, 'packets')),
      ));
    }
    parts.push(h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Node'), h('th', {}, 'Version'), h('th', { class: 'num' }, 'Uptime'),
        h('th', { class: 'num' }, 'Flows'), h('th', { class: 'num' }, 'Map fill'), h('th', { class: 'num' }, 'Overflow'))),
      tb)));
  } else {
    const n = s.nodes[0];
    const kv = h('dl', { class: 'kv' });
    const row = (k: string, v: string, title = '') => kv.append(h('dt', {}, k), h('dd', { title }, v));
    row('Node', n.node);
    row('Version', n.version ?? '–');
    row('Uptime', n.uptimeSeconds === undefined ? '–' : formatDuration(n.uptimeSeconds), n.uptimeSeconds === undefined ? '' : exact(Math.floor(n.uptimeSeconds), 's'));
    if (n.hook) row('Hook', n.hook);
    if (n.interfaces.length) row('Interfaces', n.interfaces.join(', '));
    row('Flows tracked', n.flowsTracked === undefined ? '–' : exact(n.flowsTracked));
    row('Map capacity', n.mapCapacity === undefined ? '–' : exact(n.mapCapacity),
      n.mapFill !== undefined ? `${formatPercent(n.mapFill)} full` : '');
    row('Overflow', `${exact(n.overflowPackets)} pkts / ${formatBytes(n.overflowBytes)}`, exact(n.overflowBytes, 'bytes'));
    if (n.otherPackets !== undefined) {
      row('Non-IP frames', `${exact(n.otherPackets)} pkts / ${formatBytes(n.otherBytes ?? 0)}`, 'counted per interface, not as flows');
    }
    row('Last poll', n.lastPollMs === undefined ? '–' : formatMs(n.lastPollMs), n.lastPollMs === undefined ? '' : exact(n.lastPollMs, 'ms'));
    if (n.ready !== undefined) row('Ready', n.ready ? 'yes' : 'not yet');
    if (n.pollErrors) row('Poll errors', exact(n.pollErrors), n.pollError ?? '');
    const fails = Object.entries(n.failures);
    if (fails.length) {
      row('Datapath issues', fails.map(([k, v]) => `${k.replace(/_/g, ' ')} ${formatCount(v)}`).join(', '),
        fails.map(([k, v]) => `${k}: ${exact(v)}`).join('\n'));
      kv.lastElementChild?.classList.add('warn-text');
    }
    parts.push(kv);
  }
  const sinks = s.nodes.flatMap((n) => n.sinks.map((k) => ({ node: n.node, ...k })));
  parts.push(h('h3', {}, 'Exporters'));
  if (sinks.length === 0) {
    parts.push(h('p', { class: 'muted small' }, 'No exporters configured (records are served over HTTP only).'));
  } else {
    const tb = h('tbody');
    for (const k of sinks) {
      const cls = !k.healthy ? 'bad' : k.dropped > 0 ? 'warn' : 'ok';
      tb.append(h('tr', {},
        s.multiNode ? h('td', {}, k.node) : null,
        h('td', { title: k.error ?? '' }, h('span', { class: `badge ${cls}` }, !k.healthy ? 'error' : k.dropped > 0 ? 'dropping' : 'ok'), ' ', k.name),
        numCell(formatCount(k.exported), exact(k.exported, 'records exported')),
        numCell(formatCount(k.dropped), exact(k.dropped, 'records dropped')),
      ));
    }
    parts.push(h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, s.multiNode ? h('th', {}, 'Node') : null, h('th', {}, 'Sink'), h('th', { class: 'num' }, 'Exported'), h('th', { class: 'num' }, 'Dropped'))),
      tb)));
  }
  body.replaceChildren(...parts);
  $('#status-updated').textContent = `updated ${formatClock(Date.now())}`;
  renderAlerts();
}

// --------------------------------------------------------------- interfaces

const CHART_SECONDS = (HISTORY_POINTS * POLL_IFACES_MS) / 1000;
const bytesChart = new RateChart($('#chart-bytes'), CHART_SECONDS, (v) => v.toString(), (v) => v.toString());
const pktsChart = new RateChart($('#chart-pkts'), CHART_SECONDS, formatPps, (v) => exact(v, 'packets/s'));

function rateFmt(): [(v: number) => string, (v: number) => string] {
  return state.unit === 'bits'
    ? [formatBitRate, (v) => exact(v, 'bits/s')]
    : [formatByteRate, (v) => exact(v, 'bytes/s')];
}

function applyUnit(): void {
  const [f, e] = rateFmt();
  bytesChart.setFormat(state.unit, f, e);
  for (const b of document.querySelectorAll<HTMLButtonElement>('.seg-btn')) b.setAttribute('aria-pressed', String(b.dataset.unit === state.unit));
  renderIfaces();
  renderCharts();
}

/** The byte rate the API reports for a direction, in the unit shown (bps is bits per second). */
function rateOf(bps: number): number {
  return state.unit === 'bits' ? bps : bps / 8;
}

function seriesDefs(ids: string[]): SeriesDef[] {
  const one = state.ifaces.length <= 1;
  const rx = getComputedStyle(document.documentElement).getPropertyValue('--rx').trim() || PALETTE[0];
  const tx = getComputedStyle(document.documentElement).getPropertyValue('--tx').trim() || PALETTE[1];
  const ifaceIds = [...new Set(ids.map((id) => id.slice(0, id.lastIndexOf(':'))))];
  return ids.map((id) => {
    const iface = id.slice(0, id.lastIndexOf(':'));
    const d = id.slice(id.lastIndexOf(':') + 1);
    const color = one ? (d === 'rx' ? rx : tx) : PALETTE[ifaceIds.indexOf(iface) % PALETTE.length];
    return { id, label: `${iface} ${d}`, color, dash: !one && d === 'tx' ? [6, 4] : undefined };
  });
}

function renderCharts(): void {
  if (!history.bytes.times.length) return;
  const [f, e] = rateFmt();
  bytesChart.setFormat(state.unit, f, e);
  const ids = [...history.bytes.values.keys()].sort();
  const defs = seriesDefs(ids);
  // the byte history holds bits per second; shown in the chosen unit
  const raw = history.bytes.data(ids);
  const scaled = state.unit === 'bits' ? raw : [raw[0], ...raw.slice(1).map((a) => (a as (number | null)[]).map((v) => (v == null ? v : v / 8)))];
  bytesChart.update(defs, scaled as typeof raw);
  const pids = [...history.pkts.values.keys()].sort();
  pktsChart.update(seriesDefs(pids), history.pkts.data(pids));
}

function renderIfaces(): void {
  const tb = $('#ifaces tbody');
  const list = state.ifaces;
  if (!history.bytes.times.length) return; // nothing received yet: keep "Waiting for data…"
  if (!list.length) {
    tb.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 12 }, 'No interfaces reported.')));
    return;
  }
  const [rf, re] = rateFmt();
  tb.replaceChildren(...list.map((i) => h('tr', {},
    h('td', { class: 'col-node' }, i.node ?? ''),
    h('td', { title: i.ifindex !== undefined ? `ifindex ${i.ifindex}` : '' }, h('b', {}, i.iface)),
    h('td', {}, i.hook ?? '–'),
    numCell(rf(rateOf(i.rx.bps)), re(rateOf(i.rx.bps))),
    numCell(formatPps(i.rx.pps), exact(i.rx.pps, 'packets/s')),
    numCell(formatCount(i.rx.packets), exact(i.rx.packets, 'packets')),
    numCell(formatBytes(i.rx.bytes), exact(i.rx.bytes, 'bytes')),
    numCell(rf(rateOf(i.tx.bps)), re(rateOf(i.tx.bps))),
    numCell(formatPps(i.tx.pps), exact(i.tx.pps, 'packets/s')),
    numCell(formatCount(i.tx.packets), exact(i.tx.packets, 'packets')),
    numCell(formatBytes(i.tx.bytes), exact(i.tx.bytes, 'bytes')),
    ovCell(i),
  )));
  let rxb = 0, txb = 0, rxp = 0, txp = 0;
  for (const i of list) {
    rxb += i.rx.bps;
    txb += i.tx.bps;
    rxp += i.rx.pps;
    txp += i.tx.pps;
  }
  tile('tile-rx', rf(rateOf(rxb)), re(rateOf(rxb)), formatPps(rxp), exact(rxp, 'packets/s'));
  tile('tile-tx', rf(rateOf(txb)), re(rateOf(txb)), formatPps(txp), exact(txp, 'packets/s'));
}

function ovCell(i: IfaceInfo): HTMLTableCellElement {
  const td = numCell(formatCount(i.overflowPackets), `${exact(i.overflowPackets, 'packets')}, ${exact(i.overflowBytes, 'bytes')} not attributed to a flow`);
  if (i.overflowPackets > 0) td.classList.add('warn-text');
  return td;
}

function syncIfaceOptions(): void {
  const sel = $<HTMLSelectElement>('#filters select[name="iface"]');
  const names = [...new Set(state.ifaces.map((i) => i.iface))].sort();
  const cur = state.view.filter.iface;
  if (cur && !names.includes(cur)) names.push(cur);
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join() === names.join()) return;
  sel.replaceChildren(h('option', { value: '' }, 'any'), ...names.map((n) => h('option', { value: n }, n)));
  sel.value = cur;
}

function syncNodeOptions(): void {
  const sel = $<HTMLSelectElement>('#filters select[name="node"]');
  const names = (state.status?.nodes ?? []).map((n) => n.node).sort();
  const cur = state.view.filter.node;
  if (cur && !names.includes(cur)) names.push(cur);
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join() === names.join()) return;
  sel.replaceChildren(h('option', { value: '' }, 'any'), ...names.map((n) => h('option', { value: n }, n)));
  sel.value = cur;
}

// ----------------------------------------------------------------- top talkers

const BY_LABEL: Record<string, string> = {
  src: 'Source', dst: 'Destination', pair: 'Source → destination', flow: 'Flow', sport: 'Source port',
  dport: 'Destination port', proto: 'Protocol', iface: 'Interface', node: 'Node',
};

function bar(share: number): HTMLElement {
  const s = h('span');
  s.style.width = `${(share * 100).toFixed(2)}%`; // CSSOM, allowed by the page's CSP (no inline style attributes)
  return s;
}

function renderTop(ans: TopAnswer): void {
  const tb = $('#top tbody');
  const by = state.view.top.by;
  $('#top-keycol').textContent = BY_LABEL[by] ?? by;
  const foot = $('#top-foot');
  const win = topWindow.selectedOptions[0]?.textContent ?? state.view.top.window;
  foot.replaceChildren();
  if (ans.totalBytes !== undefined && ans.totalPackets !== undefined) {
    foot.append(h('span', { title: `${exact(ans.totalBytes, 'bytes')}, ${exact(ans.totalPackets, 'packets')}` },
      `Total in the last ${win}: ${formatBytes(ans.totalBytes)}, ${formatCount(ans.totalPackets)} packets`));
  } else {
    foot.append(h('span', {}, `Last ${win}`));
  }
  if (ans.exact === false) foot.append(' · ', h('span', { class: 'badge warn', title: 'more groups than the server keeps per window: the ranking is approximate' }, 'approximate'));
  if (!ans.entries.length) {
    // the server counts top talkers in completed time buckets: a fresh agent has none yet
    const msg = ans.from === null ? 'Collecting: top talkers appear when the first time bucket completes.' : `No traffic in the last ${win}.`;
    tb.replaceChildren(h('tr', { class: 'empty' }, h('td', { colspan: 5 }, msg)));
    return;
  }
  const metric = state.view.top.metric;
  tb.replaceChildren(...ans.entries.map((e, i) => {
    const label = formatKey(by, e.key);
    const port = by === 'sport' || by === 'dport' ? portName(Number(e.key[by])) : undefined;
    const btn = h('button', { type: 'button', class: 'keybtn', title: `Filter live flows by ${label}`, 'data-key': JSON.stringify(e.key) },
      label, port ? h('span', { class: 'pn' }, port) : null);
    btn.addEventListener('click', () => applyFilter(keyToFilter(e.key), `Live flows filtered by ${label}`, true));
    const pct = formatPercent(e.share);
    return h('tr', {},
      h('td', { class: 'rank' }, String(i + 1)),
      h('td', {}, btn),
      h('td', { title: `${(e.share * 100).toFixed(4)}% of ${metric} in the window` },
        h('div', { class: 'share' },
          h('div', { class: 'share-bar', role: 'presentation' }, bar(e.share)),
          h('span', { class: 'share-pct' }, pct))),
      numCell(formatBytes(e.bytes), exact(e.bytes, 'bytes')),
      numCell(formatCount(e.packets), exact(e.packets, 'packets')),
    );
  }));
}

// ------------------------------------------------------------------ live flows

const flowTbody = $<HTMLTableSectionElement>('#flow-table tbody');
let stream: EventStream | undefined;
let streamGen = 0;
let pending: FlowRecord[] = []; // arrived, not yet drawn (batched per frame, or held while paused)
let frame = 0;
let received = 0;
/** end of the newest record seen: a reconnecting stream resumes from there */
let newestEnd = '5s';
const seenKeys = new Set<string>();
let connState: 'connecting' | 'open' | 'retrying' | 'closed' = 'connecting';
let connDetail = '';

function updateConn(): void {
  const el = $('#conn');
  const text = $('#conn-text');
  el.classList.remove('live', 'paused', 'error');
  if (state.apiError) {
    el.classList.add('error');
    text.textContent = 'API error';
  } else if (state.paused) {
    el.classList.add('paused');
    text.textContent = pending.length ? `paused · ${pending.length} new` : 'paused';
  } else if (connState === 'open') {
    el.classList.add('live');
    text.textContent = 'live';
  } else if (connState === 'retrying') {
    el.classList.add('error');
    text.textContent = 'reconnecting';
  } else {
    text.textContent = connState === 'closed' ? 'stopped' : 'connecting';
  }
  el.title = connDetail;
}

function flowRow(r: FlowRecord, fresh: boolean): HTMLTableRowElement {
  const ingress = r.direction === 'ingress';
  const t = r.end ?? r.lastSeen ?? '';
  const icmp = r.proto.startsWith('icmp') && r.icmpType !== undefined ? ` type ${r.icmpType}/${r.icmpCode ?? 0}` : '';
  const tr = h('tr', fresh ? { class: 'fresh' } : {},
    h('td', { class: 'mono', title: [r.start && `start ${r.start}`, r.end && `end ${r.end}`, r.firstSeen && `first seen ${r.firstSeen}`].filter(Boolean).join('\n') }, formatClock(t)),
    h('td', { class: 'col-node' }, r.node ?? ''),
    h('td', { title: r.ifindex !== undefined ? `ifindex ${r.ifindex}` : '' }, r.iface),
    h('td', { class: ingress ? 'dir-in' : 'dir-out', title: r.direction }, ingress ? '↓ in' : '↑ out'),
    h('td', { title: icmp ? `${r.proto}${icmp}` : r.proto }, h('span', { class: 'proto' }, r.proto)),
    h('td', { class: 'ep mono', title: r.src }, endpoint(r.src, r.sport)),
    h('td', { class: 'ep mono', title: r.dst }, endpoint(r.dst, r.dport)),
    numCell(formatCount(r.packets), exact(r.packets, 'packets')),
    numCell(formatBytes(r.bytes), exact(r.bytes, 'bytes')),
    h('td', { class: 'flags' }, (r.tcpFlags ?? []).join(' ')),
  );
  tr.dataset.k = flowRecordKey(r);
  return tr;
}

function updateFlowCount(): void {
  const n = flowTbody.rows.length;
  $('#flows-count').textContent = `${n} shown · ${received} received`;
  $('#flows-count').title = `at most ${state.maxRows} rows are kept; older rows are dropped`;
  $('#flows-empty').hidden = n > 0;
}

/** Draws held records at most every DRAW_EVERY_MS, in an animation frame (none while the tab is hidden). */
const DRAW_EVERY_MS = 150;
function scheduleDraw(): void {
  if (frame) return;
  frame = window.setTimeout(() => requestAnimationFrame(drawPending), DRAW_EVERY_MS);
}

function drawPending(): void {
  frame = 0;
  if (state.paused || !pending.length) return;
  const batch = pending.slice(-state.maxRows); // newest last in pending
  pending = [];
  const frag = document.createDocumentFragment();
  for (let i = batch.length - 1; i >= 0; i--) frag.append(flowRow(batch[i], true));
  flowTbody.prepend(frag);
  while (flowTbody.rows.length > state.maxRows) {
    flowTbody.rows[flowTbody.rows.length - 1].remove();
  }
  updateFlowCount();
}

function rememberKey(r: FlowRecord): boolean {
  const k = flowRecordKey(r);
  if (seenKeys.has(k)) return false;
  seenKeys.add(k);
  if (seenKeys.size > state.maxRows * 4) {
    // forget the oldest half; a duplicate can only come from the backlog/stream seam
    const keep = [...seenKeys].slice(-state.maxRows * 2);
    seenKeys.clear();
    for (const x of keep) seenKeys.add(x);
  }
  return true;
}

function onFlow(data: unknown): void {
  const r = normalizeFlow(data);
  if (!r || !rememberKey(r)) return;
  received++;
  if (r.end && (newestEnd.endsWith('s') || r.end > newestEnd)) newestEnd = r.end;
  pending.push(r);
  if (pending.length > state.maxRows) pending.splice(0, pending.length - state.maxRows);
  if (state.paused) {
    updateConn();
    $('#flows-count').textContent = `${flowTbody.rows.length} shown · ${received} received · ${pending.length} held while paused`;
    return;
  }
  scheduleDraw();
}

async function restartFlows(): Promise<void> {
  const gen = ++streamGen;
  stream?.stop();
  stream = undefined;
  pending = [];
  seenKeys.clear();
  received = 0;
  flowTbody.replaceChildren();
  updateFlowCount();
  const errBox = $('#flows-err');
  errBox.hidden = true;
  const f = state.view.filter;
  // backlog first (newest first), then follow from the newest record of the
  // backlog on ("since"), so nothing that arrives in between is missed; the
  // overlap is dropped by rememberKey()
  let since = '5s';
  try {
    const body = (await getJson(`api/v1/flows${flowsQuery(f, { limit: state.maxRows })}`)) as { flows?: unknown[] };
    if (gen !== streamGen) return;
    const rows: HTMLTableRowElement[] = [];
    for (const x of body.flows ?? []) {
      const r = normalizeFlow(x);
      if (r && rememberKey(r)) {
        rows.push(flowRow(r, false));
        received++;
        if (rows.length === 1 && r.end && !Number.isNaN(Date.parse(r.end))) since = r.end;
      }
    }
    flowTbody.replaceChildren(...rows.slice(0, state.maxRows));
    updateFlowCount();
    markFirstData();
  } catch (e) {
    if (gen !== streamGen) return;
    if (e instanceof ApiError && e.status === 400) {
      errBox.textContent = `The server rejected the filter: ${e.message}`;
      errBox.hidden = false;
      return;
    }
    handleError(e);
  }
  if (gen !== streamGen) return;
  newestEnd = since;
  stream = new EventStream(() => `api/v1/flows/stream${flowsQuery(f, { since: newestEnd })}`, {
    onData: (d) => {
      if (gen === streamGen) onFlow(d);
    },
    onState: (st, detail) => {
      if (gen !== streamGen) return;
      connState = st;
      connDetail = detail ?? '';
      updateConn();
    },
    onFatal: (err) => {
      if (gen !== streamGen) return;
      if (err.unauthorized) handleError(err);
      else {
        errBox.textContent = `The server rejected the stream: ${err.message}`;
        errBox.hidden = false;
      }
    },
  });
  stream.start();
}

function setPaused(p: boolean): void {
  state.paused = p;
  const b = $('#pause-btn');
  b.setAttribute('aria-pressed', String(p));
  b.textContent = p ? 'Resume' : 'Pause';
  if (!p && pending.length) scheduleDraw();
  updateConn();
}

// ----------------------------------------------------------------- filters

const form = $<HTMLFormElement>('#filters');

function formFilter(): FlowFilter {
  const fd = new FormData(form);
  const raw: Partial<FlowFilter> = {};
  for (const k of FILTER_FIELDS) raw[k] = String(fd.get(k) ?? '');
  return normalizeFilter(raw);
}

function fillForm(f: FlowFilter): void {
  syncIfaceOptions();
  syncNodeOptions();
  for (const k of FILTER_FIELDS) {
    const el = form.elements.namedItem(k) as HTMLInputElement | HTMLSelectElement | null;
    if (el) el.value = f[k];
  }
  showErrors({});
}

function showErrors(errors: Partial<Record<FilterField, string>>): void {
  for (const k of FILTER_FIELDS) {
    const el = form.elements.namedItem(k) as HTMLInputElement | null;
    if (!el) continue;
    const msg = errors[k] ?? '';
    if (msg) el.setAttribute('aria-invalid', 'true');
    else el.removeAttribute('aria-invalid');
    const small = el.parentElement?.querySelector('small.err');
    if (small) small.textContent = msg;
  }
}

function saveHash(): void {
  const hsh = stateToHash(state.view);
  history_replace(hsh);
}

function history_replace(hsh: string): void {
  window.history.replaceState(null, '', hsh || location.pathname + location.search);
}

function applyFilter(f: FlowFilter, msg?: string, scroll = false): void {
  const errors = validateFilter(f);
  if (Object.keys(errors).length) {
    showErrors(errors);
    const first = FILTER_FIELDS.find((k) => errors[k]);
    if (first) (form.elements.namedItem(first) as HTMLElement | null)?.focus();
    return;
  }
  state.view = { ...state.view, filter: f };
  fillForm(f);
  saveHash();
  void restartFlows();
  if (msg) toast(msg);
  if (scroll) $('#flows').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  applyFilter(formFilter());
});
for (const sel of form.querySelectorAll('select')) sel.addEventListener('change', () => applyFilter(formFilter()));
form.addEventListener('input', (ev) => {
  // clear a field's error as soon as it is edited
  const el = ev.target as HTMLInputElement;
  if (el.getAttribute('aria-invalid') === 'true') {
    el.removeAttribute('aria-invalid');
    const small = el.parentElement?.querySelector('small.err');
    if (small) small.textContent = '';
  }
});
$('#clear-btn').addEventListener('click', () => applyFilter(normalizeFilter({}), 'Filters cleared'));
$('#pause-btn').addEventListener('click', () => setPaused(!state.paused));
$<HTMLSelectElement>('#flows-max').addEventListener('change', (ev) => {
  state.maxRows = Number((ev.target as HTMLSelectElement).value) || 250;
  void restartFlows();
});

// ------------------------------------------------------------------ top controls

const topBy = $<HTMLSelectElement>('#top-by');
const topMetric = $<HTMLSelectElement>('#top-metric');
const topWindow = $<HTMLSelectElement>('#top-window');
topBy.value = state.view.top.by;
topMetric.value = state.view.top.metric;
if (![...topWindow.options].some((o) => o.value === state.view.top.window)) {
  topWindow.append(h('option', { value: state.view.top.window }, state.view.top.window));
}
topWindow.value = state.view.top.window;
for (const sel of [topBy, topMetric, topWindow]) {
  sel.addEventListener('change', () => {
    state.view = {
      ...state.view,
      top: { ...state.view.top, by: topBy.value as TopBy, metric: topMetric.value as TopMetric, window: topWindow.value },
    };
    saveHash();
    kick(topPoller);
  });
}

// -------------------------------------------------------------------- token

const dlg = $<HTMLDialogElement>('#token-dlg');
function openTokenDialog(why?: string): void {
  if (dlg.open) return;
  const p = $('#token-why');
  if (why) p.textContent = why;
  $<HTMLInputElement>('#token-input').value = getToken();
  dlg.returnValue = ''; // Esc keeps the previous value otherwise
  dlg.showModal();
}
function syncTokenBtn(): void {
  const b = $('#token-btn');
  const has = !!getToken();
  b.classList.toggle('has-token', has);
  b.textContent = has ? 'Token ✓' : 'Token';
}
$('#token-btn').addEventListener('click', () => openTokenDialog());
dlg.addEventListener('close', () => {
  const v = dlg.returnValue;
  if (v === 'save') setToken($<HTMLInputElement>('#token-input').value.trim());
  else if (v === 'clear') setToken('');
  else return;
  tokenPrompted = false; // a new token that fails again asks again
  syncTokenBtn();
  setApiError('');
  for (const p of pollers) kick(p);
  void restartFlows();
  toast(v === 'save' ? 'Token saved' : 'Token forgotten');
});

// ------------------------------------------------------------------ keyboard

document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || dlg.open) return;
  const t = ev.target as HTMLElement;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
  if (ev.key === 'Escape' && typing) {
    t.blur();
    return;
  }
  if (typing) return;
  if (ev.key === '/') {
    ev.preventDefault();
    (form.elements.namedItem('ip') as HTMLInputElement).focus();
  } else if (ev.key === 'p') {
    setPaused(!state.paused);
  } else if (ev.key === 't') {
    toggleTheme();
  }
});
$('#theme-btn').addEventListener('click', toggleTheme);
for (const b of document.querySelectorAll<HTMLButtonElement>('.seg-btn')) {
  b.addEventListener('click', () => {
    state.unit = b.dataset.unit === 'bits' ? 'bits' : 'bytes';
    localStorage.setItem('flowscope.unit', state.unit);
    applyUnit();
  });
}
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  if (!localStorage.getItem('flowscope.theme')) applyTheme(null);
});

// ------------------------------------------------------------------ pollers

addPoller('status', POLL_STATUS_MS, async (signal) => {
  state.status = normalizeStatus(await getJson('api/v1/status', signal));
  renderStatus();
  markFirstData();
});

addPoller('interfaces', POLL_IFACES_MS, async (signal) => {
  state.ifaces = normalizeInterfaces(await getJson('api/v1/interfaces', signal));
  const t = Date.now() / 1000;
  const b = new Map<string, number>();
  const p = new Map<string, number>();
  for (const i of state.ifaces) {
    b.set(`${i.id}:rx`, i.rx.bps);
    b.set(`${i.id}:tx`, i.tx.bps);
    p.set(`${i.id}:rx`, i.rx.pps);
    p.set(`${i.id}:tx`, i.tx.pps);
  }
  history.bytes.push(t, b);
  history.pkts.push(t, p);
  renderIfaces();
  renderCharts();
  syncIfaceOptions();
  markFirstData();
});

const topPoller = addPoller('top', POLL_TOP_MS, async (signal) => {
  const q = state.view.top;
  // by=node exists on a relay only (until the status says so, ask for sources)
  const by = q.by === 'node' && !multiNode() ? 'src' : q.by;
  renderTop(normalizeTop(await getJson(`api/v1/top${topQuery({ ...q, by })}`, signal)));
});

// --------------------------------------------------------------------- start

function start(): void {
  const saved = localStorage.getItem('flowscope.theme');
  if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
  syncTokenBtn();
  fillForm(state.view.filter);
  applyUnit();
  for (const p of pollers) schedule(p, 0);
  void restartFlows();
  window.addEventListener('hashchange', () => {
    const next = hashToState(location.hash);
    if (stateToHash(next) === stateToHash(state.view)) return;
    state.view = next;
    topBy.value = next.top.by;
    topMetric.value = next.top.metric;
    topWindow.value = next.top.window;
    fillForm(next.filter);
    kick(topPoller);
    void restartFlows();
  });
}

start();
