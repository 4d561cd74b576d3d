/** The one place that listens: starts the API on HOST:PORT. */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import { api, apiServerOptions, type ApiOptions } from './app.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses HOST:PORT, [IPv6]:PORT or :PORT; undefined if malformed. */
export function parseListen(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export interface RunningServer {
  app: FastifyInstance;
  /** base URL, e.g. http://127.0.0.1:9797 */
  url: string;
  close(): Promise<void>;
}

export async function startServer(listen: ListenAddress, opts: ApiOptions, logger?: FastifyBaseLogger): Promise<RunningServer> {
  // Request logs only at warn and above: the agent's log is for the agent, not for every scrape.
  const app = Fastify(apiServerOptions({ loggerInstance: logger?.child({ component: 'http' }, { level: 'warn' }) }));
  await app.register(api, opts);
  await app.listen({ host: listen.host, port: listen.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return { app, url: `http://${host}:${port}`, close: () => app.close() };
}
