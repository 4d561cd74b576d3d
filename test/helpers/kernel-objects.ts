/** What the kernel has attached or loaded, as the admin tools show it. */
import { execFileSync } from 'node:child_process';

export function loadedProgramIds(): Set<number> {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as { id: number }[];
  return new Set(progs.map((p) => p.id));
}

/** ids among `ids` that the kernel still has loaded */
export function stillLoaded(ids: number[]): number[] {
  const loaded = loadedProgramIds();
  return ids.filter((id) => loaded.has(id));
}

export function tcFilters(iface: string, where: 'ingress' | 'egress'): string {
  try {
    return execFileSync('tc', ['filter', 'show', 'dev', iface, where], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return '';
  }
}

/** whether `ip link` shows an XDP program on the interface */
export function hasXdp(iface: string): boolean {
  return /\bxdp/.test(execFileSync('ip', ['link', 'show', 'dev', iface], { encoding: 'utf8' }));
}

export function hasClsact(iface: string): boolean {
  return execFileSync('tc', ['qdisc', 'show', 'dev', iface], { encoding: 'utf8' }).includes('clsact');
}

export { eventually } from './eventually.js';

/** Program ids behind the TCX links that run a flowscope program (link type 11 is BPF_LINK_TYPE_TCX). */
export function flowscopeTcxLinks(): number[] {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' })) as { id: number; name?: string }[];
  const ours = new Set(progs.filter((p) => p.name?.startsWith('flowscope_')).map((p) => p.id));
  const links = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { type: number | string; prog_id: number }[];
  return links.filter((l) => (l.type === 11 || l.type === 'tcx') && ours.has(l.prog_id)).map((l) => l.prog_id);
}
