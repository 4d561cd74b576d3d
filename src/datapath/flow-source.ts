/**
 * The kernel FlowSource: loads bpf/flowscope.bpf.c through the addon, attaches
 * it to interfaces and drains its counters.
 */
import type {
  Attachment, CloseOptions, DrainResult, FailureName, FlowSource, FlowSourceStats, HookMode, InterfaceDelta, PinnedStateReport,
} from './types.js';
import { FAILURE_NAMES } from './types.js';
import { loadNative, type NativeAdopted, type NativeDatapath, type NativeError, type NativeHook, type NativeMechanism } from './native.js';

type NativeAdoptedAttachment = NativeAdopted['attachments'][number];
import { KernelFlowBatch } from './flow-batch.js';
import { FLOW_KEY, FLOW_VALUE, IFACE_KEY, IFACE_RECORD, IFACE_TOTALS } from './layout.js';
import { networkInterfaces } from 'node:os';
import { listInterfacesWithIndex, resolveInterface } from './interfaces.js';

export interface KernelFlowSourceOptions {
  /** entries of each of the two flow maps (one per generation); default 65536 */
  flowMapEntries?: number;
  /** entries of the interface counter map; default 8192 */
  ifaceMapEntries?: number;
  /** 'tcx' (default: TCX links, falling back to clsact on kernels without TCX) or 'clsact' (forced) */
  tcMechanism?: NativeMechanism;
  /** benchmark knob: see bench_flow_spread in bpf/flowscope.bpf.c */
  benchFlowSpread?: number;
  /** load the empty baseline programs used by bench/ */
  loadBenchPrograms?: boolean;
  /**
   * bpffs directory for pinned state (the agent's: PIN_PATH/NODE). The source
   * locks it, adopts what a previous agent left there (maps with their
   * counts, attachments) and pins what it attaches. Without it nothing is
   * pinned and everything goes with the process.
   */
  pinDir?: string;
  /** flow entries per batch of the map walk (tests make it small) */
  drainBatch?: number;
  /** attribute each new flow entry to the cgroup of its local socket (default true) */
  attribution?: boolean;
}

export const FLOW_MAP_ENTRIES_MIN = 16;
export const FLOW_MAP_ENTRIES_MAX = 1 << 24;

export class DatapathError extends Error {
  readonly errno?: number;
  readonly code?: string;
  readonly syscall?: string;
  readonly hint?: string;
  constructor(message: string, cause?: NativeError) {
    super(cause ? `${message}: ${cause.message}` : message);
    this.name = 'DatapathError';
    this.errno = cause?.errno;
    this.code = cause?.code;
    this.syscall = cause?.syscall;
    this.hint = cause?.hint;
  }
}

function checkCount(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

interface AttachedInterface extends Attachment {
  handles: number[];
  hooks: NativeHook[];
}

/** How often a drain reads the host's addresses again for attribution (attach always does). */
const LOCAL_ADDRESSES_EVERY_MS = 5000;

const HOOKS: Record<HookMode, NativeHook[]> = { tc: ['tc-ingress', 'tc-egress'], xdp: ['xdp', 'tc-egress'] };

/** The error a second agent gets for a node whose pinned state another one owns. */
export class PinnedStateOwnedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PinnedStateOwnedError';
  }
}

export class KernelFlowSource implements FlowSource {
  private readonly native: NativeDatapath;
  private readonly attached = new Map<string, AttachedInterface>();
  private readonly tcMechanism: NativeMechanism;
  private readonly flowMapEntries: number;
  private draining: Promise<DrainResult> | undefined;
  /**
   * Two flow buffers used in turn: a drain writes one while the batch of the
   * previous drain, in the other, may still be read. Reused, so their pages
   * stay resident and a drain costs no page faults.
   */
  private readonly flowBuffers: (ArrayBuffer | undefined)[] = [undefined, undefined];
  private drains = 0;
  private lastDrainFlows = 0;
  /** the host's addresses as last given to the kernel (attribution), joined, and when they were read */
  private localAddresses = '';
  private localAddressesReadMs = -Infinity;
  private partialDrains = 0;
  private closed = false;
  private readonly pinned: PinnedStateReport | undefined;
  /** detached interfaces whose iface_stats entries go once both generations were drained */
  private readonly retired = new Map<number, number>();
  // A pinned source is left attached for the next agent when the process ends without close().
  private readonly onExit = () => this.closeNow(this.pinned !== undefined);

