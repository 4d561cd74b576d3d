/// <reference lib="dom" />
/**
 * Top talkers over time: the window's top groups (/api/v1/top/series, the
 * same query as the table) as rates per time bucket, stacked, with the rest
 * of the traffic as "other" on top; the open bucket is drawn up to the last
 * poll (the table's `to`). A server without the route (404; 501 on a
 * scaled-out relay) hides the chart and says so.
 */
import { PALETTE, StackedChart, type SeriesDef } from '../charts.js';
import { $ } from '../dom.js';
import { exact, formatBitRate, formatByteRate, formatPps } from '../format.js';
import type { TopSeriesAnswer } from '../model.js';
import { formatKey } from '../query.js';
import { state } from '../state.js';

/** groups drawn; the rest is "other" */
export const TOP_CHART_K = 5;
const OTHER_COLOR = '#8e8e8e';

const el = $('#chart-top');
const note = $('#top-chart-note');
const chart = new StackedChart(el, formatByteRate, (v) => exact(v, 'bytes/s'));
let last: { series: TopSeriesAnswer; lastPollMs: number | undefined } | undefined;
let available = true;

/** False once the server said it has no series route: the poller stops asking. */
export function topChartAvailable(): boolean {
  return available;
}

export function topChartUnavailable(why: string): void {
  available = false;
  el.hidden = true;
  note.textContent = `Top talkers over time are not shown: ${why}`;
  note.hidden = false;
}

export function renderTopChart(series: TopSeriesAnswer, lastPoll: string | null | undefined): void {
  const t = lastPoll ? Date.parse(lastPoll) : NaN;
  last = { series, lastPollMs: Number.isFinite(t) ? t : undefined };
  drawTopChart();
}

/** Draws the last answer again (a unit or theme change). */
export function drawTopChart(): void {
  if (!last) return;
  const { series: s, lastPollMs } = last;
  const packets = s.metric === 'packets';
  const bits = !packets && state.unit === 'bits';
  if (packets) chart.setFormat('pps', formatPps, (v) => exact(v, 'packets/s'));
  else if (bits) chart.setFormat('bits', formatBitRate, (v) => exact(v, 'bits/s'));
  else chart.setFormat('bytes', formatByteRate, (v) => exact(v, 'bytes/s'));
  // each bucket's rate, drawn at its end; the open bucket's over its part up to the last poll
  const xs: number[] = [];
  const seconds: number[] = [];
  s.times.forEach((start, i) => {
    const end = start + s.bucketMs;
    const open = i === s.times.length - 1 && (lastPollMs === undefined || lastPollMs < end);
    if (open && (lastPollMs === undefined || lastPollMs <= start)) return; // how much of it is counted is not known, or nothing is yet
    const to = open ? lastPollMs! : end;
    xs.push(to / 1000);
    seconds.push((to - start) / 1000);
  });
  const scale = bits ? 8 : 1;
  const rates = (values: number[]) => seconds.map((sec, i) => (values[i] * scale) / sec);
  const defs: SeriesDef[] = s.entries.map((e, i) => ({ id: JSON.stringify(e.key), label: formatKey(s.by, e.key), color: PALETTE[i % PALETTE.length] }));
  defs.push({ id: 'other', label: 'other', color: OTHER_COLOR });
  chart.update(defs, xs, [...s.entries.map((e) => rates(e.values)), rates(s.other)]);
  el.dataset.buckets = String(xs.length);
  if (s.exact === false) {
    note.textContent = 'Approximate: more groups than the server keeps per bucket; the values are lower bounds.';
    note.hidden = false;
  } else if (available) {
    note.hidden = true;
  }
}

/** Colours are read when a chart is made: a theme change rebuilds it. */
export function invalidateTopChart(): void {
  chart.invalidate();
  drawTopChart();
}
