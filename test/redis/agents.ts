/**
 * Agent and relay processes for the Redis tests: the built CLI
 * (dist/cli/main.js), on free loopback ports, killed whatever happens.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { removePins, uniquePinPath } from '../helpers/pins.js';
import { join } from 'node:path';
import { freePort } from './redis-server.js';

const MAIN = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

export interface Daemon {
  child: ChildProcess;
  api: string;
  log: () => string;
  /** SIGTERM and wait (a clean stop: the agent exports its last records) */
  stop(): Promise<void>;
  kill9(): Promise<void>;
}

const all = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of all) c.kill('SIGKILL');
});

async function waitFor(api: string, path: string, child: ChildProcess, output: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(api + path)).ok) return;
    } catch {
      /* not listening yet */
    }
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output()}`);
    if (Date.now() > deadline) throw new Error(`${api}${path} not ok within ${timeoutMs} ms: ${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startDaemon(args: string[], readyPath = '/readyz'): Promise<Daemon> {
  const port = await freePort();
  // An agent pins under a directory of its own, removed when it is stopped or killed (test/helpers/pins.ts).
  const pinPath = args[0] === 'run' && !args.includes('--pin-path') ? uniquePinPath() : undefined;
  const pinArgs = pinPath ? ['--pin-path', pinPath] : [];
  const child = spawn(process.execPath, [MAIN, ...args, ...pinArgs, '--listen', `127.0.0.1:${port}`, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  all.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => (all.delete(child), r())));
  const api = `http://127.0.0.1:${port}`;
  const d: Daemon = {
    child,
    api,
    log: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      if (pinPath) removePins(pinPath);
    },
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      if (pinPath) removePins(pinPath);
    },
  };
  try {
    await waitFor(api, readyPath, child, () => out);
  } catch (err) {
    await d.kill9();
    throw err;
  }
  return d;
}

export async function getJson<T = any>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

export interface StreamEntry {
  id: string;
  f: Record<string, string>;
}

/** Parses redis-cli's raw output of XRANGE / XREADGROUP (one line per element). */
export function parseRawEntries(text: string): StreamEntry[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const out: StreamEntry[] = [];
  const isId = (s: string) => /^\d+-\d+$/.test(s);
  let i = 0;
  while (i < lines.length) {
    if (!isId(lines[i])) {
      i++; // XREADGROUP prints the stream key first
      continue;
    }
    const e: StreamEntry = { id: lines[i++], f: {} };
    // field names are never IDs; values come right after their field
    while (i + 1 < lines.length && !isId(lines[i])) {
      e.f[lines[i]] = lines[i + 1];
      i += 2;
    }
    out.push(e);
  }
  return out;
}

/** Reads a whole stream with redis-cli, as an outside consumer would. */
export function readStream(cliArgs: string[], key: string): StreamEntry[] {
  const text = execFileSync('redis-cli', [...cliArgs, '--raw', 'XRANGE', key, '-', '+'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return parseRawEntries(text);
}

export function sumWhere(entries: StreamEntry[], want: Record<string, string>): { packets: number; bytes: number; entries: number } {
  let packets = 0;
  let bytes = 0;
  let n = 0;
  for (const e of entries) {
    if (!Object.entries(want).every(([k, v]) => e.f[k] === v)) continue;
    packets += Number(e.f.packets);
    bytes += Number(e.f.bytes);
    n++;
  }
  return { packets, bytes, entries: n };
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
