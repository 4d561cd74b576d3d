/** Starting the built agent and relay (dist/cli/main.js) as deployments run them, for the deploy tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, sleep } from './deploy-helpers.js';

export const MAIN = join(ROOT, 'dist', 'cli', 'main.js');

export interface Proc {
  child: ChildProcess;
  output(): string;
  /** resolves with the exit code (null when killed by a signal) */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after timeoutMs; the exit code, or 'killed' */
  stop(timeoutMs?: number): Promise<number | null | 'killed'>;
}

/** Runs `[prefix...] node dist/cli/main.js args...` (prefix: e.g. setpriv with its options). */
export function startFlowscope(args: string[], prefix: string[] = [], env: NodeJS.ProcessEnv = {}): Proc {
  const argv = [...prefix, process.execPath, MAIN, ...args];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // FLOWSCOPE_PIN_PATH: the tests' own bpffs directory (vitest.config.ts), never the production one.
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', FLOWSCOPE_PIN_PATH: process.env.FLOWSCOPE_PIN_PATH ?? '/sys/fs/bpf/flowscope-test', ...env },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async stop(timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const r = await Promise.race([exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
      if (r === 'timeout') {
        child.kill('SIGKILL');
        await exited;
        return 'killed';
      }
      return r;
    },
  };
}

/** setpriv arguments that give a process exactly `caps` (kernel names without CAP_, lower case), as `uid`. */
export function setprivWith(opts: { uid: number; caps: string[]; ambient: boolean; noNewPrivs: boolean }): string[] {
  const list = (caps: string[]) => ['-all', ...caps.map((c) => `+${c}`)].join(',');
  const args = ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.uid}`, '--clear-groups', `--bounding-set=${list(opts.caps)}`];
  if (opts.ambient) args.push(`--inh-caps=${list(opts.caps)}`, `--ambient-caps=${list(opts.caps)}`);
  else args.push('--inh-caps=-all');
  if (opts.noNewPrivs) args.push('--no-new-privs');
  return args;
}

/** "CAP_NET_ADMIN" / "NET_ADMIN" -> "net_admin" (setpriv's spelling). */
export const setprivCap = (name: string): string => name.replace(/^CAP_/, '').toLowerCase();
