/**
 * Real redis-server processes for the tests, on free loopback ports, in a
 * temporary directory, always killed (stopAll in afterAll, and on exit).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  child: ChildProcess;
  /** redis-cli against this server, returning stdout */
  cli(...args: string[]): string;
  /** stops the process (SIGTERM: with appendonly on, the data survives a restart) */
  stop(): Promise<void>;
  /** starts it again on the same port and directory */
  restart(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

import { freePort } from '../helpers/ports.js';

export { freePort };

async function waitForPing(port: number, args: string[] = [], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (execFileSync('redis-cli', ['-p', String(port), ...args, 'ping'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('PONG')) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ServerOptions {
  password?: string;
  cluster?: boolean;
  /** extra redis-server arguments */
  extra?: string[];
  /** a port chosen by the caller (default: a free one) */
  port?: number;
}

export async function startRedis(options: ServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), `flowscope-redis-${port}-`));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'no'];
  if (options.password) args.push('--requirepass', options.password);
  if (options.cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000');
  args.push(...(options.extra ?? []));
  const auth = options.password ? ['-a', options.password, '--no-auth-warning'] : [];
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    child: undefined as unknown as ChildProcess,
    cli: (...a) => execFileSync('redis-cli', ['-p', String(port), ...auth, ...a], { encoding: 'utf8' }),
    async stop() {
      const c = server.child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
      running.delete(c);
    },
    async restart() {
      await server.stop();
      launch();
      await waitForPing(port, auth);
    },
  };
  const launch = (): void => {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    running.add(child);
    child.once('exit', () => running.delete(child));
    server.child = child;
  };
  launch();
  await waitForPing(port, auth);
  return server;
}

/** Kills a server for good and removes its directory. */
export async function destroyRedis(server: RedisServer | undefined): Promise<void> {
  if (!server) return;
  const c = server.child;
  if (c && c.exitCode === null && c.signalCode === null) {
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }
  rmSync(server.dir, { recursive: true, force: true });
}

/** Three masters on loopback joined with redis-cli --cluster create. */
export async function startCluster(): Promise<{ servers: RedisServer[]; url: string }> {
  const servers = await Promise.all([0, 1, 2].map(() => startRedis({ cluster: true })));
  execFileSync('redis-cli', ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Wait until every node agrees the cluster is ok.
  const deadline = Date.now() + 20_000;
  for (const s of servers) {
    while (!s.cli('cluster', 'info').includes('cluster_state:ok')) {
      if (Date.now() > deadline) throw new Error('cluster did not become ok');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { servers, url: `redis+cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}` };
}
