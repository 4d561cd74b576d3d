/// <reference lib="dom" />
/** Interface rates: the throughput and packet-rate charts, the interfaces table, the receive/transmit tiles. */
import { ApiError, getJson } from '../api.js';
import { PALETTE, RateChart, type SeriesDef } from '../charts.js';
import { $, h, numCell, tile } from '../dom.js';
import { exact, formatBitRate, formatByteRate, formatBytes, formatCount, formatPps } from '../format.js';
import { type IfaceInfo, normalizeHistory, normalizeInterfaces } from '../model.js';
import { addPoller, type Poller } from '../pollers.js';
import { HISTORY_POINTS, POLL_IFACES_MS, markFirstData, rateHistory, state } from '../state.js';
import { syncIfaceOptions } from './filters.js';

const CHART_SECONDS = (HISTORY_POINTS * POLL_IFACES_MS) / 1000;
export const bytesChart = new RateChart($('#chart-bytes'), CHART_SECONDS, (v) => v.toString(), (v) => v.toString());
export const pktsChart = new RateChart($('#chart-pkts'), CHART_SECONDS, formatPps, (v) => exact(v, 'packets/s'));

function rateFmt(): [(v: number) => string, (v: number) => string] {
  return state.unit === 'bits'
    ? [formatBitRate, (v) => exact(v, 'bits/s')]
    : [formatByteRate, (v) => exact(v, 'bytes/s')];
}

export function applyUnit(): void {
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

export function renderCharts(): void {
  if (!rateHistory.bytes.times.length) return;
  const [f, e] = rateFmt();
  bytesChart.setFormat(state.unit, f, e);
  const ids = [...rateHistory.bytes.values.keys()].sort();
  const defs = seriesDefs(ids);
  // the byte history holds bits per second; shown in the chosen unit
  const raw = rateHistory.bytes.data(ids);
  const scaled = state.unit === 'bits' ? raw : [raw[0], ...raw.slice(1).map((a) => (a as (number | null)[]).map((v) => (v == null ? v : v / 8)))];
  bytesChart.update(defs, scaled as typeof raw);
  const pids = [...rateHistory.pkts.values.keys()].sort();
  pktsChart.update(seriesDefs(pids), rateHistory.pkts.data(pids));
}

export function renderIfaces(): void {
  const tb = $('#ifaces tbody');
  const list = state.ifaces;
  if (!ifacesReceived) return; // keep "Waiting for data…"
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

/** The B/s | b/s switch; onChange: after the rate charts and table are redrawn. */
export function installUnitSwitch(onChange: () => void): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('.seg-btn')) {
    b.addEventListener('click', () => {
      state.unit = b.dataset.unit === 'bits' ? 'bits' : 'bytes';
      localStorage.setItem('flowscope.unit', state.unit);
      applyUnit();
      onChange();
    });
  }
}

let ifacesReceived = false;

export function addInterfacesPoller(): Poller {
  return addPoller('interfaces', POLL_IFACES_MS, async (signal) => {
    state.ifaces = normalizeInterfaces(await getJson('api/v1/interfaces', signal));
    ifacesReceived = true;
    const t = Date.now() / 1000;
    const b = new Map<string, number>();
    const p = new Map<string, number>();
    for (const i of state.ifaces) {
      b.set(`${i.id}:rx`, i.rx.bps);
      b.set(`${i.id}:tx`, i.tx.bps);
      p.set(`${i.id}:rx`, i.rx.pps);
      p.set(`${i.id}:tx`, i.tx.pps);
    }
    rateHistory.bytes.push(t, b);
    rateHistory.pkts.push(t, p);
    renderIfaces();
    renderCharts();
    syncIfaceOptions();
    markFirstData();
  });
}

/** idle: to be asked (again after a 401 or a network error); done: drawn, or the server has none */
let historyState: 'idle' | 'loading' | 'done' = 'idle';

/**
 * Fills the charts with the agent's history of the last CHART_SECONDS
 * (/api/v1/interfaces/history) so that they do not start empty: points older
 * than the live ones already drawn. Asked once the status says the server is
 * an agent (a relay keeps none); an older agent without the route (404)
 * leaves the charts live-only. The charts' elements say what happened in
 * data-history ("loaded", "unavailable") and data-history-points.
 */
export async function loadRateHistory(): Promise<void> {
  if (historyState !== 'idle') return;
  historyState = 'loading';
  let body: unknown;
  try {
    body = await getJson(`api/v1/interfaces/history?window=${CHART_SECONDS}s`);
  } catch (e) {
    // errors the pollers meet too are shown by them; a 401 is asked again once a token is saved
    const none = e instanceof ApiError && (e.status === 404 || e.status === 501);
    historyState = none ? 'done' : 'idle';
    if (none) markHistory('unavailable', 0);
    return;
  }
  historyState = 'done';
  const { series } = normalizeHistory(body);
  const times = [...new Set(series.flatMap((s) => s.t))].sort((a, b) => a - b);
  const at = new Map(times.map((t, i) => [t, i]));
  const bits = new Map<string, (number | null)[]>();
  const packets = new Map<string, (number | null)[]>();
  const column = (m: Map<string, (number | null)[]>, id: string) => {
    let c = m.get(id);
    if (!c) m.set(id, (c = new Array<number | null>(times.length).fill(null)));
    return c;
  };
  for (const s of series) {
    s.t.forEach((t, i) => {
      const k = at.get(t)!;
      column(bits, `${s.id}:rx`)[k] = s.rxBps[i];
      column(bits, `${s.id}:tx`)[k] = s.txBps[i];
      column(packets, `${s.id}:rx`)[k] = s.rxPps[i];
      column(packets, `${s.id}:tx`)[k] = s.txPps[i];
    });
  }
  const before = rateHistory.bytes.times.length;
  rateHistory.bytes.prepend(times, bits);
  rateHistory.pkts.prepend(times, packets);
  markHistory('loaded', rateHistory.bytes.times.length - before);
  renderCharts();
}

function markHistory(how: 'loaded' | 'unavailable', points: number): void {
  for (const el of [$('#chart-bytes'), $('#chart-pkts')]) {
    el.dataset.history = how;
    el.dataset.historyPoints = String(points);
  }
}
