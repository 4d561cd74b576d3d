/**
 * Bad URLs, wrong passwords and an unreachable Redis: a one-line error and
 * exit 2 for the user's mistakes, a degraded status (never a crash) for a
 * Redis that is not there yet.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRedisUrl, redactUrl } from '../../src/redis/url.js';
import { destroyRedis, freePort, startRedis, type RedisServer } from './redis-server.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');

function cli(args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: { ...process.env, FLOWSCOPE_REDIS_URL: '', FLOWSCOPE_REDIS: '' }, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Starts a long-running command and waits for its API at `port`. */
async function startDaemon(args: string[], port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args, '--log-format', 'json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      /* not yet */
    }
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('no API');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function json(url: string): Promise<{ status: number; body: Record<string, any> }> {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

const children: ChildProcess[] = [];
let secured: RedisServer;
beforeAll(async () => {
  secured = await startRedis({ password: 's3cret' });
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await destroyRedis(secured);
});

describe('Redis URLs', () => {
  it('parses single servers, TLS, credentials and clusters', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380/2')).toMatchObject({ cluster: false, tls: false, endpoints: [{ host: '127.0.0.1', port: 6380 }], db: 2 });
    expect(parseRedisUrl('redis://h')).toMatchObject({ endpoints: [{ host: 'h', port: 6379 }], db: 0 });
    expect(parseRedisUrl('rediss://app:p%40ss@h:6390')).toMatchObject({ tls: true, username: 'app', password: 'p@ss', redacted: 'rediss://app:***@h:6390' });
    expect(parseRedisUrl('redis://:pw@h:1')).toMatchObject({ username: undefined, password: 'pw' });
    expect(parseRedisUrl('redis://pw@h:1')).toMatchObject({ username: undefined, password: 'pw' });
    expect(parseRedisUrl('redis://[::1]:7000')).toMatchObject({ endpoints: [{ host: '::1', port: 7000 }] });
    expect(parseRedisUrl('redis+cluster://a:7000,b:7001,10.0.0.3:7002')).toMatchObject({ cluster: true, endpoints: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }, { host: '10.0.0.3', port: 7002 }] });
    expect(parseRedisUrl('rediss://h:1?tls-insecure=1&tls-servername=x')).toMatchObject({ tlsInsecure: true, tlsServername: 'x' });
  });

  it.each([
    ['http://h:1', /not a Redis URL/],
    ['redis://', /no host/],
    ['redis://h:99999', /out of range/],
    ['redis://h:1/db', /must be a number/],
    ['redis://a:1,b:2', /for a cluster use redis\+cluster/],
    ['redis+cluster://a,b:2', /needs a port/],
    ['redis://h:1?colour=red', /unknown URL parameter "colour"/],
    ['redis://h:1?tls-insecure=1', /need a rediss/],
  ])('refuses %s', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
  });

  it('never shows a password', () => {
    expect(redactUrl('redis://u:hunter2@h:1 and rediss://:x@y:2')).toBe('redis://u:***@h:1 and rediss://:***@y:2');
    expect(() => parseRedisUrl('http://u:hunter2@h:1')).toThrow(/^(?!.*hunter2)/);
  });
});

describe('flowscope run / relay with a bad Redis', () => {
  it.each([
    [['run', '--source', 'synthetic', '--redis', 'redis://u:hunter2@h:99999']],
    [['run', '--source', 'synthetic', '--redis', 'mysql://h']],
    [['relay', '--redis', 'redis://h:1/x']],
    [['relay']],
    [['relay', '--redis', 'redis://h:1', '--group', 'has space']],
  ])('%j exits 2 with one line', async (args) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^flowscope: (run|relay): /);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('a wrong password exits 2 with one line, for the agent and the relay', async () => {
    for (const args of [
      ['run', '--source', 'synthetic', '--listen', '127.0.0.1:0', '--redis', `redis://:wrong@127.0.0.1:${secured.port}`],
      ['relay', '--listen', '127.0.0.1:0', '--redis', `redis://:wrong@127.0.0.1:${secured.port}`],
      ['relay', '--listen', '127.0.0.1:0', '--redis', `redis://127.0.0.1:${secured.port}`],
    ]) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/authentication failed|NOAUTH|WRONGPASS/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toContain('wrong@');
    }
  });

  it('an unreachable Redis at start: the agent runs degraded, then delivers when Redis comes', async () => {
    const redisPort = await freePort();
    const apiPort = await freePort();
    const agent = await startDaemon(['run', '--source', 'synthetic', '--synthetic-flows', '4', '--listen', `127.0.0.1:${apiPort}`, '--node', 'late', '--redis', `redis://127.0.0.1:${redisPort}`], apiPort);
    children.push(agent);
    let late: RedisServer | undefined;
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const degraded = (await json(`http://127.0.0.1:${apiPort}/api/v1/status`)).body;
      const sink = degraded.sinks.find((s: { name: string }) => s.name === 'redis');
      expect(sink).toMatchObject({ connected: false, dropped: 0 });
      expect(sink.pending).toBeGreaterThan(0);
      expect(sink.lastError).toMatch(/ECONNREFUSED/);
      late = await startRedis({ port: redisPort });
      const deadline = Date.now() + 15_000;
      let s;
      do {
        await new Promise((r) => setTimeout(r, 200));
        s = (await json(`http://127.0.0.1:${apiPort}/api/v1/status`)).body.sinks.find((x: { name: string }) => x.name === 'redis');
      } while ((!s.connected || s.exported === 0) && Date.now() < deadline);
      expect(s).toMatchObject({ connected: true, dropped: 0 });
      expect(Number(late.cli('xlen', 'flowscope:{late}:flows'))).toBeGreaterThan(0);
    } finally {
      agent.kill('SIGKILL');
      await destroyRedis(late);
    }
  });

  it('an unreachable Redis at start: the relay serves a degraded status and is not ready', async () => {
    const apiPort = await freePort();
    const relay = await startDaemon(['relay', '--listen', `127.0.0.1:${apiPort}`, '--redis', `redis://127.0.0.1:${await freePort()}`], apiPort);
    children.push(relay);
    try {
      const ready = await json(`http://127.0.0.1:${apiPort}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.body.reason).toMatch(/not connected/);
      const status = (await json(`http://127.0.0.1:${apiPort}/api/v1/status`)).body;
      expect(status).toMatchObject({ role: 'relay', ready: false, relay: { connected: false, nodes: [] } });
      expect((await fetch(`http://127.0.0.1:${apiPort}/api/v1/flows`)).status).toBe(200);
    } finally {
      relay.kill('SIGKILL');
    }
  });
});
