/// <reference lib="dom" />
/** The status: the top bar's crumbs, the summary tiles of /api/v1/status, and the status panel (one node, or a relay's nodes). */
import { renderAlerts } from '../alerts.js';
import { getJson } from '../api.js';
import { $, h, numCell, tile } from '../dom.js';
import { exact, formatBytes, formatClock, formatCount, formatDuration, formatMs, formatPercent } from '../format.js';
import { type StatusInfo, normalizeStatus } from '../model.js';
import { addPoller, type Poller } from '../pollers.js';
import { POLL_STATUS_MS, markFirstData, state } from '../state.js';
import { applyFilter, syncNodeOptions } from './filters.js';

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

export function renderStatus(): void {
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

/** onStatus: after each status is drawn */
export function addStatusPoller(onStatus: () => void): Poller {
  return addPoller('status', POLL_STATUS_MS, async (signal) => {
    state.status = normalizeStatus(await getJson('api/v1/status', signal));
    renderStatus();
    markFirstData();
    onStatus();
  });
}
