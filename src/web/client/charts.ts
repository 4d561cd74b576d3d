/// <reference lib="dom" />
/**
 * Rate charts (uPlot): one series per interface and direction, the last five
 * minutes: the agent's history at page load, then one point per poll of
 * /api/v1/interfaces.
 */
import uPlot from 'uplot';

export interface SeriesDef {
  id: string;
  label: string;
  color: string;
  dash?: number[];
}

/** Fixed-length history shared by the charts: times (s) and a value array per series id. */
export class History {
  times: number[] = [];
  values = new Map<string, (number | null)[]>();

  constructor(readonly maxPoints: number) {}

  push(t: number, point: Map<string, number>): void {
    this.times.push(t);
    for (const [id, v] of point) {
      if (!this.values.has(id)) this.values.set(id, new Array<number | null>(this.times.length - 1).fill(null));
    }
    for (const [id, arr] of this.values) arr.push(point.has(id) ? (point.get(id) as number) : null);
    if (this.times.length > this.maxPoints) {
      const cut = this.times.length - this.maxPoints;
      this.times.splice(0, cut);
      for (const arr of this.values.values()) arr.splice(0, cut);
    }
    // series that have been empty for the whole window go away
    for (const [id, arr] of this.values) if (arr.every((v) => v === null)) this.values.delete(id);
  }

  /**
   * Adds points older than those held (a history read while live points
   * arrive), oldest first; the ones not older than the first held are left
   * out. Values by series id, aligned with `times`.
   */
  prepend(times: number[], values: Map<string, (number | null)[]>): void {
    const first = this.times.length ? this.times[0] : Infinity;
    let n = 0;
    while (n < times.length && times[n] < first) n++;
    if (n === 0) return;
    const held = this.times.length;
    const nulls = (k: number) => new Array<number | null>(k).fill(null);
    const merged = new Map<string, (number | null)[]>();
    for (const id of new Set([...values.keys(), ...this.values.keys()])) {
      merged.set(id, [...(values.get(id)?.slice(0, n) ?? nulls(n)), ...(this.values.get(id) ?? nulls(held))]);
    }
    this.times = [...times.slice(0, n), ...this.times];
    this.values = merged;
    const cut = this.times.length - this.maxPoints;
    if (cut > 0) {
      this.times.splice(0, cut);
      for (const arr of this.values.values()) arr.splice(0, cut);
    }
    for (const [id, arr] of this.values) if (arr.every((v) => v === null)) this.values.delete(id);
  }