  constructor(options: KernelFlowSourceOptions = {}) {
    this.flowMapEntries = checkCount('flowMapEntries', options.flowMapEntries ?? 65536, FLOW_MAP_ENTRIES_MIN, FLOW_MAP_ENTRIES_MAX);
    const ifaceMapEntries = checkCount('ifaceMapEntries', options.ifaceMapEntries ?? 8192, 64, 1 << 20);
    const benchFlowSpread = checkCount('benchFlowSpread', options.benchFlowSpread ?? 0, 0, FLOW_MAP_ENTRIES_MAX);
    this.tcMechanism = options.tcMechanism ?? 'tcx';
    if (this.tcMechanism !== 'tcx' && this.tcMechanism !== 'clsact') throw new RangeError(`tcMechanism must be tcx or clsact, got ${String(this.tcMechanism)}`);
    const drainBatch = checkCount('drainBatch', options.drainBatch ?? 8192, 1, 1 << 20);
    const { Datapath } = loadNative();
    try {
      this.native = new Datapath({
        flowMapEntries: this.flowMapEntries, ifaceMapEntries, benchFlowSpread, loadBenchPrograms: options.loadBenchPrograms ?? false,
        pinDir: options.pinDir ?? '', drainBatch, attribution: options.attribution ?? true,
      });
    } catch (err) {
      if ((err as NativeError).code === 'EOWNED') throw new PinnedStateOwnedError((err as Error).message);
      throw new DatapathError('cannot load the BPF programs', err as NativeError);
    }
    // A pinned map keeps its size across agents.
    this.flowMapEntries = this.native.info().flowMapEntries;
    this.refreshLocalAddresses();
    if (options.pinDir) this.pinned = this.adoptPinned();
    // Unpinned clsact filters outlive the process: detach on every exit we see.
    process.once('exit', this.onExit);
  }

  /** Takes over what the pinned state held: attachments by interface name, and interfaces to forget. */
  private adoptPinned(): PinnedStateReport {
    const state = this.native.pinnedState()!;
    const adopted = this.native.adopted();
    const names = new Map([...listInterfacesWithIndex()].map(([name, ifindex]) => [ifindex, name]));
    const byIfindex = new Map<number, NativeAdoptedAttachment[]>();
    for (const a of adopted.attachments) byIfindex.set(a.ifindex, [...(byIfindex.get(a.ifindex) ?? []), a]);
    const problems = [...adopted.problems];
    for (const [ifindex, list] of byIfindex) {
      const name = names.get(ifindex);
      if (!name) {
        // Gone (or in another namespace): nothing to count there any more.
        for (const a of list) this.tryDetach(a.handle, problems);
        this.retired.set(ifindex, this.drains + 2);
        continue;
      }
      const hooks = list.map((a) => a.hook);
      const tc = list.find((a) => a.hook !== 'xdp');
      this.attached.set(name, {
        iface: name, ifindex, mode: hooks.includes('xdp') ? 'xdp' : 'tc', tcMechanism: tc?.mechanism === 'clsact' ? 'clsact' : 'tcx',
        handles: list.map((a) => a.handle), hooks, adopted: true,
      });
    }
    const covered = new Set([...this.attached.values()].map((a) => a.ifindex));
    for (const ifindex of this.native.ifaceStatsIfindexes()) if (!covered.has(ifindex)) this.retired.set(ifindex, this.drains + 2);
    return {
      dir: state.dir,
      adopted: state.adopted,
      adoptedInterfaces: [...this.attached.keys()],
      resumedFromMs: state.adopted && state.drainedUntilRealtimeNs > 0 ? state.drainedUntilRealtimeNs / 1e6 : undefined,
      unconfirmedDrains: state.adopted ? Math.max(0, state.drainSeq - state.exportedSeq) : 0,
      problems,
      ...(state.previousLayoutValueBytes > 0
        ? { previousLayout: { valueBytes: state.previousLayoutValueBytes, flowsDrained: 0, mapsLeft: state.previousLayoutMaps } }
        : {}),
    };
  }

  private tryDetach(handle: number, problems: string[]): void {
    try {
      this.native.detach(handle);
    } catch (err) {
      problems.push((err as Error).message.split('\n')[0]);
    }
  }

