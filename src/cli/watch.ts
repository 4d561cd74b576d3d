/**
 * Redraws a command's output every interval until stopped (flowscope
 * interfaces --watch). On a terminal each frame replaces the previous one in
 * place (cursor home, each line cleared to its end, the rest of the screen
 * cleared) with the cursor hidden, and the cursor comes back however the
 * loop ends; elsewhere (a pipe, a file) each frame is printed after the last.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const CSI = '\x1b[';
export const ANSI = {
  hideCursor: `${CSI}?25l`,
  showCursor: `${CSI}?25h`,
  home: `${CSI}H`,
  clearLine: `${CSI}K`,
  clearToEnd: `${CSI}J`,
} as const;

export interface WatchOptions {
  intervalMs: number;
  /** redraw in place with ANSI sequences */
  tty: boolean;
  /** the frame's text (no trailing newline); a failure after the first frame is shown instead of ending the loop */
  render: (signal: AbortSignal) => Promise<string>;
  write: (text: string) => void;
  /** a failed refresh when not on a terminal (one line) */
  warn: (line: string) => void;
  signal: AbortSignal;
}

const isAbort = (err: unknown) => (err as Error)?.name === 'AbortError';

/** Runs until `signal` aborts; rejects only when the first frame fails. */
export async function watch({ intervalMs, tty, render, write, warn, signal }: WatchOptions): Promise<void> {
  let first = true;
  try {
    while (!signal.aborted) {
      let frame: string;
      try {
        frame = await render(signal);
      } catch (err) {
        if (isAbort(err) || signal.aborted) return;
        if (first) throw err;
        const line = `flowscope: ${(err as Error).message.split('\n')[0]}`;
        if (!tty) {
          warn(line);
          frame = '';
        } else frame = line;
      }
      if (tty) {
        if (first) write(ANSI.hideCursor);
        write(`${ANSI.home}${frame.split('\n').join(`${ANSI.clearLine}\n`)}${ANSI.clearLine}\n${ANSI.clearToEnd}`);
      } else if (frame) write(`${frame}\n`);
      first = false;
      try {
        await sleep(intervalMs, undefined, { signal });
      } catch (err) {
        if (isAbort(err)) return;
        throw err;
      }
    }
  } finally {
    if (tty && !first) write(ANSI.showCursor);
  }
}
