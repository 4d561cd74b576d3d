/**
 * The dashboard in headless chromium against a fixture API (test/web/fixture-server.ts):
 * what the page shows, filters, the live list, pause, themes, keyboard, token,
 * relay view, and the page weight / time to first data. No kernel needed; the
 * same checks against the real agent are in dashboard.e2e.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, type Browser, launch, measureColdLoads, median, screenshot } from './browser.js';
import { FixtureApi } from './fixture-server.js';
import { exact, formatBytes, formatCount, formatPercent } from '../../src/web/client/format.js';

const root = resolve(import.meta.dirname, '../..');
let assets: string;

beforeAll(() => {
  // a build of its own, so the test does not depend on `npm run build` having run
  assets = mkdtempSync(join(tmpdir(), 'flowscope-web-assets-'));
  execFileSync(process.execPath, [join(root, 'src/web/build.mjs'), '--outdir', assets, '--quiet'], { stdio: 'inherit' });
});
afterAll(() => rmSync(assets, { recursive: true, force: true }));

async function rowCount(page: Page): Promise<number> {
  return page.locator('#flow-table tbody tr').count();
}

async function columnTexts(page: Page, col: number): Promise<string[]> {
  return page.locator(`#flow-table tbody tr td:nth-child(${col})`).allTextContents();
}

/** Waits until the page has drawn its first data (interfaces, status, backlog). */
async function loaded(page: Page): Promise<void> {
  await page.waitForFunction(() => document.documentElement.dataset.loaded === 'true', null, { timeout: 15_000 });
  await page.locator('#ifaces tbody tr:not(.empty)').first().waitFor({ timeout: 15_000 });
  await page.locator('#top tbody .keybtn').first().waitFor({ timeout: 15_000 });
}