  /** The addon itself, for tests and benchmarks that run programs directly. */
  get nativeDatapath(): NativeDatapath {
    return this.native;
  }

  /** Attaches to an interface given by name, or by index as a number or a string of digits. */
  async attach(nameOrIndex: string, mode: HookMode): Promise<Attachment> {
    this.assertOpen();
    if (mode !== 'tc' && mode !== 'xdp') throw new RangeError(`hook must be tc or xdp, got ${String(mode)}`);
    const { name: iface, ifindex } = resolveInterface(nameOrIndex);
    const existing = this.attached.get(iface);
    if (existing?.adopted && existing.ifindex === ifindex) return this.conform(existing, mode);
    if (existing) throw new DatapathError(`${iface} is already attached (${existing.mode})`);
    const hooks = HOOKS[mode];
    const handles: number[] = [];
    let tcMechanism: 'tcx' | 'clsact' = 'tcx';
    try {
      for (const hook of hooks) {
        const { handle, mechanism } = this.native.attach(ifindex, hook, this.tcMechanism);
        handles.push(handle);
        if (mechanism === 'tcx' || mechanism === 'clsact') tcMechanism = mechanism;
      }
    } catch (err) {
      for (const handle of handles) this.native.detach(handle);
      throw new DatapathError(`cannot attach to ${iface} (${mode})`, err as NativeError);
    }
    this.retired.delete(ifindex);
    this.refreshLocalAddresses();
    const attachment: AttachedInterface = { iface, ifindex, mode, tcMechanism, handles, hooks: [...hooks] };
    this.attached.set(iface, attachment);
    return publicView(attachment);
  }

  /**
   * An adopted interface asked for in `mode`: keeps the hooks that mode uses
   * (they never stopped counting), removes the others and adds what is missing.
   */
  private conform(a: AttachedInterface, mode: HookMode): Attachment {
    const wanted = HOOKS[mode];
    for (let i = a.hooks.length - 1; i >= 0; i--) {
      if (wanted.includes(a.hooks[i])) continue;
      this.native.detach(a.handles[i]);
      a.hooks.splice(i, 1);
      a.handles.splice(i, 1);
    }
    for (const hook of wanted) {
      if (a.hooks.includes(hook)) continue;
      try {
        const { handle, mechanism } = this.native.attach(a.ifindex, hook, this.tcMechanism);
        a.hooks.push(hook);
        a.handles.push(handle);
        if (hook !== 'xdp' && (mechanism === 'tcx' || mechanism === 'clsact')) a.tcMechanism = mechanism;
      } catch (err) {
        throw new DatapathError(`cannot attach to ${a.iface} (${mode})`, err as NativeError);
      }
    }
    a.mode = mode;
    return publicView(a);
  }

  async detach(iface: string): Promise<void> {
    const a = this.attached.get(iface);
    if (!a) throw new DatapathError(`${iface} is not attached`);
    this.attached.delete(iface);
    const errors: string[] = [];
    for (const handle of a.handles) this.tryDetach(handle, errors);
    // Its iface_stats entries go once both generations were drained.
    this.retired.set(a.ifindex, this.drains + 2);
    if (errors.length) throw new DatapathError(`detaching ${iface}: ${errors.join('; ')}`);
  }

  attachments(): Attachment[] {
    return [...this.attached.values()].map(publicView);
  }

  drain(): Promise<DrainResult> {
    this.assertOpen();
    // One drain at a time: a caller that arrives during a drain waits for it and then runs its own.
    const previous = this.draining ?? Promise.resolve(undefined);
    const next = previous.catch(() => undefined).then(() => this.drainOnce());
    this.draining = next;
    next.finally(() => {
      if (this.draining === next) this.draining = undefined;
    }).catch(() => undefined);
    return next;
  }

