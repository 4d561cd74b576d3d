/**
 * Headless Debian chromium driven by playwright-core, for the dashboard tests.
 * Every launch gets a fresh user-data-dir (removed on close) and the page's
 * console errors, uncaught exceptions and failed requests are collected so a
 * test can assert there were none.
 */
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import Fastify from 'fastify';
import { request } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import dashboard from '../../src/web/plugin.js';

export const CHROMIUM = process.env.FLOWSCOPE_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** console errors, page errors and failed requests seen so far */
  problems: string[];
  close(): Promise<void>;
}

export interface LaunchOptions {
  colorScheme?: 'light' | 'dark';
  viewport?: { width: number; height: number };
}

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export async function launch(opts: LaunchOptions = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; it is listed in scripts/apt-packages.txt)`);
  }
  const userDataDir = mkdtempSync(join(tmpdir(), 'flowscope-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      colorScheme: opts.colorScheme ?? 'light',
      viewport: opts.viewport ?? { width: 1440, height: 1000 },
      timeout: 30_000,
    });
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  const watch = (p: Page) => {
    p.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    p.on('requestfailed', (r) => {
      const why = r.failure()?.errorText ?? '';
      // streams and polls cut short by a navigation or a filter change are expected
      if (why.includes('ERR_ABORTED')) return;
      problems.push(`requestfailed: ${r.url()} ${why}`);
    });
  };
  watch(page);
  context.on('page', watch);
  let closed = false;
  return {
    context,
    page,
    problems,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await context.close();
      } finally {
        rmSync(userDataDir, { recursive: true, force: true });
      }
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, name.endsWith('.png') ? name : `${name}.png`);
  // from the top, so that the sticky header is where it belongs in a full-page image
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForTimeout(100);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export interface LoadMetrics {
  /** bytes on the wire for the HTML document (headers + body, compressed) */
  documentBytes: number;
  /** bytes on the wire for the page's assets under /ui/ */
  assetBytes: number;
  /** the same assets, decompressed */
  assetDecodedBytes: number;
  pageWeightBytes: number;
  requests: number;
  domContentLoadedMs: number;
  /** from navigation start to the first API data drawn (performance mark flowscope:first-data) */
  firstDataMs: number;
}

/**
 * Loads `url` in `runs` fresh browser profiles (cold cache) and returns each
 * run's metrics, from the Performance API of the page itself.
 */
export async function measureColdLoads(url: string, runs: number): Promise<LoadMetrics[]> {
  const out: LoadMetrics[] = [];
  for (let i = 0; i < runs; i++) {
    const b = await launch();
    try {
      await b.page.goto(url);
      await b.page.waitForFunction(() => performance.getEntriesByName('flowscope:first-data').length > 0, null, { timeout: 15_000 });
      const m = await b.page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        const res = (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).filter((r) => r.name.includes('/ui/'));
        const first = performance.getEntriesByName('flowscope:first-data')[0];
        return {
          documentBytes: nav.transferSize,
          assetBytes: res.reduce((a, r) => a + r.transferSize, 0),
          assetDecodedBytes: res.reduce((a, r) => a + r.decodedBodySize, 0),
          requests: 1 + res.length,
          domContentLoadedMs: Math.round(nav.domContentLoadedEventEnd),
          firstDataMs: Math.round(first.startTime),
        };
      });
      if (b.problems.length) throw new Error(`page problems: ${b.problems.join('; ')}`);
      out.push({ ...m, pageWeightBytes: m.documentBytes + m.assetBytes });
    } finally {
      await b.close();
    }
  }
  return out;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : Math.round((s[m - 1] + s[m]) / 2);
}

/**
 * The dashboard's page and assets (from `root`, default dist/web/public) with
 * /api/* forwarded to the API at `target`, streams included: a page for an API
 * app that serves other assets (or none).
 */
export async function dashboardProxy(target: string, root?: string): Promise<{ url: string; close(): Promise<void> }> {
  const t = new URL(target);
  const app = Fastify({ forceCloseConnections: true });
  await app.register(dashboard, root ? { root } : {});
  app.all('/api/*', (req, reply) => {
    reply.hijack();
    const up = request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (res) => {
      reply.raw.writeHead(res.statusCode ?? 502, res.headers);
      res.pipe(reply.raw);
    });
    up.on('error', () => reply.raw.destroy());
    req.raw.on('close', () => up.destroy());
    up.end();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  return { url: `http://127.0.0.1:${a && typeof a === 'object' ? a.port : 0}`, close: () => app.close() };
}
