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

/** uPlot's options but the size, which the container gives */
type PlotOptions = Omit<uPlot.Options, 'width' | 'height'>;

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * A uPlot chart in a container: sized from the container (its height from the
 * CSS --plot-h), a placeholder until there is data, axes in the page's font
 * and colours, values in a format that can change (rebuilds the chart).
 */
abstract class Chart {
  protected plot: uPlot | undefined;
  protected signature = '';
  private readonly empty: HTMLElement;
  private fmtKey = '';

  constructor(
    protected readonly el: HTMLElement,
    protected fmt: (v: number) => string,
    protected exactFmt: (v: number) => string,
  ) {
    this.empty = document.createElement('div');
    this.empty.className = 'chart-empty';
    this.empty.textContent = 'Waiting for data…';
    el.append(this.empty);
    new ResizeObserver(() => this.resize()).observe(el);
  }

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
  protected size(): { width: number; height: number } {
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

  /** Draws data: a new plot when the series changed (signature), else new data in the old one. */
  protected draw(series: SeriesDef[], data: uPlot.AlignedData, options: () => PlotOptions): void {
    if (this.plot && !this.plot.root.isConnected) this.plot = undefined;
    const sig = series.map((s) => `${s.id}:${s.label}:${s.color}`).join(',');
    if (sig !== this.signature || !this.plot) {
      this.plot?.destroy();
      this.plot = new uPlot({ ...options(), ...this.size() }, data, this.el);
      // for tests and the curious: document.querySelector('#chart-bytes').uplot
      Object.defineProperty(this.el, 'uplot', { value: this.plot, configurable: true });
      this.resize();
      this.signature = sig;
    } else {
      this.plot.setData(data);
    }
    this.empty.hidden = series.length > 0 && data[0].length > 0;
  }

  /** A time axis and a value axis, in the page's font size (larger on a wall screen) and colours. */
  protected axes(): uPlot.Axis[] {
    const px = Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize || '14') * 0.8);
    const font = `${px}px system-ui, sans-serif`;
    const axis = cssVar('--muted') || '#888';
    const grid = cssVar('--grid') || 'rgba(128,128,128,.15)';
    const fmt = this.fmt;
    return [
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
    ];
  }

  /** Legend rows' titles: the exact value of each entry, at the cursor or the latest. */
  protected exactTitles(value: (u: uPlot, si: number, idx: number | null) => number | null): uPlot.Hooks.Arrays['setLegend'] {
    return [
      (u: uPlot) => {
        const idx = u.cursor.idx ?? null;
        u.root.querySelectorAll<HTMLElement>('.u-legend .u-series').forEach((row, i) => {
          if (i === 0) return;
          const v = value(u, i, idx);
          row.title = v == null ? '' : this.exactFmt(v);
        });
      },
    ];
  }
}

const timeSeries: uPlot.Series = { label: 'Time', value: (_u, v) => (v == null ? 'now' : new Date(v * 1000).toLocaleTimeString()) };

/** Rates per interface and direction over the last windowSeconds, newest at the right edge. */
export class RateChart extends Chart {
  private ids: string[] = [];

  constructor(
    el: HTMLElement,
    private readonly windowSeconds: number,
    fmt: (v: number) => string,
    exactFmt: (v: number) => string,
  ) {
    super(el, fmt, exactFmt);
  }

  update(series: SeriesDef[], data: uPlot.AlignedData): void {
    this.draw(series, data, () => this.options(series));
  }

  private options(series: SeriesDef[]): PlotOptions {
    this.ids = series.map((s) => s.id);
    const fmt = this.fmt;
    const valueAt = (u: uPlot, si: number, idx: number | null) => {
      const d = u.data[si] as (number | null)[] | undefined;
      return !d ? null : idx == null ? lastValue(d) : (d[idx] ?? null);
    };
    return {
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
      axes: this.axes(),
      series: [
        timeSeries,
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
          value: (u: uPlot, _v: number | null, si: number, idx: number | null) => {
            const v = valueAt(u, si, idx);
            return v == null ? '–' : fmt(v);
          },
        })),
      ],
      hooks: { setLegend: this.exactTitles(valueAt) },
    };
  }

  seriesIds(): string[] {
    return this.ids;
  }
}

/**
 * Series stacked on each other (the first at the bottom), each filled down to
 * the one below it: the top line is the total. The legend and the titles show
 * each series' own value, not the stacked sum.
 */
export class StackedChart extends Chart {
  /** the values as given (unstacked), by series index (1-based, as uPlot's) */
  private own: number[][] = [];

  update(series: SeriesDef[], xs: number[], values: number[][]): void {
    this.own = [[], ...values];
    const sums = new Array<number>(xs.length).fill(0);
    const stacked = values.map((col) => col.map((v, j) => (sums[j] += v)));
    this.draw(series, [xs, ...stacked] as uPlot.AlignedData, () => this.options(series));
  }

  /** What the chart shows, unstacked: x and each series' values (for tests). */
  shown(): { xs: number[]; values: number[][] } {
    return { xs: [...((this.plot?.data[0] as number[]) ?? [])], values: this.own.slice(1).map((v) => [...v]) };
  }

  private options(series: SeriesDef[]): PlotOptions {
    const fmt = this.fmt;
    const valueAt = (_u: uPlot, si: number, idx: number | null) => {
      const d = this.own[si];
      if (!d?.length) return null;
      return d[idx ?? d.length - 1] ?? null;
    };
    return {
      pxAlign: 0,
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      legend: { live: true },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: this.axes(),
      // each series is filled between itself and the one below
      bands: series.slice(1).map((_s, i) => ({ series: [i + 2, i + 1] as [number, number] })),
      series: [
        timeSeries,
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1,
          fill: s.color + '59',
          points: { show: (u: uPlot) => u.data[0].length < 3, size: 6 },
          value: (u: uPlot, _v: number | null, si: number, idx: number | null) => {
            const v = valueAt(u, si, idx);
            return v == null ? '–' : fmt(v);
          },
        })),
      ],
      hooks: { setLegend: this.exactTitles(valueAt) },
    };
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
