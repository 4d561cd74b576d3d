/**
 * The shipped Redis access control (deploy/kubernetes/base/redis-configmap.yaml)
 * with a real redis-server: start.sh builds the ACL file from the passwords,
 * the default user is off, flowscope-agent may write only a node's flowscope
 * keys and flowscope-relay may only read them (and keep its consumer groups);
 * and the real agent and relay, logged in as those users, do their whole job
 * (so the ACLs name every command they use).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { K8S, find, render, requireTool, type Obj } from './deploy-helpers.js';

const REDIS = '/usr/bin/redis-server';
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const AGENT_PW = 'agent-0123456789abcdef';
const RELAY_PW = 'relay-fedcba9876543210';
const NODE = 'acl-node';
const hasRedis = requireTool(REDIS, 'redis-server');

describe.runIf(hasRedis)('Redis ACL users of deploy/kubernetes', () => {
  let tmp: string;
  let port: number;
  let redis: ChildProcess | undefined;
  let redisLog = '';
  const clients: Redis[] = [];
  let agent: AgentProcess | undefined;
  let relay: ChildProcess | undefined;

  const login = async (username?: string, password?: string): Promise<Redis> => {
    const c = new Redis({ port, host: '127.0.0.1', username, password, lazyConnect: true, maxRetriesPerRequest: 0, enableReadyCheck: false, retryStrategy: () => null });
    clients.push(c);
    c.on('error', () => undefined);
    await c.connect().catch(() => undefined);
    return c;
  };
  /** the error of a command, or 'ok' */
  const attempt = async (c: Redis, ...cmd: (string | number)[]): Promise<string> => {
    try {
      await c.call(String(cmd[0]), ...cmd.slice(1).map(String));
      return 'ok';
    } catch (err) {
      return (err as Error).message.split(' ')[0];
    }
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'flowscope-redis-acl-'));
    const etc = join(tmp, 'etc');
    const run = join(tmp, 'run');
    for (const d of [etc, run, join(tmp, 'data')]) mkdirSync(d);
    const cm = find(render(join(K8S, 'base')), 'ConfigMap', 'flowscope-redis') as Obj;
    for (const [name, text] of Object.entries(cm.data as Record<string, string>)) {
      writeFileSync(join(etc, name), name === 'redis.conf' ? text.replace(/^dir \/data$/m, `dir ${join(tmp, 'data')}`) : text);
    }
    port = await freePort();
    redis = spawn('sh', [join(etc, 'start.sh'), '--port', String(port), '--bind', '127.0.0.1', '--appendonly', 'no', '--save', ''], {
      env: { PATH: process.env.PATH, AGENT_PASSWORD: AGENT_PW, RELAY_PASSWORD: RELAY_PW, REDIS_CONF_DIR: etc, REDIS_RUN_DIR: run },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    redis.stdout!.on('data', (d: Buffer) => (redisLog += d.toString()));
    redis.stderr!.on('data', (d: Buffer) => (redisLog += d.toString()));
    await eventually(() => redisLog.includes('Ready to accept connections'), `redis started (${redisLog.slice(-300)})`, 15_000);
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await agent?.stop();
    if (relay && relay.exitCode === null) relay.kill('SIGKILL');
    if (redis && redis.exitCode === null) redis.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('start.sh writes the ACL file with hashed passwords only, readable by Redis alone', () => {
    const file = join(tmp, 'run', 'users.acl');
    const text = readFileSync(file, 'utf8');
    expect(statSync(file).mode & 0o077).toBe(0);
    expect(text).not.toContain(AGENT_PW);
    expect(text).not.toContain(RELAY_PW);
    expect(text).toMatch(/user flowscope-agent on #[0-9a-f]{64} /);
    expect(text).toMatch(/user flowscope-relay on #[0-9a-f]{64} /);
  });

  it('the default user and wrong passwords get nothing', async () => {
    expect(await attempt(await login(), 'PING')).toBe('NOAUTH');
    expect(await attempt(await login(), 'XADD', `flowscope:{${NODE}}:flows`, '*', 'a', '1')).toBe('NOAUTH');
    const wrong = await login('flowscope-agent', RELAY_PW);
    expect(await attempt(wrong, 'PING')).not.toBe('ok');
    const asDefault = await login('default', '');
    expect(await attempt(asDefault, 'PING')).not.toBe('ok');
  });

  it('flowscope-agent writes a node\'s flowscope keys, and nothing else', async () => {
    const a = await login('flowscope-agent', AGENT_PW);
    const flows = `flowscope:{${NODE}}:flows`;
    for (const cmd of [
      ['PING'], ['INFO', 'server'], ['XADD', flows, 'MAXLEN', '~', '1000', '*', 'packets', '1'], ['XINFO', 'STREAM', flows], ['XRANGE', flows, '-', '+', 'COUNT', '1'],
      ['SADD', 'flowscope:nodes', NODE], ['HSET', `flowscope:{${NODE}}:interfaces`, 'eth0', '{}'], ['SET', `flowscope:{${NODE}}:writer`, 'w1'], ['GETSET', `flowscope:{${NODE}}:writer`, 'w2'],
    ]) expect(await attempt(a, ...cmd), cmd.join(' ')).toBe('ok');
    for (const cmd of [
      ['SET', 'other', '1'], ['GET', 'other'], ['SET', 'flowscope:nodes-not', '1'], ['XADD', 'flowscope:elsewhere', '*', 'a', '1'], ['DEL', flows], ['XTRIM', flows, 'MAXLEN', '0'],
      ['SREM', 'flowscope:nodes', NODE], ['SMEMBERS', 'flowscope:nodes'], ['XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', flows, '>'], ['HGETALL', `flowscope:{other}:interfaces`],
      ['KEYS', '*'], ['FLUSHALL'], ['CONFIG', 'SET', 'dir', '/tmp'], ['EVAL', 'return 1', '0'], ['REPLICAOF', '127.0.0.1', '1'], ['CLIENT', 'KILL', 'TYPE', 'normal'], ['ACL', 'LIST'], ['SHUTDOWN'], ['MODULE', 'LIST'],
    ]) expect(await attempt(a, ...cmd), cmd.join(' ')).toBe('NOPERM');
  });

  it('flowscope-relay reads the flowscope keys and keeps its consumer groups, and writes no data', async () => {
    const r = await login('flowscope-relay', RELAY_PW);
    const flows = `flowscope:{${NODE}}:flows`;
    for (const cmd of [
      ['PING'], ['SMEMBERS', 'flowscope:nodes'], ['HGETALL', `flowscope:{${NODE}}:interfaces`], ['XRANGE', flows, '-', '+'], ['XREVRANGE', flows, '+', '-', 'COUNT', '1'],
      ['XGROUP', 'CREATE', flows, 'acl-test', '0', 'MKSTREAM'], ['XINFO', 'GROUPS', flows], ['XREADGROUP', 'GROUP', 'acl-test', 'c1', 'COUNT', '10', 'STREAMS', flows, '>'],
      ['XAUTOCLAIM', flows, 'acl-test', 'c1', '0', '0-0'], ['XPENDING', flows, 'acl-test'], ['XACK', flows, 'acl-test', '0-1'],
      // relay --partitions: its lease and URL in the membership keys
      ['ZADD', 'flowscope:{relays}:live', '1', 'r1'], ['ZRANGEBYSCORE', 'flowscope:{relays}:live', '0', '+inf'], ['ZREMRANGEBYSCORE', 'flowscope:{relays}:live', '0', '0'],
      ['HSET', 'flowscope:{relays}:urls', 'r1', 'http://x'], ['HDEL', 'flowscope:{relays}:urls', 'r1'], ['ZREM', 'flowscope:{relays}:live', 'r1'],
    ]) expect(await attempt(r, ...cmd), cmd.join(' ')).toBe('ok');
    for (const cmd of [
      ['XADD', flows, '*', 'a', '1'], ['DEL', flows], ['XTRIM', flows, 'MAXLEN', '0'], ['XDEL', flows, '0-1'], ['SET', `flowscope:{${NODE}}:writer`, 'x'], ['HSET', `flowscope:{${NODE}}:interfaces`, 'a', 'b'],
      ['SADD', 'flowscope:nodes', 'fake'], ['XGROUP', 'DESTROY', flows, 'acl-test'], ['GET', 'other'], ['FLUSHALL'], ['CONFIG', 'GET', '*'], ['KEYS', '*'], ['EVAL', 'return 1', '0'],
    ]) expect(await attempt(r, ...cmd), cmd.join(' ')).toBe('NOPERM');
    await attempt(r, 'XGROUP', 'CREATECONSUMER', flows, 'acl-test', 'c2');
  });

  it('the real agent and relay, logged in as these users, deliver and serve the flows without a permission error', async () => {
    agent = await startAgent(['--source', 'synthetic', '--synthetic-flows', '20', '--poll-interval', '200ms', '--redis-export-interval', '200ms', '--node', NODE, '--redis', `redis://flowscope-agent:${AGENT_PW}@127.0.0.1:${port}`]);
    const relayPort = await freePort();
    let relayOut = '';
    relay = spawn(process.execPath, ['--import', 'tsx', MAIN, 'relay', '--listen', `127.0.0.1:${relayPort}`, '--group', 'acl-relay', '--consumer', 'acl-relay', '--log-format', 'json', '--top-horizon', '1m'], {
      env: { ...process.env, FLOWSCOPE_REDIS_URL: `redis://flowscope-relay:${RELAY_PW}@127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    relay.stdout!.on('data', (d: Buffer) => (relayOut += d.toString()));
    relay.stderr!.on('data', (d: Buffer) => (relayOut += d.toString()));
    const relayUrl = `http://127.0.0.1:${relayPort}`;
    await eventually(async () => (await fetch(`${relayUrl}/readyz`)).ok, `relay ready (${relayOut.slice(-500)})`, 30_000);
    await eventually(async () => {
      const page = (await (await fetch(`${relayUrl}/api/v1/flows?node=${NODE}&limit=1`)).json()) as { total: number };
      return page.total >= 40;
    }, `relay serves the agent's flows (${relayOut.slice(-500)})`, 30_000);
    const status = await agent.get<{ sinks: { name: string; exported: number; dropped: number; lastError?: string }[] }>('/api/v1/status');
    const sink = status.sinks.find((s) => s.name === 'redis')!;
    expect(sink.exported).toBeGreaterThan(0);
    expect(sink.dropped).toBe(0);
    expect(sink.lastError ?? '').not.toMatch(/NOPERM|NOAUTH|WRONGPASS/);
    const relayStatus = (await (await fetch(`${relayUrl}/api/v1/status`)).json()) as Obj;
    expect(JSON.stringify(relayStatus)).not.toMatch(/NOPERM|NOAUTH|WRONGPASS/);
    const interfaces = (await (await fetch(`${relayUrl}/api/v1/interfaces`)).json()) as Obj[];
    expect(interfaces.length).toBeGreaterThan(0);
    for (const out of [agent.output(), relayOut]) expect(out).not.toMatch(/NOPERM|NOAUTH|WRONGPASS/);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    relay.kill('SIGTERM');
    expect(await new Promise((r) => relay!.once('exit', r))).toBe(0);
  }, 90_000);
});