describe('dashboard against the fixture API (single node)', () => {
  let api: FixtureApi;
  let b: Browser;

  beforeAll(async () => {
    api = new FixtureApi({ assetsRoot: assets, staticRates: true, attribution: true });
    await api.start();
    b = await launch({ colorScheme: 'light' });
  });
  afterAll(async () => {
    await b?.close();
    await api?.stop();
  });

  it('loads without console errors and shows the API values', async () => {
    const { page } = b;
    const res = await page.goto(`${api.url}/`);
    expect(res?.status()).toBe(200);
    await loaded(page);

    // interfaces table: the exact values of the API, in human units with exact titles
    const ifaces = (await (await fetch(`${api.url}/api/v1/interfaces`)).json()) as { iface: string; rx: { packets: number; bytes: number } }[];
    const eth0 = ifaces.find((i) => i.iface === 'eth0')!;
    const row = page.locator('#ifaces tbody tr', { hasText: 'eth0' });
    const rxPackets = row.locator('td').nth(5);
    const rxBytes = row.locator('td').nth(6);
    expect(await rxPackets.textContent()).toBe(formatCount(eth0.rx.packets));
    expect(await rxPackets.getAttribute('title')).toBe(exact(eth0.rx.packets, 'packets'));
    expect(await rxBytes.textContent()).toBe(formatBytes(eth0.rx.bytes));
    expect(await rxBytes.getAttribute('title')).toBe(exact(eth0.rx.bytes, 'bytes'));

    // charts drew canvases with one series per interface and direction
    await page.waitForFunction(() => document.querySelectorAll('#chart-bytes .u-legend .u-series').length === 5);
    expect(await page.locator('#chart-pkts canvas').count()).toBeGreaterThan(0);
    // the charts plot the API's rates: bps (bits) shown as bytes per second, pps as is
    const api0 = ifaces.find((i) => i.iface === 'eth0') as unknown as { rx: { bps: number; pps: number } };
    const lastOf = (chart: string, label: string) =>
      page.evaluate(([c, l]) => {
        const u = (document.querySelector(c) as unknown as { uplot: { series: { label?: string }[]; data: (number | null)[][] } }).uplot;
        const i = u.series.findIndex((x) => x.label === l);
        return u.data[i].at(-1);
      }, [chart, label] as const);
    expect(await lastOf('#chart-bytes', 'eth0 rx')).toBe(api0.rx.bps / 8);
    expect(await lastOf('#chart-pkts', 'eth0 rx')).toBe(api0.rx.pps);

    // status: node, version, tracked flows
    await expect.poll(() => page.locator('#crumbs').textContent()).toContain('fixture-node');
    expect(await page.locator('#status-body').textContent()).toContain('1,234');
    expect(await page.locator('#tile-fill [data-v]').textContent()).toBe(formatPercent(1234 / 65536));

    // top talkers equal the API's answer
    const top = (await (await fetch(`${api.url}/api/v1/top?by=src&metric=bytes&window=1m&k=10`)).json()) as {
      entries: { key: { src: string }; share: number }[];
    };
    const keys = await page.locator('#top tbody .keybtn').allTextContents();
    expect(keys).toEqual(top.entries.map((e) => e.key.src));
    expect(await page.locator('#top tbody tr').first().locator('.share-pct').textContent()).toBe(formatPercent(top.entries[0].share));

    // the backlog is listed, newest first
    expect(await rowCount(page)).toBe(60);
    await screenshot(page, 'dashboard-fixture-light');
    expect(b.problems).toEqual([]);
  });

  it('starts the rate charts with the agent\'s last five minutes, then adds live points after them', async () => {
    const { page } = b;
    await page.goto(`${api.url}/`);
    await loaded(page);
    await page.locator('#chart-bytes[data-history="loaded"]').waitFor({ timeout: 15_000 });
    const read = () =>
      page.evaluate(() => {
        type Plot = { series: { label?: string }[]; data: (number | null)[][] };
        const el = document.querySelector<HTMLElement>('#chart-bytes')!;
        const u = (el as unknown as { uplot: Plot }).uplot;
        const p = (document.querySelector('#chart-pkts') as unknown as { uplot: Plot }).uplot;
        const col = (plot: Plot, label: string) => plot.data[plot.series.findIndex((x) => x.label === label)];
        return { xs: u.data[0] as number[], bytes: col(u, 'eth0 rx'), pkts: col(p, 'eth0 rx'), points: Number(el.dataset.historyPoints) };
      });
    const first = await read();
    // a fresh page shows the agent's history: five minutes of 1 s steps (the step in progress is not one)
    expect(first.points).toBeGreaterThanOrEqual(298);
    expect(first.xs.at(-1)! - first.xs[0]).toBeGreaterThanOrEqual(297);
    // the fixture's eth0 receives 1200 packets and 1.2 MB every second: each step's count / step
    for (let i = 0; i < first.points; i++) {
      expect(first.bytes[i]).toBe(1.2e6);
      expect(first.pkts[i]).toBe(1200);
    }
    // live points follow, newer than the history
    await expect.poll(async () => (await read()).xs.at(-1)!, { timeout: 10_000 }).toBeGreaterThan(first.xs.at(-1)! + 1);
    const later = await read();
    for (let i = 1; i < later.xs.length; i++) expect(later.xs[i]).toBeGreaterThan(later.xs[i - 1]);
    expect(later.xs.length).toBeLessThanOrEqual(300);
    expect(b.problems).toEqual([]);
  });

  it('a filter narrows the flow list; an invalid one is refused in place', async () => {
    const { page } = b;
    await page.fill('#filters input[name="ip"]', '192.168.0.0/16');
    await page.press('#filters input[name="ip"]', 'Enter');
    await expect.poll(() => rowCount(page)).toBe(20);
    const srcs = await columnTexts(page, 6);
    const dsts = await columnTexts(page, 7);
    srcs.forEach((s, i) => expect(`${s} ${dsts[i]}`).toContain('192.168.7.20'));
    expect(new URL(page.url()).hash).toBe('#ip=192.168.0.0%2F16');

    await page.fill('#filters input[name="ip"]', '10.0.0.0/40');
    const before = api.authSeen.length;
    await page.click('#filters button[type="submit"]');
    await expect.poll(() => page.locator('#filters input[name="ip"]').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#err-ip').textContent()).toMatch(/CIDR/);
    expect(api.authSeen.slice(before).filter((r) => r.path.startsWith('/api/v1/flows'))).toEqual([]);
    expect(await rowCount(page)).toBe(20); // the list kept the last valid filter

    await page.click('#clear-btn');
    await expect.poll(() => rowCount(page)).toBe(60);
    expect(b.problems).toEqual([]);
  });

  it('shows who sent each flow, and filters by workload and cgroup', async () => {
    const { page } = b;
    await expect.poll(() => rowCount(page)).toBe(60);
    expect(await page.locator('#flow-table thead .col-wl').isVisible()).toBe(true);
    const nginx = page.locator('#flow-table tbody td.col-wl', { hasText: 'nginx.service' }).first();
    expect(await nginx.getAttribute('title')).toBe('cgroup /system.slice/nginx.service');
    const redis = page.locator('#flow-table tbody td.col-wl', { hasText: 'cache/redis-0' }).first();
    expect(await redis.getAttribute('title')).toMatch(/^cgroup \/kubepods\.slice\/.*\npod cache\/redis-0\ncontainer c0ffee/);
    // forwarded traffic (the ICMP flow) has no local socket: an empty cell
    const icmp = page.locator('#flow-table tbody tr', { hasText: 'icmp' }).first().locator('td.col-wl');
    expect(await icmp.textContent()).toBe('');
    expect(await icmp.getAttribute('title')).toBe('no local socket');

    await page.fill('#filters input[name="workload"]', 'nginx.service');
    await page.press('#filters input[name="workload"]', 'Enter');
    await expect.poll(() => rowCount(page)).toBe(20);
    expect(new Set(await page.locator('#flow-table tbody td.col-wl').allTextContents())).toEqual(new Set(['nginx.service']));
    expect(new URL(page.url()).hash).toBe('#workload=nginx.service');

    await page.fill('#filters input[name="workload"]', '');
    await page.fill('#filters input[name="cgroup"]', '/kubepods.slice');
    await page.press('#filters input[name="cgroup"]', 'Enter');
    await expect.poll(() => rowCount(page)).toBe(10);
    expect(new Set(await page.locator('#flow-table tbody td.col-wl').allTextContents())).toEqual(new Set(['cache/redis-0']));
    // a prefix is whole components: /kubepods matches nothing, and a list with no attributed record hides the column
    await page.fill('#filters input[name="cgroup"]', '/kubepods');
    await page.press('#filters input[name="cgroup"]', 'Enter');
    await expect.poll(() => rowCount(page)).toBe(0);
    expect(await page.locator('#flow-table thead .col-wl').isVisible()).toBe(false);

    // not a path: refused in place, nothing sent
    await page.fill('#filters input[name="cgroup"]', 'kubepods.slice');
    const before = api.authSeen.length;
    await page.click('#filters button[type="submit"]');
    await expect.poll(() => page.locator('#filters input[name="cgroup"]').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#err-cgroup').textContent()).toMatch(/cgroup path from the cgroup v2 root/);
    expect(api.authSeen.slice(before).filter((r) => r.path.startsWith('/api/v1/flows'))).toEqual([]);

    await page.click('#clear-btn');
    await expect.poll(() => rowCount(page)).toBe(60);
    expect(await page.locator('#flow-table thead .col-wl').isVisible()).toBe(true);
    expect(b.problems).toEqual([]);
  });

  it('clicking a top-talkers entry filters the flow list by it', async () => {
    const { page } = b;
    await page.selectOption('#top-by', 'dport');
    await expect.poll(() => page.locator('#top-keycol').textContent()).toBe('Destination port');
    const btn = page.locator('#top tbody .keybtn', { hasText: /^53/ });
    await btn.waitFor();
    await btn.click();
    await expect.poll(() => page.locator('#filters input[name="dport"]').inputValue()).toBe('53');
    await expect.poll(() => rowCount(page)).toBe(10);
    const dsts = await columnTexts(page, 7);
    for (const d of dsts) expect(d).toMatch(/:53$/);
    expect(new URL(page.url()).hash).toBe('#dport=53&by=dport');
    await page.click('#clear-btn');
    await page.selectOption('#top-by', 'src');
  });

  it('the live list grows over SSE, stays bounded, and pauses', async () => {
    const { page } = b;
    await expect.poll(() => rowCount(page)).toBe(60);
    for (let i = 0; i < 5; i++) api.emit();
    await expect.poll(() => rowCount(page)).toBe(65);

    // pause: new records are held, not drawn
    await page.click('#pause-btn');
    expect(await page.locator('#pause-btn').getAttribute('aria-pressed')).toBe('true');
    for (let i = 0; i < 4; i++) api.emit();
    await expect.poll(() => page.locator('#conn-text').textContent()).toBe('paused · 4 new');
    expect(await rowCount(page)).toBe(65);
    await page.click('#pause-btn');
    await expect.poll(() => rowCount(page)).toBe(69);

    // bounded: at most the chosen number of rows
    await page.selectOption('#flows-max', '100');
    await expect.poll(() => rowCount(page)).toBe(69);
    for (let i = 0; i < 60; i++) api.emit();
    await expect.poll(() => rowCount(page)).toBe(100);
    expect(await page.locator('#flows-count').textContent()).toMatch(/^100 shown/);
    expect(b.problems).toEqual([]);
  });

  it('is keyboard-usable with a visible focus', async () => {
    const { page } = b;
    await page.locator('body').click({ position: { x: 5, y: 300 } });
    await page.keyboard.press('/');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('name'))).toBe('ip');
    await page.keyboard.type('10.0.0.5');
    await page.keyboard.press('Enter');
    await expect.poll(() => rowCount(page)).toBeGreaterThan(0);
    for (const s of await columnTexts(page, 6)) expect(s).toMatch(/^10\.0\.0\.[15]/);
    await page.keyboard.press('Escape');
    await page.keyboard.press('p');
    expect(await page.locator('#pause-btn').getAttribute('aria-pressed')).toBe('true');
    await page.keyboard.press('p');
    expect(await page.locator('#pause-btn').getAttribute('aria-pressed')).toBe('false');

    // Tab through the page: every stop is a real control and shows an outline
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await page.click('.brand'); // start the Tab sequence at the top of the page
    const stops: string[] = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      const info = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement;
        const cs = getComputedStyle(el);
        return { tag: el.tagName, id: el.id || el.getAttribute('name') || el.className, outline: cs.outlineStyle, width: cs.outlineWidth };
      });
      if (info.tag === 'BODY') break; // past the last control
      stops.push(`${info.tag}#${info.id}`);
      // chromium also stops on scrollable regions (the flow list), which is what keyboard users need
      const control = ['A', 'BUTTON', 'INPUT', 'SELECT'].includes(info.tag) || (info.tag === 'DIV' && info.id.includes('table-wrap'));
      expect(control, JSON.stringify(info)).toBe(true);
      expect(info.outline, JSON.stringify(info)).not.toBe('none');
    }
    expect(stops.length).toBeGreaterThan(20);
    expect(stops).toContain('BUTTON#theme-btn');
    expect(stops).toContain('BUTTON#pause-btn');
    expect(stops).toContain('SELECT#top-by');
    expect(stops.some((s) => s.startsWith('BUTTON#keybtn'))).toBe(true);

    // a top-talkers entry works with Enter
    const first = page.locator('#top tbody .keybtn').first();
    await first.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#filters input[name="src"]').inputValue()).not.toBe('');
    await page.click('#clear-btn');
    expect(b.problems).toEqual([]);
  });

  it('switches between light and dark and remembers the choice', async () => {
    const { page } = b;
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(await bg()).toBe('rgb(244, 245, 247)');
    await page.click('#theme-btn');
    await expect.poll(bg).toBe('rgb(17, 18, 23)');
    expect(await page.evaluate(() => localStorage.getItem('flowscope.theme'))).toBe('dark');
    await page.waitForTimeout(1200); // a chart redraw in the new colours
    await screenshot(page, 'dashboard-fixture-dark-toggled');
    await page.reload();
    await loaded(page);
    expect(await bg()).toBe('rgb(17, 18, 23)');
    await page.keyboard.press('t');
    await expect.poll(bg).toBe('rgb(244, 245, 247)');
    expect(b.problems).toEqual([]);
  });

  it('follows prefers-color-scheme: dark when nothing was chosen', async () => {
    const d = await launch({ colorScheme: 'dark' });
    try {
      await d.page.goto(`${api.url}/`);
      await loaded(d.page);
      expect(await d.page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(17, 18, 23)');
      await d.page.waitForTimeout(1500);
      await screenshot(d.page, 'dashboard-fixture-dark');
      expect(d.problems).toEqual([]);
    } finally {
      await d.close();
    }
  });

  it('reads well on a laptop and on a wall screen', async () => {
    for (const [name, viewport] of [
      ['laptop', { width: 1280, height: 800 }],
      ['wall', { width: 2560, height: 1440 }],
    ] as const) {
      const w = await launch({ viewport, colorScheme: 'dark' });
      try {
        await w.page.goto(`${api.url}/`);
        await loaded(w.page);
        await w.page.waitForTimeout(1500);
        // nothing wider than the viewport
        expect(await w.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(viewport.width);
        await screenshot(w.page, `dashboard-fixture-${name}`);
        expect(w.problems).toEqual([]);
      } finally {
        await w.close();
      }
    }
  });

  it('reports page weight and time to first data (5 cold loads)', async () => {
    const runs = await measureColdLoads(`${api.url}/`, 5);
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
    expect(summary.firstDataMsMax).toBeLessThan(5000);
    expect(summary.pageWeightBytes).toBeGreaterThan(10_000);
    expect(summary.pageWeightBytes).toBeLessThan(100_000); // brotli: about 40 kB
    expect(summary.requests).toBe(3); // the page, one script, one stylesheet
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, 'dashboard-perf-fixture.json'), JSON.stringify({ summary, runs }, null, 2) + '\n');
  }, 150_000); // five browser launches: about 50 s on an idle 2-core machine, more when it is shared
});

