/**
 * Human units for the CLI's summaries: bytes in IEC units (KiB, MiB), counts
 * and rates in SI (k, M), durations as 3m12s. Three significant digits at
 * most, so no 8.545849999998609; the exact values stay in `-o json`.
 */

/** 1.23, 12.3, 123: at most three significant digits, no trailing zeros. */
function round3(x: number): string {
  const a = Math.abs(x);
  if (a >= 100 || Number.isInteger(x)) return String(Math.round(x));
  return (a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toPrecision(2)).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
}

/** Scales n by `base` until it is below it; the unit's index and the scaled value, rounded. */
function scale(n: number, base: number, units: readonly string[]): string {
  let v = n;
  let i = 0;
  while (Math.abs(v) >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  let text = round3(v);
  // 1023.7 KiB rounds to "1024": say 1 MiB instead.
  if (Number(text) >= base && i < units.length - 1) {
    i++;
    text = round3(v / base);
  }
  return `${text}${units[i]}`;
}

const IEC = [' B', ' KiB', ' MiB', ' GiB', ' TiB', ' PiB', ' EiB'];
const SI = ['', 'k', 'M', 'G', 'T', 'P', 'E'];
const BIT_RATES = SI.map((prefix) => ` ${prefix}bit/s`);

/** 512 B, 1.5 KiB, 188 KiB, 12.3 MiB. */
export function bytesText(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return Math.abs(n) < 1024 ? `${Math.round(n)} B` : scale(n, 1024, IEC);
}

/** 950, 1.9k, 12.3M: a count (exact below 1000). */
export function countText(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return scale(n, 1000, SI);
}

/** 64 pps, 0.4 pps, 1.2k pps. */
export function ppsText(pps: number): string {
  return `${countText(pps)} pps`;
}

/** 0 bit/s, 51.2 kbit/s, 9.41 Gbit/s. */
export function bitRateText(bps: number): string {
  if (!Number.isFinite(bps)) return '-';
  return scale(bps, 1000, BIT_RATES);
}

/** 4s, 3m12s, 2h05m, 3d4h: a duration in seconds, to the second. */
export function durationText(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const two = (x: number) => String(x).padStart(2, '0');
  if (d > 0) return h > 0 ? `${d}d${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h${two(m)}m` : `${h}h`;
  if (m > 0) return r > 0 ? `${m}m${two(r)}s` : `${m}m`;
  return `${r}s`;
}

/** 0.12 ms, 1.19 ms, 1.5 s: a measured time in milliseconds. */
export function msText(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  return ms >= 1000 ? `${round3(ms / 1000)} s` : `${round3(ms)} ms`;
}

/** A 0..1 fraction: 12.3%, 0.1%, <0.01%, 0%. */
export function percentText(fraction: number): string {
  if (!Number.isFinite(fraction)) return '-';
  const p = fraction * 100;
  if (p === 0) return '0%';
  if (Math.abs(p) < 0.01) return '<0.01%';
  return `${round3(p)}%`;
}

/** An ISO time to the second, in UTC: 2024-05-01 12:00:01Z. */
export function timeText(iso: string | null | undefined): string {
  if (!iso) return '-';
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return t.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