  data(ids: string[]): uPlot.AlignedData {
    return [this.times, ...ids.map((id) => this.values.get(id) ?? this.times.map(() => null))] as uPlot.AlignedData;
  }
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export class RateChart {
  private plot: uPlot | undefined;
  private ids: string[] = [];
  private signature = '';
  private ro: ResizeObserver;
  private empty: HTMLElement;

  constructor(
    private readonly el: HTMLElement,
    private readonly windowSeconds: number,
    private fmt: (v: number) => string,
    private exactFmt: (v: number) => string,
  ) {
    this.empty = document.createElement('div');
    this.empty.className = 'chart-empty';
    this.empty.textContent = 'Waiting for data…';
    el.append(this.empty);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(el);
  }

  private fmtKey = '';

  /** Changes the value format; key names it, and a new key rebuilds the chart (axis labels). */
  setFormat(key: string, fmt: (v: number) => string, exactFmt: (v: number) => string): void {
    if (key === this.fmtKey) return;
    this.fmtKey = key;
    this.fmt = fmt;
    this.exactFmt = exactFmt;
    this.signature = '';
  }

  /** Forces a rebuild (theme change: colours are read when the chart is made). */
  invalidate(): void {
    this.signature = '';
  }

  /** the plot's height comes from the CSS (--plot-h); the container grows with the legend below it */
  private size(): { width: number; height: number } {
    const r = this.el.getBoundingClientRect();
    const cs = getComputedStyle(this.el);
    const plotH = parseFloat(cs.getPropertyValue('--plot-h')) || 230;
    const padX = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
    return { width: Math.max(200, Math.floor(r.width - padX)), height: Math.max(120, Math.floor(plotH)) };
  }

  private resize(): void {
    if (!this.plot) return;
    const { width, height } = this.size();
    if (width !== this.plot.width || height !== this.plot.height) this.plot.setSize({ width, height });
  }

  update(series: SeriesDef[], data: uPlot.AlignedData): void {
    if (this.plot && !this.plot.root.isConnected) this.plot = undefined;
    const sig = series.map((s) => `${s.id}:${s.label}:${s.color}`).join(',');
    if (sig !== this.signature || !this.plot) {
      this.build(series, data);
      this.signature = sig;
    } else {
      this.plot.setData(data);
    }
    this.empty.hidden = series.length > 0 && data[0].length > 0;
  }

  private build(series: SeriesDef[], data: uPlot.AlignedData): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.ids = series.map((s) => s.id);
    // axis text follows the page's font size (larger on a wall screen)
    const px = Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize || '14') * 0.8);
    const font = `${px}px system-ui, sans-serif`;
    const axis = cssVar('--muted') || '#888';
    const grid = cssVar('--grid') || 'rgba(128,128,128,.15)';
    const fmt = this.fmt;
    const exactFmt = this.exactFmt;
    const opts: uPlot.Options = {
      ...this.size(),
      pxAlign: 0,
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      legend: { live: true },
      scales: {
        // the newest point at the right edge; the window grows with the data up to its full width
        x: {
          time: true,
          // from the data itself: uPlot widens a single point's min/max to a day
          range: (u, min, max) => {
            const xs = u.data[0];
            const hi = xs.length ? xs[xs.length - 1] : max;
            const lo = xs.length ? xs[0] : min;
            return [hi - Math.min(this.windowSeconds, Math.max(30, hi - lo)), hi];
          },
        },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          font,
          size: px * 3.5,
          space: px * 6,
          values: (_u, splits) => splits.map((t) => clock(t)),
        },
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { show: false },
          size: px * 6.5,
          font,
          values: (_u, splits) => splits.map((v) => fmt(v)),
        },
      ],
      series: [
        { label: 'Time', value: (_u, v) => (v == null ? 'now' : new Date(v * 1000).toLocaleTimeString()) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.5,
          dash: s.dash,
          fill: s.dash ? undefined : s.color + '1a',
          // a line needs two points: until then, show the point
          points: { show: (u: uPlot) => u.data[0].length < 3, size: 6 },
          spanGaps: false,
          // at the cursor when hovering, the latest value otherwise
          value: (u: uPlot, v: number | null, si: number, idx: number | null) => {
            if (idx == null) v = lastValue(u.data[si] as (number | null)[]);
            return v == null ? '–' : fmt(v);
          },
        })),
      ],
      hooks: {
        setLegend: [
          (u: uPlot) => {
            // exact value of each legend entry on hover
            const idx = u.cursor.idx;
            u.root.querySelectorAll<HTMLElement>('.u-legend .u-series').forEach((row, i) => {
              if (i === 0) return;
              const d = u.data[i] as (number | null)[] | undefined;
              const v = !d ? null : idx == null ? lastValue(d) : (d[idx] ?? null);
              row.title = v == null ? '' : exactFmt(v);
            });
          },
        ],
      },
    };
    this.plot = new uPlot(opts, data, this.el);
    // for tests and the curious: document.querySelector('#chart-bytes').uplot
    Object.defineProperty(this.el, 'uplot', { value: this.plot, configurable: true });
    this.resize();
  }

  seriesIds(): string[] {
    return this.ids;
  }
}

function clock(t: number): string {
  const d = new Date(t * 1000);
  const p = (x: number) => x.toString().padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function lastValue(a: (number | null)[]): number | null {
  for (let i = a.length - 1; i >= 0; i--) if (a[i] != null) return a[i];
  return null;
}

export const PALETTE = ['#73bf69', '#5794f2', '#ff9830', '#b877d9', '#f2cc0c', '#8ab8ff', '#ff7383', '#37872d', '#fade2a', '#1f60c4'];
