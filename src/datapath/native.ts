/**
 * Loads the native addon (native/, built by node-gyp) and types its surface.
 * Arguments are validated here and in flow-source.ts; the C++ side trusts them.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface NativeDatapathOptions {
  flowMapEntries: number;
  ifaceMapEntries: number;
  benchFlowSpread: number;
  loadBenchPrograms: boolean;
  /** bpffs directory to pin maps and attachments in, and to adopt them from; '' = not pinned */
  pinDir: string;
  /** flow entries per lookup_and_delete_batch call (tests make it small) */
  drainBatch: number;
  /** take the cgroup of each new flow entry's local socket (flow_value.cgroup_id) */
  attribution: boolean;
}

export type NativeHook = 'tc-ingress' | 'tc-egress' | 'xdp';
export type NativeMechanism = 'tcx' | 'clsact';

export interface NativeDrainResult {
  /** the buffer given to drain(): flowCapacity struct flow_key, then flowCapacity struct flow_value; the first flowCount of each are filled */
  flows: ArrayBuffer;
  flowCount: number;
  flowCapacity: number;
  /** ifaceCount records of struct iface_record */
  ifaces: Buffer;
  ifaceCount: number;
  /** cumulative, indexed by enum failure_kind */
  failures: number[];
  closedRealtimeNs: number;
  closedMonoNs: number;
  barrierNs: number;
  durationNs: number;
  /** drains completed on these maps, across agents (pinned .bss) */
  drainSeq: number;
  /** of flowCount, the flows read from an earlier version's set-aside flow maps (native/previous_maps.h) */
  previousLayoutFlows: number;
  /** set-aside flow maps still pinned (not yet found empty) */
  previousLayoutMapsLeft: number;
  /** set when a step after the flip failed: what was read is in the result, the rest stays in the kernel */
  partialError?: NativeError;
}

export interface NativeAdopted {
  attachments: { handle: number; ifindex: number; hook: NativeHook; mechanism: 'tcx' | 'clsact' | 'xdp-link'; replaced: boolean }[];
  problems: string[];
}

export interface NativePinnedState {
  dir: string;
  /** the maps were found pinned (a previous agent's) rather than created */
  adopted: boolean;
  drainedUntilRealtimeNs: number;
  drainedUntilMonoNs: number;
  drainSeq: number;
  exportedSeq: number;
  /** the value size of an earlier version's flow maps, set aside at start to be drained; 0: none */
  previousLayoutValueBytes: number;
  /** how many of them (one per generation) */
  previousLayoutMaps: number;
}

export type NativeFaultSite = 'flows' | 'iface-lookup' | 'iface-reset';

export interface NativeInfo {
  ncpus: number;
  flowMapEntries: number;
  activeGen: number;
  mapIds: Record<'flows_gen0' | 'flows_gen1' | 'flow_gens' | 'iface_stats' | 'failures', number>;
  progIds: Record<'flowscope_tc_ingress' | 'flowscope_tc_egress' | 'flowscope_xdp_ingress', number>;
  layout: Record<string, Record<string, number>> & { failureKinds: number };
}

export interface NativeDatapath {
  attach(ifindex: number, hook: NativeHook, mechanism: NativeMechanism): { handle: number; mechanism: 'tcx' | 'clsact' | 'xdp-link' };
  detach(handle: number): void;
  /** attachments taken over from the pinned state at construction */
  adopted(): NativeAdopted;
  /** removes an unattached interface's iface_stats entries if they hold nothing; false if not (yet) */
  forgetIface(ifindex: number): boolean;
  /** interfaces that have iface_stats entries */
  ifaceStatsIfindexes(): number[];
  /** makes the local_addrs map hold exactly these addresses; returns how many it holds */
  setLocalAddresses(addresses: string[]): number;
  pinnedState(): NativePinnedState | null;
  setOwnerApi(url: string): void;
  markExported(drainSeq: number): void;
  /** test only: the drain's nth call at `site` fails with EIO; 0 turns it off */
  injectDrainFault(site: NativeFaultSite, nth: number): void;
  /** `target` must hold flowMapEntries x (FLOW_KEY.size + FLOW_VALUE.size) bytes; it is written off the JS thread until the promise settles */
  drain(target: ArrayBuffer): Promise<NativeDrainResult>;
  testRun(program: string, frame: Buffer, repeat: number): Promise<{ retval: number; durationNs: number }>;
  info(): NativeInfo;
  /** keepAttached (pinned only): leave everything attached and pinned for the next agent */
  close(options?: { keepAttached?: boolean }): void;
}

/** An error from the addon: errno, the failed call and what to do about it. */
export interface NativeError extends Error {
  errno?: number;
  code?: string;
  syscall?: string;
  hint?: string;
}

interface NativeModule {
  Datapath: new (options: NativeDatapathOptions) => NativeDatapath;
  /** uninstall: detaches and unpins everything pinned at dir (refuses while an agent owns it) */
  removePinned(dir: string): { links: number; filters: number };
  /** uninstall sweep: flowscope clsact filters that no pin accounts for (needs CAP_SYS_ADMIN) */
  removeOrphanClsact(ifindex: number): number;
}

let cached: NativeModule | undefined;

export function addonPath(): string {
  // src/datapath/native.ts and dist/datapath/native.js are both two levels below the root.
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..', '..', 'native', 'build', 'Release', 'flowscope.node');
}

export function loadNative(): NativeModule {
  if (cached) return cached;
  const file = addonPath();
  try {
    cached = createRequire(import.meta.url)(file) as NativeModule;
    return cached;
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    throw new Error(
      `cannot load flowscope's native addon ${file} (${reason}): build it with \`npm run build\` ` +
        '(it needs clang, libbpf-dev, pkg-config and g++: `sudo npm run setup` installs them)',
    );
  }
}
