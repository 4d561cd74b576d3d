/**
 * The kernel FlowSource: loads bpf/flowscope.bpf.c through the addon, attaches
 * it to interfaces and drains its counters.
 */
import type {
  Attachment, DrainResult, FailureName, FlowSource, FlowSourceStats, HookMode, InterfaceDelta,
} from './types.js';
import { FAILURE_NAMES } from './types.js';
import { loadNative, type NativeDatapath, type NativeError, type NativeHook, type NativeMechanism } from './native.js';
import { KernelFlowBatch } from './flow-batch.js';
import { FLOW_KEY, FLOW_VALUE, IFACE_KEY, IFACE_RECORD, IFACE_TOTALS } from './layout.js';
import { resolveInterface } from './interfaces.js';

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
  private closed = false;
  private readonly onExit = () => this.closeNow();

  constructor(options: KernelFlowSourceOptions = {}) {
    this.flowMapEntries = checkCount('flowMapEntries', options.flowMapEntries ?? 65536, FLOW_MAP_ENTRIES_MIN, FLOW_MAP_ENTRIES_MAX);
    const ifaceMapEntries = checkCount('ifaceMapEntries', options.ifaceMapEntries ?? 8192, 64, 1 << 20);
    const benchFlowSpread = checkCount('benchFlowSpread', options.benchFlowSpread ?? 0, 0, FLOW_MAP_ENTRIES_MAX);
    this.tcMechanism = options.tcMechanism ?? 'tcx';
    if (this.tcMechanism !== 'tcx' && this.tcMechanism !== 'clsact') throw new RangeError(`tcMechanism must be tcx or clsact, got ${String(this.tcMechanism)}`);
    const { Datapath } = loadNative();
    try {
      this.native = new Datapath({ flowMapEntries: this.flowMapEntries, ifaceMapEntries, benchFlowSpread, loadBenchPrograms: options.loadBenchPrograms ?? false });
    } catch (err) {
      throw new DatapathError('cannot load the BPF programs', err as NativeError);
    }
    // Links die with the process; clsact filters do not, so detach on every exit we see.
    process.once('exit', this.onExit);
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
    if (this.attached.has(iface)) throw new DatapathError(`${iface} is already attached (${this.attached.get(iface)!.mode})`);
    try {
      this.native.removeStale(ifindex);
    } catch (err) {
      throw new DatapathError(`cannot remove flowscope filters left on ${iface} by an earlier run`, err as NativeError);
    }
    const hooks: NativeHook[] = mode === 'tc' ? ['tc-ingress', 'tc-egress'] : ['xdp', 'tc-egress'];
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
    const attachment: AttachedInterface = { iface, ifindex, mode, tcMechanism, handles };
    this.attached.set(iface, attachment);
    return publicView(attachment);
  }

  async detach(iface: string): Promise<void> {
    const a = this.attached.get(iface);
    if (!a) throw new DatapathError(`${iface} is not attached`);
    this.attached.delete(iface);
    const errors: string[] = [];
    for (const handle of a.handles) {
      try {
        this.native.detach(handle);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
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
    const failures = {} as Record<FailureName, number>;
    FAILURE_NAMES.forEach((name, i) => (failures[name] = raw.failures[i] ?? 0));
    return {
      flows: new KernelFlowBatch(raw.flows, raw.flowCount, raw.flowCapacity, { monoNs: raw.closedMonoNs, realtimeNs: raw.closedRealtimeNs }),
      interfaces: decodeInterfaces(raw.ifaces, raw.ifaceCount),
      failures,
      closedAtMs: raw.closedRealtimeNs / 1e6,
      durationNs: raw.durationNs,
    };
  }

  stats(): FlowSourceStats {
    return { flowMapCapacity: this.flowMapEntries, lastDrainFlows: this.lastDrainFlows };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.draining) await this.draining.catch(() => undefined);
    this.closeNow();
  }

  private closeNow(): void {
    if (this.closed) return;
    this.closed = true;
    process.removeListener('exit', this.onExit);
    this.attached.clear();
    this.native.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new DatapathError('the flow source is closed');
  }
}

function publicView(a: AttachedInterface): Attachment {
  return { iface: a.iface, ifindex: a.ifindex, mode: a.mode, tcMechanism: a.tcMechanism };
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
