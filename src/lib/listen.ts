/** The --listen address (HOST:PORT) and whether it stays on this machine. */
import { Address6 } from 'ip-address';
import { isIP } from 'node:net';

/** True for names and addresses that only reach this machine: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h === 'localhost.') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  // ::1 in any spelling, and IPv4-mapped 127.0.0.0/8 (::ffff:127.0.0.1, ::ffff:7f00:1)
  if (isIP(h) === 6) return new Address6(h).isLoopback();
  return false;
}

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

/** True when HOST:PORT listens on loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackListen(text: string): boolean {
  const listen = parseListen(text);
  return listen !== undefined && isLoopbackHost(listen.host);
}