describe('dashboard against a relay-like API (several nodes)', () => {
  let api: FixtureApi;
  let b: Browser;
  beforeAll(async () => {
    api = new FixtureApi({ assetsRoot: assets, nodes: ['node-a', 'node-b', 'node-c'], overflowPackets: 42, emitEveryMs: 200 });
    await api.start();
    b = await launch({ colorScheme: 'dark' });
  });
  afterAll(async () => {
    await b?.close();
    await api?.stop();
  });

  it('shows every node, groups by node, and filters by node', async () => {
    const { page } = b;
    await page.goto(`${api.url}/`);
    await loaded(page);
    await expect.poll(() => page.locator('#crumbs').textContent()).toContain('3/3 nodes up');
    const status = await page.locator('#status-body').textContent();
    for (const n of api.nodes) expect(status).toContain(n);
    expect(await page.locator('#ifaces tbody tr').count()).toBe(6);
    expect(await page.locator('#ifaces thead .col-node').isVisible()).toBe(true);
    // degraded accounting is announced once for all nodes
    const alerts = await page.locator('#alerts .alert').allTextContents();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toContain('node-a, node-b, node-c');
    expect(alerts[0]).toContain('126 packets');

    expect(await page.locator('#top-by option[value="node"]').evaluate((o) => (o as HTMLOptionElement).hidden)).toBe(false);
    await page.selectOption('#top-by', 'node');
    await expect.poll(() => page.locator('#top tbody .keybtn').allTextContents()).toEqual(expect.arrayContaining(api.nodes));

    await page.locator('#top tbody .keybtn', { hasText: 'node-b' }).click();
    await expect.poll(() => page.locator('#filters select[name="node"]').inputValue()).toBe('node-b');
    await expect.poll(async () => new Set(await columnTexts(page, 2)).size).toBe(1);
    expect(new Set(await columnTexts(page, 2))).toEqual(new Set(['node-b']));
    // no record says who sent it (no --attribution): no Workload column
    expect(await page.locator('#flow-table thead .col-wl').isVisible()).toBe(false);
    // a relay keeps no interface history: the page does not ask for it, the charts are live-only
    expect(api.authSeen.filter((r) => r.path === '/api/v1/interfaces/history')).toEqual([]);
    expect(await page.locator('#chart-bytes').getAttribute('data-history')).toBeNull();
    await page.waitForTimeout(1500);
    await screenshot(page, 'dashboard-fixture-relay');
    expect(b.problems).toEqual([]);
  });
});

