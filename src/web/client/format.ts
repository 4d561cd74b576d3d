/**
 * Number, unit and time formatting for the dashboard. Pure functions (no DOM),
 * unit-tested in test/web/format.test.ts.
 *
 * Conventions (SI, powers of 1000, as network tools do):
 *   bytes        1.23 kB, 4.5 MB, 6.78 GB
 *   byte rates   1.23 kB/s, 45.6 MB/s
 *   bit rates    1.23 kb/s, 9.41 Gb/s
 *   packet rates 950 pps, 1.23 kpps, 4.56 Mpps
 *   counts       950, 1.23 k, 4.56 M
 * The exact value (every digit, thousands separators) goes into the element's
 * title attribute: see exact().
 */

const SI = ['', 'k', 'M', 'G', 'T', 'P', 'E'];

/** Three significant digits, no trailing ".0": 1.23, 12.3, 123. */
function sig3(x: number): string {
  const a = Math.abs(x);
  if (a === 0) return '0';
  if (a >= 100) return Math.round(x).toString();
  const s = a >= 10 ? x.toFixed(1) : x.toFixed(2);
  return s.replace(/\.?0+$/, '');
}

/**
 * Scales n to an SI prefix and returns "<mantissa> <prefix><unit>", e.g.
 * si(1234, 'B') = "1.23 kB". Values below 1000 keep their integer form when
 * they are integers (950 B, not 950.00 B).
 */
export function si(n: number, unit: string): string {
  if (!Number.isFinite(n)) return '–';
  const neg = n < 0;
  let a = Math.abs(n);
  let i = 0;
  while (a >= 999.5 && i < SI.length - 1) {
    a /= 1000;
    i++;
  }
  // sig3 may round 999.6k up to "1000": move to the next prefix instead.
  let m = i === 0 && Number.isInteger(a) ? a.toString() : sig3(a);
  if (m === '1000' && i < SI.length - 1) {
    i++;
    m = '1';
  }
  const sep = unit === '' && SI[i] === '' ? '' : ' ';
  return `${neg ? '-' : ''}${m}${sep}${SI[i]}${unit}`;
}

export const formatBytes = (n: number): string => si(n, 'B');
export const formatByteRate = (n: number): string => si(n, 'B/s');
export const formatBitRate = (n: number): string => si(n, 'b/s');
export const formatPps = (n: number): string => si(n, 'pps');
export const formatCount = (n: number): string => si(n, '').trim();

/** Exact value for a title attribute: "1,234,567 B". */
export function exact(n: number, unit = ''): string {
  if (!Number.isFinite(n)) return '';
  const s = Number.isInteger(n)
    ? n.toLocaleString('en-US')
    : n.toLocaleString('en-US', { maximumFractionDigits: 3 });
  return unit ? `${s} ${unit}` : s;
}

/** A 0..1 fraction as a percentage: 0.1234 → "12.3%", 0.0004 → "0.04%", 0 → "0%". */
export function formatPercent(f: number): string {
  if (!Number.isFinite(f)) return '–';
  const p = f * 100;
  if (p === 0) return '0%';
  if (Math.abs(p) >= 10) return `${p.toFixed(1).replace(/\.0$/, '')}%`;
  if (Math.abs(p) >= 0.01) return `${p.toFixed(2).replace(/\.?0+$/, '')}%`;
  return '<0.01%';
}

/** Seconds as a short duration: 45s, 12m 5s, 3h 4m, 2d 5h. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${r}s`;
  return `${r}s`;
}

/** Milliseconds, for poll durations: 0.42 ms, 12.3 ms, 1.2 s. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms >= 1000) return `${sig3(ms / 1000)} s`;
  return `${sig3(ms)} ms`;
}

/** HH:MM:SS (local time) of an ISO timestamp or epoch ms; '–' when invalid. */
export function formatClock(t: string | number | Date): string {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return '–';
  const p = (x: number) => x.toString().padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** An address and port as an endpoint: 10.0.0.1:53, [fd00::1]:53, or the bare address when the port is 0. */
export function endpoint(addr: string, port: number): string {
  if (!port) return addr;
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** Well-known port names shown next to the number in the top-talkers table. */
const PORT_NAMES: Record<number, string> = {
  22: 'ssh', 25: 'smtp', 53: 'dns', 80: 'http', 123: 'ntp', 179: 'bgp', 443: 'https',
  514: 'syslog', 853: 'dns-tls', 2379: 'etcd', 3306: 'mysql', 4789: 'vxlan', 5201: 'iperf3',
  5432: 'postgres', 6379: 'redis', 6443: 'k8s-api', 8080: 'http-alt', 9090: 'prometheus',
  9797: 'flowscope', 10250: 'kubelet',
};

export function portName(port: number): string | undefined {
  return PORT_NAMES[port];
}
