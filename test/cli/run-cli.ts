/** Runs the flowscope CLI as a user does: a separate process (tsx on the sources, so never a stale build). */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';

export const ROOT = join(import.meta.dirname, '..', '..');
export const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
/** The command line that starts the CLI, for wrappers such as script(1). */
export const CLI_COMMAND = [process.execPath, '--import', 'tsx', MAIN];

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const cleanEnv = (env: Record<string, string>) => ({ ...process.env, FLOWSCOPE_TOKEN: '', FLOWSCOPE_SERVER: '', ...env });

export function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: cleanEnv(env), timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Starts the CLI and leaves it running: the caller reads its output and ends it. */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Resolves with the exit code (or the signal's name) and everything printed. */
export function finished(child: ChildProcess): Promise<{ code: number | string; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code: code ?? signal ?? -1, stdout, stderr })));
}

/** Listens on an ephemeral loopback port; returns the base URL. */
export async function listen(app: FastifyInstance): Promise<string> {
  app.server.unref();
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}
