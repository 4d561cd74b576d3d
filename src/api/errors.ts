/**
 * Error answers: every failure is `{ error, message }` JSON. Bad input (schema
 * validation, or a semantic check in a handler) is a 400 whose message says
 * what is wrong and what is allowed; only a bug gives a 500.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FilterError } from '../flow/filter.js';
import { PROTO_NAME_LIST } from '../flow/protocols.js';
import { TOP_DIMENSIONS } from '../flow/top-dimensions.js';

/** A 400 raised by a handler. */
export class BadRequestError extends Error {
  readonly statusCode = 400;
}

/** What each parameter accepts, appended to validation messages. */
const ALLOWED: Record<string, string> = {
  src: 'an IPv4/IPv6 address or CIDR, e.g. 10.0.0.1, 10.0.0.0/8, 2001:db8::/32',
  dst: 'an IPv4/IPv6 address or CIDR, e.g. 10.0.0.1, 10.0.0.0/8, 2001:db8::/32',
  ip: 'an IPv4/IPv6 address or CIDR, e.g. 10.0.0.1, 10.0.0.0/8, 2001:db8::/32',
  port: 'an integer from 0 to 65535',
  sport: 'an integer from 0 to 65535',
  dport: 'an integer from 0 to 65535',
  proto: `one of ${PROTO_NAME_LIST.join(', ')} or a protocol number 0-255`,
  iface: 'an interface name (1-15 characters, no spaces, "/" or ":")',
  direction: 'ingress or egress',
  since: 'an ISO 8601 time (2024-05-01T12:00:00Z) or a duration (30s, 5m, 1h)',
  until: 'an ISO 8601 time (2024-05-01T12:00:00Z) or a duration (30s, 5m, 1h)',
  window: 'a duration such as 30s, 5m, 1h, 1h30m',
  limit: 'an integer from 1 to 10000 (stream: 0 to 10000)',
  k: 'an integer from 1 to the most entries the agent allows (1000 by default)',
  by: `${TOP_DIMENSIONS.slice(0, -1).join(', ')} or ${TOP_DIMENSIONS[TOP_DIMENSIONS.length - 1]}`,
  metric: 'bytes or packets',
};

interface AjvIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

function describeIssue(issue: AjvIssue, allowedParams: string[]): string {
  const name = issue.instancePath.replace(/^\//, '') || 'query';
  const p = issue.params;
  switch (issue.keyword) {
    case 'additionalProperties':
      return `unknown parameter "${String(p.additionalProperty)}"; allowed parameters: ${allowedParams.join(', ') || 'none'}`;
    case 'enum':
      return `${name} must be one of ${(p.allowedValues as unknown[]).join(', ')}`;
    case 'type':
      return `${name} must be ${p.type === 'integer' ? 'an integer' : `a ${String(p.type)}`}${ALLOWED[name] ? ` (${ALLOWED[name]})` : ''}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${name} ${issue.message ?? 'is out of range'}${ALLOWED[name] ? ` (${ALLOWED[name]})` : ''}`;
    case 'pattern':
    case 'minLength':
    case 'maxLength':
    case 'format':
      return `${name} is malformed; use ${ALLOWED[name] ?? 'a valid value'}`;
    default:
      return `${name} ${issue.message ?? 'is invalid'}`;
  }
}

function allowedParamsOf(request: FastifyRequest): string[] {
  const schema = request.routeOptions.schema?.querystring as { properties?: Record<string, unknown> } | undefined;
  return Object.keys(schema?.properties ?? {});
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error.validation) {
      const issues = error.validation as unknown as AjvIssue[];
      const message = issues.map((i) => describeIssue(i, allowedParamsOf(request))).join('; ');
      return reply.code(400).send({ error: 'bad_request', message });
    }
    if (error instanceof FilterError || error instanceof BadRequestError) {
      return reply.code(400).send({ error: 'bad_request', message: error.message });
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: error.code ?? 'bad_request', message: error.message });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the agent log' });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}; the API is described at /openapi.json` });
  });
}
