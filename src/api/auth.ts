/**
 * Optional bearer-token auth. When a token is configured, every route needs
 * `Authorization: Bearer TOKEN` except those marked `config: { public: true }`
 * (/healthz, /readyz, the OpenAPI document and the dashboard's static files).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function installBearerAuth(app: FastifyInstance, token: string | undefined): void {
  if (!token) return;
  // Compare digests: equal length, so timingSafeEqual leaks nothing about the token's length either.
  const expected = digest(token);
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config as { public?: boolean } | undefined;
    if (config?.public) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (match && timingSafeEqual(digest(match[1].trim()), expected)) return;
    reply.header('www-authenticate', 'Bearer realm="flowscope"');
    return reply.code(401).send({ error: 'unauthorized', message: 'this agent requires a token: send "Authorization: Bearer TOKEN" (flowscope CLI: --token or FLOWSCOPE_TOKEN)' });
  });
}
