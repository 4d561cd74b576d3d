/// <reference lib="dom" />
/**
 * The dashboard's only way to the data: the public HTTP API of the contract,
 * addressed relative to the page (so the dashboard also works behind a proxy
 * that mounts it under a path). An optional bearer token is sent on every
 * request, including the flow stream, which is read with fetch() rather than
 * EventSource for that reason.
 */
import { SseParser } from './sse.js';

const TOKEN_KEY = 'flowscope.token';

export function getToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function setToken(token: string): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lives for this page only */
  }
  memToken = token;
}

let memToken: string | undefined;

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json', ...extra };
  const t = memToken ?? getToken();
  if (t) h.authorization = `Bearer ${t}`;
  return h;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  get unauthorized(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { message?: unknown; error?: unknown };
    if (typeof body.message === 'string') msg = `${res.status}: ${body.message}`;
    else if (typeof body.error === 'string') msg = `${res.status}: ${body.error}`;
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, msg);
}

/** GET a JSON route; path is relative to the page, e.g. "api/v1/status". */
export async function getJson(path: string, signal?: AbortSignal, timeoutMs = 10_000): Promise<unknown> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new DOMException('request timed out', 'TimeoutError')), timeoutMs);
  const onAbort = () => ctl.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await fetch(path, { headers: headers(), signal: ctl.signal, cache: 'no-store' });
    if (!res.ok) throw await errorFrom(res);
    return await res.json();
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

export type StreamState = 'connecting' | 'open' | 'retrying' | 'closed';

export interface StreamHandlers {
  onData(data: unknown): void;
  onState(state: StreamState, detail?: string): void;
  /** an error the stream will not retry on its own (bad filter, unauthorized) */
  onFatal(err: ApiError): void;
}

/**
 * Follows an SSE route with fetch-streaming; reconnects with backoff (1 s
 * doubling to 15 s, or the server's "retry:") until stop() is called.
 */
export class EventStream {
  private ctl: AbortController | undefined;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** path: called at every (re)connection, so that it can resume from what was seen */
  constructor(
    private readonly path: () => string,
    private readonly h: StreamHandlers,
  ) {}

  start(): void {
    this.stopped = false;
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ctl?.abort();
    this.h.onState('closed');
  }

  private async run(): Promise<void> {
    let delay = 1000;
    while (!this.stopped) {
      this.ctl = new AbortController();
      const parser = new SseParser();
      this.h.onState('connecting');
      try {
        const res = await fetch(this.path(), {
          headers: headers({ accept: 'text/event-stream' }),
          signal: this.ctl.signal,
          cache: 'no-store',
        });
        if (!res.ok) {
          const err = await errorFrom(res);
          if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
            this.stopped = true;
            this.h.onFatal(err);
            this.h.onState('closed', err.message);
            return;
          }
          throw err;
        }
        if (!res.body) throw new Error('streaming responses are not supported by this browser');
        this.h.onState('open');
        delay = 1000;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const ev of parser.push(value)) {
            if (this.stopped) return;
            if (ev.event !== 'message' && ev.event !== 'flow') continue;
            let data: unknown;
            try {
              data = JSON.parse(ev.data);
            } catch {
              continue;
            }
            this.h.onData(data);
          }
        }
        if (parser.retry !== undefined) delay = Math.max(250, parser.retry);
      } catch (e) {
        if (this.stopped) return;
        this.h.onState('retrying', e instanceof Error ? e.message : String(e));
      }
      if (this.stopped) return;
      this.h.onState('retrying', `reconnecting in ${Math.round(delay / 1000)} s`);
      await new Promise<void>((r) => {
        this.timer = setTimeout(r, delay);
      });
      delay = Math.min(15_000, delay * 2);
    }
  }
}
