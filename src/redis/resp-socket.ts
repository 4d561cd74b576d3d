/**
 * Sockets of flowscope's own RESP connections (the sink's XADD connection,
 * the relay's stream reads): where a key lives, opening a TCP or TLS socket
 * there, and the handshake, all from the ioredis client they stand beside
 * (same endpoint, credentials, TLS and database).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './connection.js';

export const CONNECT_TIMEOUT_MS = 5000;

export const isCluster = (c: RedisClient): c is Cluster => (c as { isCluster?: boolean }).isCluster === true;

/** A reply error line, as ioredis names it. */
export class ReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplyError';
  }
}

/** CRC16 (XMODEM) of Redis Cluster key slots. */
const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** The cluster slot of a key (its hash tag when it has one). */
export function keySlot(key: string): number {
  let b = Buffer.from(key, 'utf8');
  const open = b.indexOf(0x7b); // {
  if (open >= 0) {
    const close = b.indexOf(0x7d, open + 1);
    if (close > open + 1) b = b.subarray(open + 1, close);
  }
  let crc = 0;
  for (const x of b) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ x) & 0xff];
  return crc & 16383;
}

export interface Endpoint {
  host: string;
  port: number;
  /** the ioredis options the connection takes its credentials, TLS and database from */
  options: Record<string, unknown>;
}

/** Where `key` lives: the single server, or the master that owns its slot (unless a redirect said otherwise). */
export function endpointOf(client: RedisClient, key: string, redirect?: { host: string; port: number }): Endpoint {
  if (isCluster(client)) {
    const options = (client.options.redisOptions ?? {}) as Record<string, unknown>;
    if (redirect) return { ...redirect, options };
    const owner = client.slots[keySlot(key)]?.[0];
    if (!owner) throw new Error(`no cluster node known for the slot of ${key}`);
    const colon = owner.lastIndexOf(':');
    return { host: owner.slice(0, colon), port: Number(owner.slice(colon + 1)), options };
  }
  const options = (client as Redis).options as unknown as Record<string, unknown>;
  return { host: String(options.host ?? '127.0.0.1'), port: Number(options.port ?? 6379), options };
}

/** Asks a Cluster client to read the slot owners again (after a MOVED/ASK or a failed connection). */
export function refreshSlots(client: RedisClient): void {
  if (isCluster(client)) (client as unknown as { refreshSlotsCache?: () => void }).refreshSlotsCache?.();
}

/** A connected TCP (or TLS) socket to the endpoint, within CONNECT_TIMEOUT_MS. */
export async function openSocket(at: Endpoint): Promise<Socket> {
  const { host, port, options } = at;
  const tls = options.tls as ConnectionOptions | undefined;
  const socket = tls ? tlsConnect({ ...tls, host, port, servername: tls.servername ?? (/^[\d.:]+$/.test(host) ? undefined : host) }) : netConnect({ host, port });
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect ${host}:${port}: ETIMEDOUT`));
    }, CONNECT_TIMEOUT_MS);
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return socket;
}

/** A command as RESP bytes (an array of bulk strings). */
export function command(args: string[]): string {
  return `*${args.length}\r\n${args.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`;
}

/** The handshake commands of a new connection: AUTH, SELECT (not on a cluster), CLIENT SETNAME. */
export function handshake(client: RedisClient, options: Record<string, unknown>, name: string): { bytes: Buffer; commands: number } {
  const args: string[][] = [];
  const password = options.password as string | undefined;
  const username = options.username as string | undefined;
  if (password) args.push(username ? ['AUTH', username, password] : ['AUTH', password]);
  const db = Number(options.db ?? 0);
  if (!isCluster(client) && db > 0) args.push(['SELECT', String(db)]);
  args.push(['CLIENT', 'SETNAME', name.replace(/\s/g, '_')]);
  return { bytes: Buffer.from(args.map(command).join(''), 'utf8'), commands: args.length };
}
