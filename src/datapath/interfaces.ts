/** Looks up network interfaces by name in /sys/class/net (the netns of this process). */
import { readFileSync, readdirSync } from 'node:fs';

export class InterfaceNotFoundError extends Error {
  constructor(readonly iface: string) {
    super(`no such interface: ${iface} (see \`ip link\`)`);
    this.name = 'InterfaceNotFoundError';
  }
}

const IFNAME = /^[^\s/:]{1,15}$/;

export function ifindexOf(iface: string): number {
  if (!IFNAME.test(iface)) throw new InterfaceNotFoundError(iface);
  try {
    return Number(readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8').trim());
  } catch {
    throw new InterfaceNotFoundError(iface);
  }
}

/** Resolves an interface given by name or by index ("3" or 3) to both. */
export function resolveInterface(nameOrIndex: string | number): { name: string; ifindex: number } {
  const text = String(nameOrIndex);
  if (/^\d+$/.test(text)) {
    const ifindex = Number(text);
    const name = listInterfaces().find((n) => {
      try {
        return ifindexOf(n) === ifindex;
      } catch {
        return false;
      }
    });
    if (!name) throw new InterfaceNotFoundError(`index ${ifindex}`);
    return { name, ifindex };
  }
  return { name: text, ifindex: ifindexOf(text) };
}

export function listInterfaces(): string[] {
  return readdirSync('/sys/class/net');
}

/** Every interface of this namespace with its index (one that vanishes while listed is left out). */
export function listInterfacesWithIndex(): Map<string, number> {
  const out = new Map<string, number>();
  for (const name of listInterfaces()) {
    try {
      out.set(name, ifindexOf(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** The kernel's own counters of an interface, as /sys/class/net/IFACE/statistics has them. */
export interface KernelInterfaceCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** frames the driver dropped on receive / transmit (after a TC egress hook had seen them, for tx) */
  rxDropped: number;
  txDropped: number;
}

export function kernelCounters(iface: string): KernelInterfaceCounters {
  const read = (name: string) => Number(readFileSync(`/sys/class/net/${iface}/statistics/${name}`, 'utf8').trim());
  return {
    rxPackets: read('rx_packets'), rxBytes: read('rx_bytes'), txPackets: read('tx_packets'), txBytes: read('tx_bytes'),
    rxDropped: read('rx_dropped'), txDropped: read('tx_dropped'),
  };
}
