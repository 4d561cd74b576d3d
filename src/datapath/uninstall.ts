/**
 * `flowscope detach`: removes everything flowscope created on the node, with
 * no agent running: every node's pinned state under the pin path (links,
 * clsact filters and the qdiscs flowscope created, maps), then flowscope's
 * clsact filters that no pin accounts for (an unpinned process that was
 * killed; finding those by program name needs CAP_SYS_ADMIN).
 */
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { listInterfacesWithIndex } from './interfaces.js';
import { loadNative, type NativeError } from './native.js';
import { PinnedStateOwnedError } from './flow-source.js';

export interface UninstallReport {
  /** pin directories removed (one per node) */
  nodes: string[];
  links: number;
  filters: number;
  /** flowscope clsact filters found by name on the interfaces, outside any pin */
  orphanFilters: number;
  /** what could not be done, one line each */
  problems: string[];
}

export function uninstall(pinPath: string): UninstallReport {
  const native = loadNative();
  const report: UninstallReport = { nodes: [], links: 0, filters: 0, orphanFilters: 0, problems: [] };
  const nodes = existsSync(pinPath) ? readdirSync(pinPath, { withFileTypes: true }).filter((d) => d.isDirectory()) : [];
  for (const node of nodes) {
    const dir = path.join(pinPath, node.name);
    try {
      const removed = native.removePinned(dir);
      report.nodes.push(dir);
      report.links += removed.links;
      report.filters += removed.filters;
    } catch (err) {
      if ((err as NativeError).code === 'EOWNED') throw new PinnedStateOwnedError((err as Error).message);
      report.problems.push(`${dir}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  try {
    if (existsSync(pinPath) && readdirSync(pinPath).length === 0) rmdirSync(pinPath);
  } catch {
    /* another tool put something there */
  }
  for (const [iface, ifindex] of listInterfacesWithIndex()) {
    try {
      report.orphanFilters += native.removeOrphanClsact(ifindex);
    } catch (err) {
      report.problems.push(`${iface}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return report;
}
