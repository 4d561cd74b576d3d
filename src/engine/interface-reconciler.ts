/**
 * Keeps the attached interfaces equal to what the configuration asks for:
 * exact names and glob patterns (`veth*`, `eth[01]`). Interfaces that appear
 * later and match a pattern are attached; attached ones that disappear, or are
 * dropped from the configuration (SIGHUP), are detached. Interfaces that stay
 * are never touched, so their counting goes on without a gap.
 *
 * An interface that is deleted and created again under the same name gets a
 * new ifindex: that is a new interface, detached and attached again.
 */
import type { Attachment, HookMode } from '../datapath/types.js';

export interface InterfaceTarget {
  attach(iface: string, hook: HookMode): Promise<Attachment>;
  detach(iface: string): Promise<void>;
  attachments(): Attachment[];
}

/** The interfaces of this network namespace, by name, with their ifindex. */
export type InterfaceLister = () => Map<string, number>;

export interface ReconcileResult {
  attached: Attachment[];
  detached: string[];
  failed: { iface: string; error: string }[];
}

export function isPattern(spec: string): boolean {
  return /[*?[]/.test(spec);
}

/** A shell-style glob as a regular expression: * any run, ? one character, [...] a class. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
        re += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export class InterfaceReconciler {
  private exact = new Set<string>();
  private patterns: RegExp[] = [];
  private running: Promise<ReconcileResult> | undefined;

  constructor(
    private readonly target: InterfaceTarget,
    private readonly hook: HookMode,
    private readonly list: InterfaceLister,
    specs: string[],
  ) {
    this.setSpecs(specs);
  }

  /** Replaces the wanted interfaces (names and patterns); takes effect at the next reconcile(). */
  setSpecs(specs: string[]): void {
    this.exact = new Set(specs.filter((s) => !isPattern(s)));
    this.patterns = specs.filter(isPattern).map(globToRegExp);
  }

  /** Whether any spec is a pattern, i.e. whether interfaces that appear later can matter. */
  get watchesPatterns(): boolean {
    return this.patterns.length > 0;
  }

  /** Attaches what is wanted and present, detaches what is attached and no longer wanted or present. One at a time. */
  reconcile(): Promise<ReconcileResult> {
    const previous = this.running ?? Promise.resolve(undefined);
    const next = previous.catch(() => undefined).then(() => this.reconcileOnce());
    this.running = next;
    return next;
  }

  private wanted(name: string): boolean {
    return this.exact.has(name) || this.patterns.some((p) => p.test(name));
  }

  private async reconcileOnce(): Promise<ReconcileResult> {
    const present = this.list();
    const result: ReconcileResult = { attached: [], detached: [], failed: [] };
    const attached = new Map(this.target.attachments().map((a) => [a.iface, a]));

    for (const [iface, a] of attached) {
      const stillThere = present.get(iface) === a.ifindex;
      if (stillThere && this.wanted(iface)) continue;
      try {
        await this.target.detach(iface);
        result.detached.push(iface);
        attached.delete(iface);
      } catch (err) {
        result.failed.push({ iface, error: (err as Error).message.split('\n')[0] });
      }
    }
    for (const iface of [...present.keys()].sort()) {
      if (attached.has(iface) || !this.wanted(iface)) continue;
      try {
        result.attached.push(await this.target.attach(iface, this.hook));
      } catch (err) {
        result.failed.push({ iface, error: (err as Error).message.split('\n')[0] });
      }
    }
    return result;
  }
}
