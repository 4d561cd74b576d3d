/// <reference lib="dom" />
/**
 * Periodic API reads: one poller per route, never two runs of one at once,
 * paused while the tab is hidden, restarted at once by kick() (a changed query).
 */
import { UNAUTHORIZED, handleError, setApiError } from './alerts.js';
import { state } from './state.js';

export interface Poller {
  name: string;
  every: number;
  run: (signal: AbortSignal) => Promise<void>;
  timer?: ReturnType<typeof setTimeout>;
  ctl?: AbortController;
  busy?: boolean;
  /** bumped by kick(): a superseded run neither reschedules nor counts */
  gen: number;
}

export const pollers: Poller[] = [];

export function schedule(p: Poller, delay: number): void {
  clearTimeout(p.timer);
  p.timer = setTimeout(() => void tick(p), delay);
}

async function tick(p: Poller): Promise<void> {
  if (document.hidden) return; // resumed on visibilitychange
  if (p.busy) return;
  const gen = p.gen;
  p.busy = true;
  p.ctl = new AbortController();
  try {
    await p.run(p.ctl.signal);
    if (gen === p.gen && state.apiError && !state.apiError.startsWith(UNAUTHORIZED)) setApiError('');
  } catch (e) {
    if (gen === p.gen) handleError(e);
  } finally {
    if (gen === p.gen) {
      p.busy = false;
      schedule(p, p.every);
    }
  }
}

export function addPoller(name: string, every: number, run: Poller['run']): Poller {
  const p: Poller = { name, every, run, gen: 0 };
  pollers.push(p);
  return p;
}

export function kick(p: Poller): void {
  p.gen++;
  p.ctl?.abort();
  p.busy = false;
  schedule(p, 0);
}

/** Starts every poller now, and again whenever the tab becomes visible. */
export function startPollers(): void {
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) for (const p of pollers) schedule(p, 0);
  });
  for (const p of pollers) schedule(p, 0);
}
