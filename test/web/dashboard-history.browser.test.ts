/**
 * Issue 11: after an agent has run for a while with traffic, a fresh page load
 * shows that past in the rate charts, not empty charts.
 *
 * The agent is the real one (Agent: collector, interface accounting, the
 * interface history, the HTTP app with /api/v1/interfaces/history) on the
 * synthetic source, in this process. Its first 150 polls run on a clock that
 * starts 150 s in the past and steps one second per poll, so that two and a
 * half minutes of traffic take a second or two; then it polls on the real
 * clock, as `flowscope run` does. Nothing else is simulated: the history the
 * page draws is what the engine recorded from those polls. Headless chromium
 * then loads the dashboard and the test reads the chart's data (uPlot's).
 * Screenshot: test-artifacts/dashboard-history.png.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { createApp } from '../../src/api/app.js';
import { SyntheticFlowSource } from '../../src/datapath/synthetic-source.js';
import { type Browser, dashboardProxy, launch, screenshot } from './browser.js';

const root = resolve(import.meta.dirname, '../..');
const PAST_POLLS = 150;
/** datagrams eth0 receives in the poll of second k of the past: a ramp, so that every second can be told apart */
const packetsAt = (k: number) => 20 + (k % 30);
const BYTES_PER_PACKET = 200;

describe('dashboard history at page load (issue 11)', () => {
  let assets: string;
  let agent: Agent;
  let api: FastifyInstance;
  let page: { url: string; close(): Promise<void> };
  let b: Browser;
  let pastStart = 0;

  beforeAll(async () => {
    assets = mkdtempSync(join(tmpdir(), 'flowscope-web-assets-'));
    execFileSync(process.execPath, [join(root, 'src/web/build.mjs'), '--outdir', assets, '--quiet'], { stdio: 'inherit' });

    pastStart = Math.floor(Date.now() / 1000) * 1000 - PAST_POLLS * 1000;
    let past: number | undefined = pastStart;
    const clock = () => past ?? Date.now();
    const source = new SyntheticFlowSource({ clock, ifindexes: { eth0: 2, eth1: 3 } });
    agent = new Agent(source, { node: 'history-node', version: '0.0.0-test', storeSize: 10_000, clock });
    await agent.attach('eth0', 'tc');
    await agent.attach('eth1', 'tc');
    for (let k = 1; k <= PAST_POLLS; k++) {
      past += 1000;
      source.push([{ iface: 'eth0', direction: 'ingress', src: `10.0.0.${1 + (k % 7)}`, dst: '10.0.0.100', proto: 17, sport: 40000, dport: 53, packets: packetsAt(k), bytes: packetsAt(k) * BYTES_PER_PACKET }]);
      await agent.collector.pollOnce();
    }
    // from now on the real clock and the agent's own poll loop, with steady traffic
    past = undefined;
    source.generate({ flows: 20, iface: 'eth0', packetsPerDrain: 5, bytesPerPacket: BYTES_PER_PACKET });
    agent.start();

    api = await createApp({ services: agent.services(), version: '0.0.0-test' });
    await api.listen({ host: '127.0.0.1', port: 0 });
    const address = api.server.address();
    page = await dashboardProxy(`http://127.0.0.1:${address && typeof address === 'object' ? address.port : 0}`, assets);
    b = await launch({ colorScheme: 'light' });
  }, 60_000);

  afterAll(async () => {
    await b?.close();
    await page?.close();
    await api?.close();
    await agent?.close();
    if (assets) rmSync(assets, { recursive: true, force: true });
  });

  it('a fresh page shows the last two and a half minutes in the rate charts, each second as the agent counted it', async () => {
    await b.page.goto(`${page.url}/`);
    await b.page.locator('#chart-bytes[data-history="loaded"]').waitFor({ timeout: 15_000 });
    const read = () =>
      b.page.evaluate(() => {
        type Plot = { series: { label?: string }[]; data: (number | null)[][] };
        const el = document.querySelector<HTMLElement>('#chart-pkts')!;
        const u = (el as unknown as { uplot: Plot }).uplot;
        const bytes = (document.querySelector('#chart-bytes') as unknown as { uplot: Plot }).uplot;
        const col = (p: Plot, label: string) => p.data[p.series.findIndex((x) => x.label === label)];
        return {
          xs: u.data[0] as number[],
          pps: col(u, 'eth0 rx'),
          bytesPerSecond: col(bytes, 'eth0 rx'),
          eth1: col(u, 'eth1 rx'),
          historyPoints: Number(el.dataset.historyPoints),
        };
      });
    const shown = await read();
    // the steps of the past polls but the first (it holds everything since attach): 149 seconds
    expect(shown.historyPoints).toBeGreaterThanOrEqual(PAST_POLLS - 1);
    const history = shown.xs.slice(0, shown.historyPoints);
    expect(history.at(-1)! - history[0]).toBeGreaterThanOrEqual(120);
    // poll k is at +k s; its step [k, k + 1) s is drawn at its end. Poll 1's step is left out: the first ends at +3 s
    expect(history[0]).toBe(pastStart / 1000 + 3);
    for (let i = 0; i < history.length; i++) {
      const k = history[i] - 1 - pastStart / 1000; // the poll at the start of the step that ends at xs[i]
      if (k >= PAST_POLLS) break; // the last past second also holds the first live poll, which came within it
      expect(shown.pps[i], `second ${k}`).toBe(packetsAt(k));
      expect(shown.bytesPerSecond[i], `second ${k}`).toBe(packetsAt(k) * BYTES_PER_PACKET);
      expect(shown.eth1[i]).toBe(0); // attached, silent
    }
    // then the live points, after the history
    await expect.poll(async () => (await read()).xs.length, { timeout: 15_000 }).toBeGreaterThan(shown.xs.length + 2);
    const later = await read();
    for (let i = 1; i < later.xs.length; i++) expect(later.xs[i]).toBeGreaterThan(later.xs[i - 1]);
    expect(later.pps.at(-1)).toBeGreaterThan(0);
    // the top talkers over time come from the same past (the agent's 10 s buckets of the last minute)
    await expect.poll(async () => Number(await b.page.locator('#chart-top').getAttribute('data-buckets')), { timeout: 15_000 }).toBeGreaterThanOrEqual(6);
    await b.page.waitForTimeout(500);
    await screenshot(b.page, 'dashboard-history');
    expect(b.problems).toEqual([]);
  });
});
