/** Child processes for traffic sinks, killed whatever happens. */
import { spawn, type ChildProcess } from 'node:child_process';

export const TRAFFIC = new URL('./traffic.mjs', import.meta.url).pathname;

/** Waits until the child prints `marker` on stdout. */
export function waitForOutput(child: ChildProcess, marker: string, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no "${marker}" within ${timeoutMs} ms; output: ${out}`)), timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(marker)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before "${marker}"; output: ${out}`));
    });
  });
}

export async function startHostSink(kind: 'udp-sink' | 'tcp-sink', port: number, seconds = 30): Promise<ChildProcess> {
  const child = spawn(process.execPath, [TRAFFIC, kind, String(port), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForOutput(child, 'ready');
  return child;
}

export function stop(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null) child.kill('SIGKILL');
}