describe('top talkers over time', () => {
  let api: FixtureApi;
  let b: Browser;
  beforeAll(async () => {
    api = new FixtureApi({ assetsRoot: assets });
    await api.start();
    b = await launch();
  });
  afterAll(async () => {
    await b?.close();
    await api?.stop();
  });

  it('draws the window\'s top talkers over time: stacked rates per bucket, the rest as other', async () => {
    const { page } = b;
    // traffic in three buckets of the window
    const now = Date.now();
    for (const [ago, n] of [[35_000, 6], [22_000, 12], [12_000, 3]] as const) {
      const end = new Date(now - ago).toISOString();
      for (let i = 0; i < n; i++) api.emit({ end, start: new Date(now - ago - 1000).toISOString() });
    }
    await page.goto(`${api.url}/`);
    await loaded(page);
    await page.locator('#chart-top[data-buckets]').waitFor({ timeout: 15_000 });
    const shown = await page.evaluate(() => {
      const u = (document.querySelector('#chart-top') as unknown as { uplot: { series: { label?: string }[]; data: number[][] } }).uplot;
      // the plot holds running sums (stacked): each series' own values are the differences
      const own = u.data.slice(1).map((col, i) => col.map((v, j) => v - (i === 0 ? 0 : u.data[i][j])));
      return { labels: u.series.slice(1).map((x) => x.label), xs: u.data[0], own };
    });
    const answer = (await (await fetch(`${api.url}/api/v1/top/series?by=src&metric=bytes&window=1m&k=5`)).json()) as {
      bucketMs: number; times: string[]; entries: { key: { src: string }; values: number[] }[]; other: number[];
    };
    expect(shown.labels).toEqual([...answer.entries.map((e) => e.key.src), 'other']);
    // every whole bucket the chart and the API both hold: its count / 10 s, at the bucket's end
    let compared = 0;
    answer.times.slice(0, -1).forEach((iso, j) => {
      const k = shown.xs.indexOf((Date.parse(iso) + answer.bucketMs) / 1000);
      if (k < 0 || k === shown.xs.length - 1) return;
      answer.entries.forEach((e, i) => expect(shown.own[i][k]).toBeCloseTo(e.values[j] / 10, 6));
      expect(shown.own.at(-1)![k]).toBeCloseTo(answer.other[j] / 10, 6);
      compared++;
    });
    expect(compared).toBeGreaterThanOrEqual(3);
    expect(shown.own.flat().some((v) => v > 0)).toBe(true);
    // the open bucket is drawn up to the last poll, not after now
    expect(shown.xs.at(-1)!).toBeLessThanOrEqual(Date.now() / 1000);
    expect(await page.locator('#top-chart-note').isHidden()).toBe(true);
    expect(b.problems).toEqual([]);
  });
});

