/**
 * Opens the FlowSource the agent polls: the kernel datapath, or the synthetic
 * one (development and demos). The kernel module is imported on demand, so
 * the client commands (observe, top, ...) run without the native addon.
 */
import type { FlowSource } from '../datapath/types.js';
import { SyntheticFlowSource } from '../datapath/synthetic-source.js';

export interface SourceOptions {
  kind: 'kernel' | 'synthetic';
  flowMapSize: number;
  /** synthetic source only: flows generated on every drain */
  syntheticFlows?: number;
  /** synthetic source only: interface the generated flows are on */
  syntheticIface?: string;
  /** kernel source only: entries of the interface counter map */
  ifaceMapSize?: number;
  /** kernel source only: bpffs directory of this node's pinned state (adopted at start) */
  pinDir?: string;
  /** kernel source only: how tc hooks attach */
  tcMechanism?: 'tcx' | 'clsact';
  /** kernel source only: attribute flows to their local socket's cgroup */
  attribution?: boolean;
}

export async function openSource(options: SourceOptions): Promise<FlowSource> {
  if (options.kind === 'synthetic') {
    const source = new SyntheticFlowSource({ flowMapCapacity: options.flowMapSize });
    source.generate({ flows: options.syntheticFlows ?? 64, sources: Math.min(16, options.syntheticFlows ?? 64), iface: options.syntheticIface ?? 'synth0' });
    return source;
  }
  const { openKernelFlowSource } = await import('../datapath/flow-source.js');
  return openKernelFlowSource({ flowMapEntries: options.flowMapSize, ifaceMapEntries: options.ifaceMapSize, pinDir: options.pinDir, tcMechanism: options.tcMechanism, attribution: options.attribution });
}
