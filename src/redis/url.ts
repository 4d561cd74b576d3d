/**
 * Redis URLs as flowscope takes them (--redis, FLOWSCOPE_REDIS_URL):
 *
 *   redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]          one server
 *   rediss://...                                        the same over TLS
 *   redis+cluster://[USER[:PASSWORD]@]H1:P1,H2:P2,...   Redis Cluster seed nodes
 *   rediss+cluster://...                                Redis Cluster over TLS
 *
 * Query parameters (all optional): `tls-insecure=1` (do not verify the
 * server's certificate), `tls-ca=PATH` (PEM file of the CA to trust),
 * `tls-servername=NAME` (SNI / name to verify).
 *
 * Parsing never throws: a malformed URL is a RedisUrlError whose message is
 * one line that says what is allowed, and never echoes the password.
 */

export interface RedisEndpoint {
  host: string;
  port: number;
}

export interface RedisTarget {
  cluster: boolean;
  tls: boolean;
  /** one endpoint for a single server; the seed nodes for a cluster */
  endpoints: RedisEndpoint[];
  username?: string;
  password?: string;
  db: number;
  tlsInsecure: boolean;
  tlsCaFile?: string;
  tlsServername?: string;
  /** the URL with the password replaced by *** (for logs and status) */
  redacted: string;
}

export class RedisUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUrlError';
  }
}

const SCHEMES: Record<string, { cluster: boolean; tls: boolean }> = {
  'redis:': { cluster: false, tls: false },
  'rediss:': { cluster: false, tls: true },
  'redis+cluster:': { cluster: true, tls: false },
  'rediss+cluster:': { cluster: true, tls: true },
};

const QUERY_KEYS = new Set(['tls-insecure', 'tls-ca', 'tls-servername']);
const ALLOWED = 'use redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://... for TLS, or redis+cluster://HOST:PORT,HOST:PORT for a cluster';

/** Replaces the password of anything that looks like a URL with credentials. */
export function redactUrl(text: string): string {
  return text.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
}

function endpoint(text: string, scheme: string): RedisEndpoint {
  // [v6]:port, host:port, or host
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw new RedisUrlError(`"${text}" is not HOST[:PORT]; ${ALLOWED}`);
  const port = m[3] === undefined ? 6379 : Number(m[3]);
  if (port < 1 || port > 65535) throw new RedisUrlError(`port ${m[3]} is out of range (1-65535)`);
  if (scheme.includes('cluster') && m[3] === undefined) throw new RedisUrlError(`cluster seed "${text}" needs a port (HOST:PORT)`);
  return { host: m[1] ?? m[2], port };
}

/** Parses a Redis URL; throws RedisUrlError with a one-line reason. */
export function parseRedisUrl(text: string): RedisTarget {
  const redacted = redactUrl(text);
  const schemeEnd = text.indexOf('//');
  const scheme = schemeEnd > 0 ? text.slice(0, schemeEnd).toLowerCase() : '';
  const kind = SCHEMES[scheme];
  if (!kind) throw new RedisUrlError(`"${redacted}" is not a Redis URL; ${ALLOWED}`);
  let rest = text.slice(schemeEnd + 2);
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(':');
    try {
      username = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth) || undefined;
      password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : undefined;
    } catch {
      throw new RedisUrlError(`the user or password of "${redacted}" has a bad %-escape`);
    }
    // redis://PASSWORD@host is the old form (no user): the one field is the password.
    if (colon < 0) {
      password = username;
      username = undefined;
    }
  }
  let db = 0;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const path = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
    if (path !== '') {
      if (!/^\d{1,2}$/.test(path)) throw new RedisUrlError(`database "/${path}" must be a number 0-15`);
      db = Number(path);
    }
  }
  if (rest === '') throw new RedisUrlError(`"${redacted}" has no host; ${ALLOWED}`);
  const hosts = rest.split(',');
  if (!kind.cluster && hosts.length > 1) throw new RedisUrlError(`"${redacted}" lists several hosts; for a cluster use redis+cluster://H1:P1,H2:P2`);
  if (kind.cluster && db !== 0) throw new RedisUrlError('Redis Cluster has only database 0; drop the /DB');
  const endpoints = hosts.map((h) => endpoint(h, scheme));
  const target: RedisTarget = { ...kind, endpoints, username, password, db, tlsInsecure: false, redacted };
  if (query) {
    for (const [key, value] of new URLSearchParams(query)) {
      if (!QUERY_KEYS.has(key)) throw new RedisUrlError(`unknown URL parameter "${key}"; known: ${[...QUERY_KEYS].join(', ')}`);
      if (key === 'tls-insecure') target.tlsInsecure = value === '' || value === '1' || value === 'true';
      else if (key === 'tls-ca') target.tlsCaFile = value;
      else target.tlsServername = value;
    }
    if (!kind.tls && (target.tlsInsecure || target.tlsCaFile || target.tlsServername)) {
      throw new RedisUrlError('tls-* parameters need a rediss:// URL');
    }
  }
  return target;
}

/** undefined when the URL is usable; else the one-line reason (for config checks). */
export function redisUrlProblem(text: string): string | undefined {
  try {
    parseRedisUrl(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