describe('dashboard against an agent without /api/v1/top/series', () => {
  let api: FixtureApi;
  let b: Browser;
  beforeAll(async () => {
    api = new FixtureApi({ assetsRoot: assets, topSeries: false });
    await api.start();
    b = await launch();
  });
  afterAll(async () => {
    await b?.close();
    await api?.stop();
  });

  it('hides the chart of top talkers over time, says why, and stops asking', async () => {
    const { page } = b;
    await page.goto(`${api.url}/`);
    await loaded(page);
    await expect.poll(() => page.locator('#top-chart-note').textContent()).toMatch(/not shown: this server has no \/api\/v1\/top\/series/);
    expect(await page.locator('#chart-top').isHidden()).toBe(true);
    const asked = () => api.authSeen.filter((r) => r.path === '/api/v1/top/series').length;
    const n = asked();
    await page.waitForTimeout(7000); // two more polls of the table
    expect(asked()).toBe(n);
    expect(await page.locator('#top tbody .keybtn').count()).toBeGreaterThan(0);
    // the one 404 in the console is the route's answer
    expect(b.problems.filter((p) => !p.includes('404'))).toEqual([]);
    expect(b.problems.length).toBeLessThanOrEqual(1);
  });
});

describe('dashboard with an API that requires a bearer token', () => {
  let api: FixtureApi;
  let b: Browser;
  beforeAll(async () => {
    api = new FixtureApi({ assetsRoot: assets, token: 's3cret' });
    await api.start();
    b = await launch();
  });
  afterAll(async () => {
    await b?.close();
    await api?.stop();
  });

  it('asks for the token on 401, then sends it on every request and on the stream', async () => {
    const { page } = b;
    await page.goto(`${api.url}/`);
    await page.locator('#token-dlg[open]').waitFor();
    expect(await page.locator('#alerts').textContent()).toContain('bearer token');
    await screenshot(page, 'dashboard-fixture-token');
    await page.fill('#token-input', 's3cret');
    await page.click('#token-dlg button[value="save"]');
    await loaded(page);
    expect(await page.locator('#token-btn').textContent()).toBe('Token ✓');
    expect(await page.locator('#alerts .alert').count()).toBe(0);
    const n = await rowCount(page);
    api.emit();
    await expect.poll(() => rowCount(page)).toBe(n + 1);
    const streamed = api.authSeen.filter((r) => r.path === '/api/v1/flows/stream');
    expect(streamed.at(-1)?.authorization).toBe('Bearer s3cret');
    expect(await page.evaluate(() => localStorage.getItem('flowscope.token'))).toBe('s3cret');
    // the unauthorized answers before the token was given are the only console errors
    expect(b.problems.filter((p) => !p.includes('401'))).toEqual([]);
  });
});
