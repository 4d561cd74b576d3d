/**
 * What the agent needs from the host before it loads anything, checked up
 * front so that a missing piece is named in one line instead of surfacing as
 * an errno from deep inside libbpf.
 *
 * Measured on Linux 6.18 as an unprivileged user with ambient capabilities:
 * CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON works, and so does CAP_SYS_ADMIN +
 * CAP_NET_ADMIN; without CAP_PERFMON the load fails with EACCES.
 * No BTF and no bpffs are needed: the programs use no CO-RE relocations and no
 * map is pinned.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export const CAPABILITY = { NET_ADMIN: 12, SYS_ADMIN: 21, PERFMON: 38, BPF: 39 } as const;
export const MIN_KERNEL: readonly [number, number] = [5, 15];

export interface HostFacts {
  /** the CapEff line of /proc/self/status, as hex */
  capEff: string;
  /** os.release() */
  kernelRelease: string;
}

export function readHostFacts(): HostFacts {
  const status = readFileSync('/proc/self/status', 'utf8');
  return { capEff: /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0', kernelRelease: os.release() };
}

function has(capEff: string, cap: number): boolean {
  return ((BigInt(`0x${capEff}`) >> BigInt(cap)) & 1n) === 1n;
}

/** Each missing prerequisite, as a short phrase; empty when all is there. */
export function missingPrerequisites(facts: HostFacts = readHostFacts()): string[] {
  const missing: string[] = [];
  const sysAdmin = has(facts.capEff, CAPABILITY.SYS_ADMIN);
  if (!sysAdmin && !has(facts.capEff, CAPABILITY.BPF)) missing.push('CAP_BPF (or CAP_SYS_ADMIN)');
  if (!sysAdmin && !has(facts.capEff, CAPABILITY.PERFMON)) missing.push('CAP_PERFMON (or CAP_SYS_ADMIN)');
  if (!has(facts.capEff, CAPABILITY.NET_ADMIN)) missing.push('CAP_NET_ADMIN');
  const m = /^(\d+)\.(\d+)/.exec(facts.kernelRelease);
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (major < MIN_KERNEL[0] || (major === MIN_KERNEL[0] && minor < MIN_KERNEL[1])) {
    missing.push(`Linux >= ${MIN_KERNEL.join('.')} (this is ${facts.kernelRelease})`);
  }
  return missing;
}

/** One line for the user, or undefined when nothing is missing. */
export function prerequisiteProblem(facts: HostFacts = readHostFacts()): string | undefined {
  const missing = missingPrerequisites(facts);
  if (!missing.length) return undefined;
  return `flowscope run needs ${missing.join(', ')}: run as root, or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (setcap, systemd AmbientCapabilities, or securityContext.capabilities)`;
}