  private async drainOnce(): Promise<DrainResult> {
    this.assertOpen();
    const slot = this.drains++ % 2;
    const target = (this.flowBuffers[slot] ??= new ArrayBuffer(this.flowMapEntries * (FLOW_KEY.size + FLOW_VALUE.size)));
    let raw;
    try {
      raw = await this.native.drain(target);
    } catch (err) {
      throw new DatapathError('drain failed', err as NativeError);
    }
    this.lastDrainFlows = raw.flowCount;
    if (raw.partialError) this.partialDrains++;
    const previousLayout = this.pinned?.previousLayout;
    if (previousLayout) {
      previousLayout.flowsDrained += raw.previousLayoutFlows;
      previousLayout.mapsLeft = raw.previousLayoutMapsLeft;
    }
    // Not on every poll: addresses change rarely, and reading them allocates.
    if (Date.now() - this.localAddressesReadMs >= LOCAL_ADDRESSES_EVERY_MS) this.refreshLocalAddresses();
    this.forgetRetired();
    const failures = {} as Record<FailureName, number>;
    FAILURE_NAMES.forEach((name, i) => (failures[name] = raw.failures[i] ?? 0));
    return {
      flows: new KernelFlowBatch(raw.flows, raw.flowCount, raw.flowCapacity, { monoNs: raw.closedMonoNs, realtimeNs: raw.closedRealtimeNs }),
      interfaces: decodeInterfaces(raw.ifaces, raw.ifaceCount),
      failures,
      closedAtMs: raw.closedRealtimeNs / 1e6,
      durationNs: raw.durationNs,
      seq: raw.drainSeq,
      partialError: raw.partialError?.message,
    };
  }

  /**
   * Keeps the kernel's list of this namespace's addresses current: attribution
   * gives an ingress flow to a wildcard-bound socket only when the flow is
   * addressed to one of them (not forwarded through the host).
   */
  private refreshLocalAddresses(): void {
    this.localAddressesReadMs = Date.now();
    const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
    const joined = addresses.join(',');
    if (joined === this.localAddresses) return;
    this.native.setLocalAddresses(addresses);
    this.localAddresses = joined;
  }

  /** Removes the iface_stats entries of interfaces detached two drains ago or more (both generations drained since). */
  private forgetRetired(): void {
    for (const [ifindex, due] of this.retired) {
      if (this.drains < due) continue;
      if (this.native.forgetIface(ifindex)) this.retired.delete(ifindex);
    }
  }

  stats(): FlowSourceStats {
    return { flowMapCapacity: this.flowMapEntries, lastDrainFlows: this.lastDrainFlows, partialDrains: this.partialDrains, pinned: this.pinned };
  }

  markExported(seq: number): void {
    if (!this.closed) this.native.markExported(seq);
  }

  setOwnerApi(url: string): void {
    if (!this.closed) this.native.setOwnerApi(url);
  }

  /** Interfaces waiting for their iface_stats entries to be removed (tests). */
  get retiredInterfaces(): number[] {
    return [...this.retired.keys()];
  }

  async close(options: CloseOptions = {}): Promise<void> {
    if (this.closed) return;
    if (this.draining) await this.draining.catch(() => undefined);
    this.closeNow(options.keepAttached ?? false);
  }

  private closeNow(keepAttached: boolean): void {
    if (this.closed) return;
    this.closed = true;
    process.removeListener('exit', this.onExit);
    this.attached.clear();
    this.native.close({ keepAttached });
  }

  private assertOpen(): void {
    if (this.closed) throw new DatapathError('the flow source is closed');
  }
}

function publicView(a: AttachedInterface): Attachment {
  const view: Attachment = { iface: a.iface, ifindex: a.ifindex, mode: a.mode, tcMechanism: a.tcMechanism };
  if (a.adopted) view.adopted = true;
  return view;
}

function decodeInterfaces(buf: Buffer, count: number): InterfaceDelta[] {
  const out: InterfaceDelta[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * IFACE_RECORD.size;
    const t = at + IFACE_RECORD.totals;
    const u64 = (field: number) => Number(buf.readBigUInt64LE(t + field));
    out.push({
      ifindex: buf.readUInt32LE(at + IFACE_RECORD.key + IFACE_KEY.ifindex),
      direction: buf[at + IFACE_RECORD.key + IFACE_KEY.direction] === 0 ? 'ingress' : 'egress',
      packets: u64(IFACE_TOTALS.packets),
      bytes: u64(IFACE_TOTALS.bytes),
      otherPackets: u64(IFACE_TOTALS.other_packets),
      otherBytes: u64(IFACE_TOTALS.other_bytes),
      overflowPackets: u64(IFACE_TOTALS.overflow_packets),
      overflowBytes: u64(IFACE_TOTALS.overflow_bytes),
    });
  }
  return out;
}

export async function openKernelFlowSource(options: KernelFlowSourceOptions = {}): Promise<KernelFlowSource> {
  return new KernelFlowSource(options);
}
