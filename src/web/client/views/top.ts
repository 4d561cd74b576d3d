/// <reference lib="dom" />
/** Top talkers: the query controls, the table (an entry filters the live flows), its footer. */
import { ApiError, getJson } from '../api.js';
import { $, h, numCell } from '../dom.js';
import { exact, formatBytes, formatCount, formatPercent, portName } from '../format.js';
import { type TopAnswer, normalizeTop, normalizeTopSeries } from '../model.js';
import { addPoller, kick, type Poller } from '../pollers.js';
import { type TopBy, type TopMetric, type ViewState, formatKey, keyToFilter, topQuery } from '../query.js';
import { POLL_TOP_MS, multiNode, saveHash, state } from '../state.js';
import { applyFilter } from './filters.js';
import { TOP_CHART_K, renderTopChart, topChartAvailable, topChartUnavailable } from './top-chart.js';

const topBy = $<HTMLSelectElement>('#top-by');
const topMetric = $<HTMLSelectElement>('#top-metric');
const topWindow = $<HTMLSelectElement>('#top-window');

const BY_LABEL: Record<string, string> = {
  src: 'Source', dst: 'Destination', pair: 'Source → destination', flow: 'Flow', sport: 'Source port',
  dport: 'Destination port', proto: 'Protocol', iface: 'Interface', node: 'Node', cgroup: 'Cgroup', workload: 'Workload',
};

function bar(share: number): HTMLElement {
  const s = h('span');
  s.style.width = `${(share * 100).toFixed(2)}%`; // CSSOM, allowed by the page's CSP (no inline style attributes)
  return s;
}

export function renderTop(ans: TopAnswer): void {
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

export function addTopPoller(): Poller {
  return addPoller('top', POLL_TOP_MS, async (signal) => {
    const q = state.view.top;
    // by=node exists on a relay only (until the status says so, ask for sources)
    const by = q.by === 'node' && !multiNode() ? 'src' : q.by;
    const series = topChartAvailable() ? getJson(`api/v1/top/series${topQuery({ ...q, by, k: TOP_CHART_K })}`, signal) : undefined;
    series?.catch(() => undefined); // awaited below, unless the table's request fails first
    const top = normalizeTop(await getJson(`api/v1/top${topQuery({ ...q, by })}`, signal));
    renderTop(top);
    if (!series) return;
    try {
      renderTopChart(normalizeTopSeries(await series), top.to);
    } catch (e) {
      if (!(e instanceof ApiError && (e.status === 404 || e.status === 501))) throw e;
      topChartUnavailable(e.status === 404 ? 'this server has no /api/v1/top/series (an older agent).' : e.message.replace(/^501: /, ''));
    }
  });
}

/** Shows the view's query in the controls. */
export function showTopQuery(view: ViewState): void {
  topBy.value = view.top.by;
  topMetric.value = view.top.metric;
  if (![...topWindow.options].some((o) => o.value === view.top.window)) {
    topWindow.append(h('option', { value: view.top.window }, view.top.window));
  }
  topWindow.value = view.top.window;
}

/** A changed control changes the view and asks again at once. */
export function installTopControls(topPoller: Poller): void {
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
}
