/** The one place that listens: starts the API on HOST:PORT. */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import { api, apiServerOptions, type ApiOptions } from './app.js';
import { loopbackHostNames } from './hosts.js';
import { isLoopbackHost, type ListenAddress } from '../lib/listen.js';

/**
 * Time limits of the HTTP server. Server-Sent Event streams are exempt from
 * the connection timeout (they are idle by nature; heartbeats and the stall
 * check of the stream route apply instead).
 */
export interface ServerTimeouts {
  /** receiving one whole request, headers included (Node.js requestTimeout) */
  requestMs: number;
  /** receiving the headers of a request (Node.js headersTimeout) */
  headersMs: number;
  /** a connection with no traffic either way is closed (fastify connectionTimeout) */
  idleMs: number;
  /** an idle keep-alive connection is closed */
  keepAliveMs: number;
  /** on close: connections still busy this long after the streams ended are destroyed */
  closeGraceMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<ServerTimeouts> = Object.freeze({
  requestMs: 10_000,
  headersMs: 10_000,
  idleMs: 30_000,
  keepAliveMs: 5_000,
  closeGraceMs: 1_000,
});

export interface RunningServer {
  app: FastifyInstance;
  /** base URL, e.g. http://127.0.0.1:9797 */
  url: string;
  /** Ends every SSE stream, closes idle connections, destroys the rest after a short grace, and stops listening. */
  close(): Promise<void>;
}

export async function startServer(
  listen: ListenAddress,
  opts: ApiOptions,
  logger?: FastifyBaseLogger,
  timeouts: Partial<ServerTimeouts> = {},
): Promise<RunningServer> {
  const t = { ...DEFAULT_TIMEOUTS, ...timeouts };
  // Request logs only at warn and above: the agent's log is for the agent, not for every scrape.
  const app = Fastify({
    ...apiServerOptions({
      loggerInstance: logger?.child({ component: 'http' }, { level: 'warn' }),
      requestTimeout: t.requestMs,
      connectionTimeout: t.idleMs,
      keepAliveTimeout: t.keepAliveMs,
    }),
    // Node.js checks request and header timeouts on this period (30 s by default).
    http: { headersTimeout: Math.min(t.headersMs, t.requestMs), connectionsCheckingInterval: Math.min(1000, t.headersMs) },
  });
  // On loopback, answer only to loopback names (DNS rebinding); elsewhere the token protects.
  const allowedHosts = opts.allowedHosts ?? (isLoopbackHost(listen.host) ? loopbackHostNames(listen.host) : undefined);
  await app.register(api, { ...opts, allowedHosts });
  await app.listen({ host: listen.host, port: listen.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    // preClose (app.ts) ends the streams, fastify then closes idle connections; what is still busy
    // after the grace (a slow client mid-request) is cut, so a stop never waits on a client.
    const force = setTimeout(() => app.server.closeAllConnections(), t.closeGraceMs);
    force.unref();
    return (closing ??= app.close().finally(() => clearTimeout(force)));
  };
  return { app, url: `http://${host}:${port}`, close };
}
