/**
 * The Host-header allow-list. A page on any web site can make the browser
 * send requests to 127.0.0.1:9797; it cannot read the answers (same-origin
 * policy) unless its own name resolves to 127.0.0.1 — DNS rebinding: the
 * attacker's name first points at the attacker's server, then at the
 * loopback address, and the browser then sends `Host: attacker.example`.
 * While the API listens on loopback it therefore answers only requests that
 * name it as a loopback host (localhost, 127.0.0.1, [::1] or the listen
 * address, with any port), and refuses others with 421 before anything else
 * runs. See docs/security.md.
 */
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { isLoopbackHost } from '../lib/listen.js';

/** The Host names a loopback listener answers to (lower case, IPv6 in brackets, no port). */
export function loopbackHostNames(listenHost: string): string[] {
  const listen = listenHost.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const names = new Set(['localhost', '127.0.0.1', '[::1]']);
  names.add(isIP(listen) === 6 ? `[${listen}]` : listen);
  return [...names];
}

/** The name part of a Host header value, lower case, without port or trailing dot; undefined if malformed. */
export function hostName(header: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  return m ? m[1].toLowerCase().replace(/\.$/, '') : undefined;
}

export function installHostCheck(app: FastifyInstance, allowed: readonly string[]): void {
  const names = new Set(allowed.map((n) => n.toLowerCase()));
  const list = [...names].join(', ');
  app.addHook('onRequest', async (request, reply) => {
    const header = request.headers.host;
    // No browser omits Host (HTTP/1.1 requires it; Node.js answers 400 without it): only HTTP/1.0 tools do.
    if (header === undefined) return;
    const name = hostName(header);
    if (name !== undefined && names.has(name)) return;
    return reply.code(421).send({
      error: 'misdirected_request',
      message: `Host "${header.slice(0, 100)}" is not served here: this server listens on loopback and answers only to ${list} (any port), to stop DNS rebinding; use http://127.0.0.1:PORT/`,
    });
  });
}
