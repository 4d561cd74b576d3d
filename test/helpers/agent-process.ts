/**
 * The real agent as a separate process (`flowscope run`), for tests that need
 * signals, restarts and the HTTP API. Runs the TypeScript sources through tsx,
 * so it never tests a stale build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { eventually } from './eventually.js';
import { removePins, uniquePinPath } from './pins.js';
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
  /** the agent's --pin-path (its own unless the test gave one) */
  pinPath: string;
  /** SIGKILL if still running, then removes what it left pinned */
  stop(): Promise<void>;
}

/**
 * Starts `flowscope run ARGS --listen 127.0.0.1:<free port>` and waits until
 * /readyz says ready. It pins under a directory of its own unless ARGS give
 * --pin-path (then the caller removes the pins; test/helpers/pins.ts).
 */
export async function startAgent(args: string[], opts: { ready?: boolean } = {}): Promise<AgentProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const given = args.indexOf('--pin-path');
  const pinPath = given >= 0 ? args[given + 1] : uniquePinPath();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', ...args, ...(given >= 0 ? [] : ['--pin-path', pinPath]), '--listen', `127.0.0.1:${port}`, '--log-format', 'json'], {
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
    pinPath,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      if (given < 0) removePins(pinPath);
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
