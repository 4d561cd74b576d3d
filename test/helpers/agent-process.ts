/**
 * The real agent as a separate process (`flowscope run`), for tests that need
 * signals, restarts and the HTTP API. Runs the TypeScript sources through tsx,
 * so it never tests a stale build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { eventually } from './eventually.js';
import { freePort } from './ports.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

export interface AgentProcess {
  url: string;
  child: ChildProcess;
  /** everything the agent printed so far */
  output(): string;
  get<T = unknown>(path: string): Promise<T>;
  /** resolves with the exit code */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Starts `flowscope run ARGS --listen 127.0.0.1:<free port>` and waits until /readyz says ready. */
export async function startAgent(args: string[], opts: { ready?: boolean } = {}): Promise<AgentProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', ...args, '--listen', `127.0.0.1:${port}`, '--log-format', 'json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const agent: AgentProcess = {
    url,
    child,
    output: () => out,
    async get<T>(path: string): Promise<T> {
      const res = await fetch(url + path);
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
      return (await res.json()) as T;
    },
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
  const path = opts.ready === false ? '/healthz' : '/readyz';
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`agent exited: ${out}`);
      return (await fetch(url + path)).ok;
    }, `agent ${path} (output: ${out.slice(-500)})`, 30_000);
  } catch (err) {
    await agent.stop();
    throw err;
  }
  return agent;
}
