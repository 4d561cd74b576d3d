/** A small client of the flowscope HTTP API for the CLI commands. */
import { RuntimeFailure, UsageError } from './usage.js';

export interface ClientOptions {
  server: string;
  token?: string;
}

export const DEFAULT_SERVER = 'http://127.0.0.1:9797';

export function clientOptions(values: { server?: string; token?: string }, env: NodeJS.ProcessEnv): ClientOptions {
  const server = values.server ?? env.FLOWSCOPE_SERVER ?? DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UsageError(`--server: "${server}" is not a URL; use e.g. http://127.0.0.1:9797`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server: "${server}" must be an http:// or https:// URL`);
  return { server: server.replace(/\/+$/, ''), token: values.token ?? (env.FLOWSCOPE_TOKEN || undefined) };
}

export class ApiClient {
  constructor(private readonly options: ClientOptions) {}

  url(path: string, query: Record<string, string | number | undefined> = {}): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return `${this.options.server}${path}${qs ? `?${qs}` : ''}`;
  }

  private headers(accept: string): Record<string, string> {
    const h: Record<string, string> = { accept };
    if (this.options.token) h.authorization = `Bearer ${this.options.token}`;
    return h;
  }

  /** GETs a URL; maps failures to UsageError (400) or RuntimeFailure (the rest). */
  async fetch(path: string, query: Record<string, string | number | undefined> = {}, accept = 'application/json', signal?: AbortSignal): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.url(path, query), { headers: this.headers(accept), signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new RuntimeFailure(`cannot reach flowscope at ${this.options.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    if (response.ok) return response;
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = (await response.json()) as { message?: string };
      if (body.message) message = body.message;
    } catch {
      // not JSON: keep the status line
    }
    if (response.status === 400) throw new UsageError(message);
    throw new RuntimeFailure(`${this.options.server}: ${message}`);
  }

  async json<T>(path: string, query: Record<string, string | number | undefined> = {}, signal?: AbortSignal): Promise<T> {
    const response = await this.fetch(path, query, 'application/json', signal);
    return (await response.json()) as T;
  }

  /** Follows an SSE route, calling onEvent with each `data:` payload parsed as JSON. */
  async follow(path: string, query: Record<string, string | number | undefined>, onEvent: (data: unknown) => void, signal?: AbortSignal): Promise<void> {
    const response = await this.fetch(path, query, 'text/event-stream', signal);
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = event
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trimStart())
            .join('\n');
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch (err) {
      if ((err as Error).name === 'AbortError') return;
      throw new RuntimeFailure(`stream from ${this.options.server} broke: ${(err as Error).message}`);
    }
  }
}
