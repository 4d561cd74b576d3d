/**
 * Interface names outlive the attachment: the records of a detached
 * interface (in the store, or in a Redis export window that closes later)
 * are still named after it, within a bound under pod churn.
 */
import { describe, expect, it } from 'vitest';
import { InterfaceAccounting, PAST_NAMES_MAX } from '../../src/engine/interface-accounting.js';
import type { InterfaceDelta } from '../../src/datapath/types.js';

const delta = (ifindex: number, packets: number): InterfaceDelta => ({
  ifindex, direction: 'ingress', packets, bytes: packets * 100, otherPackets: 0, otherBytes: 0, overflowPackets: 0, overflowBytes: 0,
});

describe('InterfaceAccounting names', () => {
  it('a retired interface keeps its name after it leaves the accounting, and a late delta is booked under it', () => {
    const acc = new InterfaceAccounting();
    acc.attach({ iface: 'veth-a', ifindex: 7, mode: 'tc', tcMechanism: 'tcx' });
    acc.retire(7);
    acc.apply([delta(7, 3)], 1000);
    acc.apply([], 2000);
    expect(acc.report().map((r) => r.iface)).toEqual([]);
    expect(acc.name(7)).toBe('veth-a');
    // Counts that arrive later still (an earlier version's set-aside map, operations.md) carry the name.
    acc.apply([delta(7, 1)], 3000);
    expect(acc.report()).toMatchObject([{ iface: 'veth-a', ifindex: 7, hook: 'unknown' }]);
  });

  it('detach forgets the totals but not the name; a new interface on the same index takes over the name', () => {
    const acc = new InterfaceAccounting();
    acc.attach({ iface: 'eth9', ifindex: 9, mode: 'tc', tcMechanism: 'tcx' });
    acc.detach(9);
    expect(acc.name(9)).toBe('eth9');
    acc.attach({ iface: 'veth-b', ifindex: 9, mode: 'tc', tcMechanism: 'tcx' });
    expect(acc.name(9)).toBe('veth-b');
    expect(acc.name(10)).toBe('if10');
  });

  it(`remembers at most ${PAST_NAMES_MAX} past names, the newest`, () => {
    const acc = new InterfaceAccounting();
    const n = PAST_NAMES_MAX + 100;
    for (let i = 1; i <= n; i++) {
      acc.attach({ iface: `veth${i}`, ifindex: i, mode: 'tc', tcMechanism: 'tcx' });
      acc.detach(i);
    }
    expect(acc.name(1)).toBe('if1');
    expect(acc.name(100)).toBe('if100');
    expect(acc.name(101)).toBe('veth101');
    expect(acc.name(n)).toBe(`veth${n}`);
  });
});
