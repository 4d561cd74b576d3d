/**
 * The dashboard end to end: the real agent (node dist/cli/main.js run) attached
 * to one side of a veth pair, real UDP traffic and pings from a network
 * namespace, and headless chromium on the agent's own `/`. Checks that the
 * page loads without console errors, that its tables and charts show the
 * traffic that was sent (checked against the API), that a filter narrows the
 * flow list and that the SSE list grows while traffic runs. Screenshots and
 * the page weight / time to first data go to test-artifacts/.
 *
 * Needs root (BPF, netns) and `npm run build` (dist/cli/main.js, the native
 * addon, the BPF object, dist/web/public). Skips without root outside CI;
 * never skips under CI=true.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exact, formatBytes, formatCount } from '../../src/web/client/format.js';
import { freePort } from '../helpers/ports.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { TRAFFIC, startHostSink, stop } from '../helpers/processes.js';
import { ARTIFACTS, type Browser, dashboardProxy, launch, measureColdLoads, median, screenshot } from './browser.js';

const skip = skipKernelTests('dashboard e2e');
const root = resolve(import.meta.dirname, '../..');
const MAIN = join(root, 'dist/cli/main.js');
const UDP_PORT = 5977;
const SPORT = 40177;
const PAYLOAD = 300;


async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

interface Iface {
  iface: string;
  rx: { packets: number; bytes: number; pps: number; bps: number };
  tx: { packets: number; bytes: number; pps: number; bps: number };
}

describe.skipIf(skip)('dashboard on a real agent with real traffic', () => {
  let pair: VethPair | undefined;
  let agent: ChildProcess | undefined;
  let agentLog = '';
  let sink: ChildProcess | undefined;
  let b: Browser | undefined;
  let base = '';
  let traffic: ChildProcess | undefined;
  let proxy: { url: string; close(): Promise<void> } | undefined;

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${base}${path}`);
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };

  /** UDP datagrams from the namespace to the host side, in the background, until stopped. */
  function startTraffic(): ChildProcess {
    const p = pair!;
    // a shell loop inside the namespace: bursts of datagrams from a fixed source port, and a ping
    const script = `while :; do ${process.execPath} ${TRAFFIC} udp ${p.hostV4} ${UDP_PORT} 40 ${PAYLOAD} ${SPORT} >/dev/null || exit 1; ping -c 1 -W 1 ${p.hostV4} >/dev/null; sleep 0.2; done`;
    return spawn('ip', ['netns', 'exec', p.ns, 'sh', '-c', script], { stdio: 'ignore', detached: true });
  }

  function stopTraffic(): void {
    if (traffic?.pid && traffic.exitCode === null) {
      try {
        process.kill(-traffic.pid, 'SIGKILL'); // the whole loop: sh, node, ping
      } catch {
        /* gone */
      }
    }
    traffic = undefined;
  }

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
    if (!existsSync(join(root, 'dist/web/public/index.html'))) {
      // the dashboard's assets are part of the build; make them if this checkout has not
      execFileSync(process.execPath, [join(root, 'src/web/build.mjs'), '--quiet'], { stdio: 'inherit' });
    }
    pair = createVethPair(77);
    sink = await startHostSink('udp-sink', UDP_PORT, 120);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    agent = spawn(process.execPath, [MAIN, 'run', '--iface', pair.hostIf, '--listen', `127.0.0.1:${port}`, '--node', 'e2e-node'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.stdout?.on('data', (d: Buffer) => (agentLog += d.toString()));
    agent.stderr?.on('data', (d: Buffer) => (agentLog += d.toString()));
    await waitFor('the agent to be ready', async () => {
      if (agent!.exitCode !== null) throw new Error(`agent exited (${agent!.exitCode}): ${agentLog}`);
      const r = await fetch(`${base}/readyz`);
      return r.status === 200 ? true : undefined;
    });
    const page = await fetch(`${base}/`);
    if (page.status === 404 && process.env.FLOWSCOPE_E2E_PROXY === '1' && process.env.CI !== 'true') {
      // development only, before the app registers the plugin: serve the page
      // from a same-origin proxy in front of the agent's API
      proxy = await dashboardProxy(base);
      base = proxy.url;
    } else if (page.status !== 200 || !(page.headers.get('content-type') ?? '').startsWith('text/html')) {
      throw new Error(
        `the agent does not serve the dashboard at / (HTTP ${page.status}): register the plugin in src/api/app.ts: ` +
          `await app.register(dashboard) with import dashboard from './plugin.js'`,
      );
    }
    b = await launch({ colorScheme: 'light', viewport: { width: 1440, height: 1000 } });
  }, 90_000);

  afterAll(async () => {
    stopTraffic();
    await b?.close().catch(() => undefined);
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          agent?.kill('SIGKILL');
          r();
        }, 10_000);
        agent!.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    await proxy?.close();
    stop(sink);
    pair?.destroy();
  }, 60_000);

  it('loads from the agent with no console errors and measures time to first data', async () => {
    const { page } = b!;
    const res = await page.goto(`${base}/`);
    expect(res?.status()).toBe(200);
    await page.waitForFunction(() => document.documentElement.dataset.loaded === 'true', null, { timeout: 15_000 });
    await page.locator('#ifaces tbody tr', { hasText: pair!.hostIf }).waitFor({ timeout: 15_000 });
    expect(await page.locator('#crumbs').textContent()).toContain('e2e-node');
    // page weight and time to first data: 5 loads in fresh profiles (cold cache)
    const runs = await measureColdLoads(`${base}/`, 5);
    const summary = {
      runs: runs.length,
      pageWeightBytes: median(runs.map((r) => r.pageWeightBytes)),
      assetDecodedBytes: median(runs.map((r) => r.assetDecodedBytes)),
      requests: runs[0].requests,
      domContentLoadedMsMedian: median(runs.map((r) => r.domContentLoadedMs)),
      firstDataMsMedian: median(runs.map((r) => r.firstDataMs)),
      firstDataMsMax: Math.max(...runs.map((r) => r.firstDataMs)),
    };
    expect(summary.firstDataMsMedian).toBeGreaterThan(0);
    expect(summary.pageWeightBytes).toBeLessThan(100_000);
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, 'dashboard-perf-e2e.json'), JSON.stringify({ summary, runs }, null, 2) + '\n');
    expect(b!.problems).toEqual([]);
  });

  it('the SSE list grows while traffic runs, and the charts and tiles show it', async () => {
    const { page } = b!;
    const rows = () => page.locator('#flow-table tbody tr').count();
    const before = await rows();
    const receivedBefore = Number((await page.locator('#flows-count').textContent())?.match(/(\d+) received/)?.[1] ?? 0);
    traffic = startTraffic();
    // new records arrive over the stream (export interval: about a second)
    await expect.poll(async () => Number((await page.locator('#flows-count').textContent())?.match(/(\d+) received/)?.[1] ?? 0), { timeout: 15_000 })
      .toBeGreaterThan(receivedBefore + 2);
    await expect.poll(rows, { timeout: 15_000 }).toBeGreaterThan(before);
    // the UDP flow we send is listed, as the namespace side sent it
    await expect.poll(() => page.locator('#flow-table tbody tr', { hasText: `${pair!.peerV4}:${SPORT}` }).count(), { timeout: 15_000 })
      .toBeGreaterThan(0);
    const row = page.locator('#flow-table tbody tr', { hasText: `${pair!.peerV4}:${SPORT}` }).first();
    expect(await row.locator('td').nth(6).textContent()).toBe(`${pair!.hostV4}:${UDP_PORT}`);
    expect(await row.locator('td').nth(3).textContent()).toBe('↓ in');
    expect(await row.locator('td').nth(4).textContent()).toBe('udp');

    // the receive rate is live in the tile, the interfaces table and the chart's series
    await expect.poll(async () => (await page.locator('#tile-rx [data-v]').textContent()) !== '0 B/s', { timeout: 10_000 }).toBe(true);
    const ifRow = page.locator('#ifaces tbody tr', { hasText: pair!.hostIf });
    await expect.poll(async () => (await ifRow.locator('td').nth(4).getAttribute('title')) !== '0 packets/s', { timeout: 10_000 }).toBe(true);
    await expect.poll(() => page.locator('#chart-bytes .u-legend .u-series').count()).toBe(3);
    expect(await page.locator('#chart-pkts .u-legend').textContent()).toContain(`${pair!.hostIf} rx`);
    // the chart's rx series rises with the traffic, up to about what the API reports
    const seriesMax = (chart: string) =>
      page.evaluate(([c, l]) => {
        const u = (document.querySelector(c) as unknown as { uplot: { series: { label?: string }[]; data: (number | null)[][] } }).uplot;
        const i = u.series.findIndex((x) => x.label === l);
        return Math.max(0, ...u.data[i].map((v) => v ?? 0));
      }, [chart, `${pair!.hostIf} rx`] as const);
    await expect.poll(() => seriesMax('#chart-pkts'), { timeout: 10_000 }).toBeGreaterThan(10);
    await page.waitForTimeout(3000); // a few chart points
    const apiNow = (await api<Iface[]>('/api/v1/interfaces')).find((i) => i.iface === pair!.hostIf)!;
    expect(apiNow.rx.pps).toBeGreaterThan(0);
    expect(await seriesMax('#chart-bytes')).toBeGreaterThan(0);
    await screenshot(page, 'dashboard-e2e-live');
    expect(b!.problems).toEqual([]);
  });

  it('a filter change narrows the flow list', async () => {
    const { page } = b!;
    const unfiltered = await page.locator('#flow-table tbody tr').count();
    await page.fill('#filters input[name="port"]', String(UDP_PORT));
    await page.press('#filters input[name="port"]', 'Enter');
    await expect.poll(() => new URL(page.url()).hash).toBe(`#port=${UDP_PORT}`);
    // every row is the UDP flow; the pings and ARP are gone
    await expect.poll(async () => {
      const dst = await page.locator('#flow-table tbody tr td:nth-child(7)').allTextContents();
      return dst.length > 0 && dst.every((d) => d === `${pair!.hostV4}:${UDP_PORT}`);
    }, { timeout: 15_000 }).toBe(true);
    const protos = await page.locator('#flow-table tbody tr td:nth-child(5)').allTextContents();
    expect(new Set(protos)).toEqual(new Set(['udp']));
    // and the same filter on the API gives the same flows
    const apiFlows = await api<{ flows: { dport: number; sport: number }[] }>(`/api/v1/flows?port=${UDP_PORT}&limit=250`);
    expect(apiFlows.flows.length).toBeGreaterThan(0);
    expect(apiFlows.flows.every((f) => f.dport === UDP_PORT || f.sport === UDP_PORT)).toBe(true);
    const filtered = await page.locator('#flow-table tbody tr').count();
    expect(filtered).toBeLessThanOrEqual(Math.max(unfiltered, 250));
    // still following: the filtered list grows while traffic runs
    await expect.poll(() => page.locator('#flow-table tbody tr').count(), { timeout: 15_000 }).toBeGreaterThan(filtered);

    await page.fill('#filters input[name="port"]', '');
    await page.selectOption('#filters select[name="iface"]', pair!.hostIf);
    await page.fill('#filters input[name="proto"]', 'icmp');
    await page.press('#filters input[name="proto"]', 'Enter');
    await expect.poll(async () => {
      const p = await page.locator('#flow-table tbody tr td:nth-child(5)').allTextContents();
      return p.length > 0 && p.every((x) => x === 'icmp');
    }, { timeout: 15_000 }).toBe(true);
    await screenshot(page, 'dashboard-e2e-filtered');
    await page.click('#clear-btn');
    expect(b!.problems).toEqual([]);
  });

  it('after the traffic stops, tables equal the API exactly', async () => {
    const { page } = b!;
    stopTraffic();
    // totals since attach: wait until the counters stop moving, then compare to the page
    let settled: Iface | undefined;
    await waitFor('the interface counters to settle', async () => {
      const a = (await api<Iface[]>('/api/v1/interfaces')).find((i) => i.iface === pair!.hostIf)!;
      await new Promise((r) => setTimeout(r, 2500));
      const c = (await api<Iface[]>('/api/v1/interfaces')).find((i) => i.iface === pair!.hostIf)!;
      if (a.rx.packets === c.rx.packets && a.tx.packets === c.tx.packets && c.rx.pps === 0) {
        settled = c;
        return true;
      }
      return undefined;
    }, 40_000);
    const ifRow = page.locator('#ifaces tbody tr', { hasText: pair!.hostIf });
    await expect.poll(() => ifRow.locator('td').nth(5).getAttribute('title'), { timeout: 10_000 }).toBe(exact(settled!.rx.packets, 'packets'));
    expect(await ifRow.locator('td').nth(5).textContent()).toBe(formatCount(settled!.rx.packets));
    expect(await ifRow.locator('td').nth(6).getAttribute('title')).toBe(exact(settled!.rx.bytes, 'bytes'));
    expect(await ifRow.locator('td').nth(6).textContent()).toBe(formatBytes(settled!.rx.bytes));
    expect(await ifRow.locator('td').nth(9).getAttribute('title')).toBe(exact(settled!.tx.packets, 'packets'));
    // the traffic sent is in the totals: at least the UDP datagrams of the bursts
    expect(settled!.rx.packets).toBeGreaterThan(40);

    // top talkers by source: the namespace side leads, with the API's numbers
    type Top = { entries: { key: { src: string }; bytes: number; packets: number; share: number }[] };
    await page.selectOption('#top-window', '5m');
    const top = await waitFor('the top-talkers window to hold the traffic', async () => {
      const t = await api<Top>('/api/v1/top?by=src&metric=bytes&window=5m&k=10');
      return t.entries.some((e) => e.key.src === pair!.peerV4) ? t : undefined;
    }, 30_000);
    expect(top.entries[0].key.src).toBe(pair!.peerV4);
    await expect.poll(async () => {
      const fresh = await api<Top>('/api/v1/top?by=src&metric=bytes&window=5m&k=10');
      const keys = await page.locator('#top tbody .keybtn').allTextContents();
      const bytes = await page.locator('#top tbody tr td:nth-child(4)').evaluateAll((tds) => tds.map((td) => td.getAttribute('title')));
      return JSON.stringify({ keys, bytes }) === JSON.stringify({ keys: fresh.entries.map((e) => e.key.src), bytes: fresh.entries.map((e) => exact(e.bytes, 'bytes')) });
    }, { timeout: 20_000 }).toBe(true);

    // clicking the leader filters the flow list by it
    await page.locator('#top tbody .keybtn', { hasText: pair!.peerV4 }).first().click();
    await expect.poll(() => page.locator('#filters input[name="src"]').inputValue()).toBe(pair!.peerV4);
    await expect.poll(async () => {
      const src = await page.locator('#flow-table tbody tr td:nth-child(6)').allTextContents();
      return src.length > 0 && src.every((s) => s === pair!.peerV4 || s.startsWith(`${pair!.peerV4}:`));
    }, { timeout: 15_000 }).toBe(true);
    await page.click('#clear-btn');
    await page.waitForTimeout(1500);
    await screenshot(page, 'dashboard-e2e-light');
    expect(b!.problems).toEqual([]);
  });

  it('renders in dark mode on a wall screen without errors', async () => {
    const d = await launch({ colorScheme: 'dark', viewport: { width: 2560, height: 1440 } });
    try {
      await d.page.goto(`${base}/`);
      await d.page.waitForFunction(() => document.documentElement.dataset.loaded === 'true', null, { timeout: 15_000 });
      await d.page.waitForTimeout(3000);
      expect(await d.page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(17, 18, 23)');
      await screenshot(d.page, 'dashboard-e2e-dark-wall');
      expect(d.problems).toEqual([]);
    } finally {
      await d.close();
    }
  });
});
