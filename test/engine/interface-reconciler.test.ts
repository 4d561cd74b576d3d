import { describe, expect, it } from 'vitest';
import type { Attachment, HookMode } from '../../src/datapath/types.js';
import { InterfaceReconciler, globToRegExp, isPattern } from '../../src/engine/interface-reconciler.js';

/** A stand-in datapath that records what is attached, and a host whose interfaces the test changes. */
function fixture(initial: Record<string, number>) {
  const host = new Map(Object.entries(initial));
  const attached = new Map<string, Attachment>();
  const calls: string[] = [];
  const failOn = new Set<string>();
  const target = {
    async attach(iface: string, mode: HookMode): Promise<Attachment> {
      calls.push(`attach ${iface}`);
      if (failOn.has(iface)) throw new Error(`cannot attach to ${iface}: boom`);
      const a: Attachment = { iface, ifindex: host.get(iface)!, mode, tcMechanism: 'tcx' };
      attached.set(iface, a);
      return a;
    },
    async detach(iface: string): Promise<void> {
      calls.push(`detach ${iface}`);
      attached.delete(iface);
    },
    attachments: () => [...attached.values()],
  };
  return { host, attached, calls, failOn, target, list: () => new Map(host) };
}

describe('globs', () => {
  it('tells patterns from names', () => {
    expect(isPattern('eth0')).toBe(false);
    expect(isPattern('veth*')).toBe(true);
    expect(isPattern('eth?')).toBe(true);
    expect(isPattern('eth[01]')).toBe(true);
  });
  it('matches like a shell', () => {
    expect(globToRegExp('veth*').test('veth12ab')).toBe(true);
    expect(globToRegExp('veth*').test('xveth1')).toBe(false);
    expect(globToRegExp('eth?').test('eth1')).toBe(true);
    expect(globToRegExp('eth?').test('eth10')).toBe(false);
    expect(globToRegExp('eth[01]').test('eth1')).toBe(true);
    expect(globToRegExp('eth[!01]').test('eth1')).toBe(false);
    expect(globToRegExp('eth[!01]').test('eth2')).toBe(true);
    expect(globToRegExp('br.x*').test('brax')).toBe(false);
    expect(globToRegExp('br.x*').test('br.x1')).toBe(true);
  });
});

describe('InterfaceReconciler', () => {
  it('attaches names and pattern matches, then interfaces that appear later', async () => {
    const f = fixture({ lo: 1, eth0: 2, veth1: 3, docker0: 4 });
    const r = new InterfaceReconciler(f.target, 'tc', f.list, ['eth0', 'veth*']);
    const first = await r.reconcile();
    expect(first.attached.map((a) => a.iface)).toEqual(['eth0', 'veth1']);
    f.host.set('veth2', 9);
    const second = await r.reconcile();
    expect(second.attached.map((a) => a.iface)).toEqual(['veth2']);
    expect(second.detached).toEqual([]);
    expect(f.calls).toEqual(['attach eth0', 'attach veth1', 'attach veth2']);
  });

  it('drops interfaces that vanish, and re-attaches one recreated under the same name', async () => {
    const f = fixture({ eth0: 2, veth1: 3, veth2: 4 });
    const r = new InterfaceReconciler(f.target, 'xdp', f.list, ['veth*', 'eth0']);
    await r.reconcile();
    f.host.delete('veth1');
    f.host.set('veth2', 40); // deleted and created again: a new ifindex
    const result = await r.reconcile();
    expect(result.detached.sort()).toEqual(['veth1', 'veth2']);
    expect(result.attached.map((a) => [a.iface, a.ifindex, a.mode])).toEqual([['veth2', 40, 'xdp']]);
    expect(f.attached.get('eth0')?.ifindex).toBe(2);
  });

  it('applies a new list (SIGHUP) without touching the interfaces that stay', async () => {
    const f = fixture({ eth0: 2, eth1: 3, eth2: 4 });
    const r = new InterfaceReconciler(f.target, 'tc', f.list, ['eth0', 'eth1']);
    await r.reconcile();
    f.calls.length = 0;
    r.setSpecs(['eth1', 'eth2']);
    const result = await r.reconcile();
    expect(result.detached).toEqual(['eth0']);
    expect(result.attached.map((a) => a.iface)).toEqual(['eth2']);
    expect(f.calls).toEqual(['detach eth0', 'attach eth2']);
  });

  it('reports a failure and tries again at the next reconcile', async () => {
    const f = fixture({ veth1: 3, veth2: 4 });
    f.failOn.add('veth2');
    const r = new InterfaceReconciler(f.target, 'tc', f.list, ['veth*']);
    const first = await r.reconcile();
    expect(first.failed).toEqual([{ iface: 'veth2', error: 'cannot attach to veth2: boom' }]);
    f.failOn.clear();
    const second = await r.reconcile();
    expect(second.attached.map((a) => a.iface)).toEqual(['veth2']);
  });

  it('runs one reconcile at a time', async () => {
    const f = fixture({ veth1: 3 });
    const r = new InterfaceReconciler(f.target, 'tc', f.list, ['veth*']);
    const [a, b] = await Promise.all([r.reconcile(), r.reconcile()]);
    expect(a.attached.length + b.attached.length).toBe(1);
    expect(f.calls).toEqual(['attach veth1']);
  });
});
