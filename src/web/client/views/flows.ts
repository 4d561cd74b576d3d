/// <reference lib="dom" />
/**
 * The live flow list: the backlog from /api/v1/flows, then the SSE stream from
 * the newest record of the backlog on; rows drawn in batches, bounded, held
 * while paused.
 */
import { handleError } from '../alerts.js';
import { ApiError, EventStream, getJson } from '../api.js';
import { conn, updateConn } from '../connection.js';
import { $, h, numCell } from '../dom.js';
import { endpoint, exact, formatBytes, formatClock, formatCount } from '../format.js';
import { type FlowRecord, attributed, flowRecordKey, normalizeFlow } from '../model.js';
import { flowsQuery } from '../query.js';
import { markFirstData, state } from '../state.js';

const flowTbody = $<HTMLTableSectionElement>('#flow-table tbody');
let stream: EventStream | undefined;
let streamGen = 0;
let pending: FlowRecord[] = []; // arrived, not yet drawn (batched per frame, or held while paused)
let frame = 0;
let received = 0;
/** end of the newest record seen: a reconnecting stream resumes from there */
let newestEnd = '5s';
const seenKeys = new Set<string>();
conn.held = () => pending.length;
/** a record of the list said who sent it: the Workload column is shown */
let attribution = false;

function noteAttribution(r: FlowRecord): void {
  if (attribution || !attributed(r)) return;
  attribution = true;
  document.body.classList.remove('no-workload');
}

/** Who sent or received the flow: the workload label, with the cgroup, pod and container on hover. */
function workloadCell(r: FlowRecord): HTMLTableCellElement {
  const title = [
    r.cgroup !== undefined && `cgroup ${r.cgroup ?? '(path unknown)'}`,
    r.pod && `pod ${r.pod.namespace}/${r.pod.name}`,
    r.container && `container ${r.container}`,
  ].filter(Boolean).join('\n');
  const text = r.workload ?? (r.cgroup === undefined ? '' : 'unknown');
  return h('td', { class: 'col-wl', title: title || (attributed(r) ? '' : 'no local socket') }, text);
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
    workloadCell(r),
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
  noteAttribution(r);
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

export async function restartFlows(): Promise<void> {
  const gen = ++streamGen;
  stream?.stop();
  stream = undefined;
  pending = [];
  seenKeys.clear();
  received = 0;
  attribution = false;
  document.body.classList.add('no-workload');
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
        noteAttribution(r);
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
      conn.state = st;
      conn.detail = detail ?? '';
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

export function setPaused(p: boolean): void {
  state.paused = p;
  const b = $('#pause-btn');
  b.setAttribute('aria-pressed', String(p));
  b.textContent = p ? 'Resume' : 'Pause';
  if (!p && pending.length) scheduleDraw();
  updateConn();
}

/** The list's own controls: pause and the row bound. */
export function installFlowControls(): void {
  $('#pause-btn').addEventListener('click', () => setPaused(!state.paused));
  $<HTMLSelectElement>('#flows-max').addEventListener('change', (ev) => {
    state.maxRows = Number((ev.target as HTMLSelectElement).value) || 250;
    void restartFlows();
  });
}
