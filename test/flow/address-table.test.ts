/** AddressTable: IPv4 kept as numbers in a keyed typed index, IPv6 as text; checked against a Map model. */
import { describe, expect, it } from 'vitest';
import { AddressTable, ipv4Number } from '../../src/flow/address-table.js';

describe('AddressTable', () => {
  it('gives one id per address, whether interned as text or as a number, and formats IPv4 on demand', () => {
    const t = new AddressTable();
    const a = t.intern('10.1.2.3');
    expect(t.internV4(ipv4Number('10.1.2.3'))).toBe(a);
    expect(t.text(a)).toBe('10.1.2.3');
    expect(t.ipv4(a)).toBe(0x0a010203);
    expect(t.refCount(a)).toBe(2);
    const b = t.intern('2001:db8::1');
    expect(t.ipv4(b)).toBe(-1);
    expect(t.text(b)).toBe('2001:db8::1');
    const mapped = t.intern('::ffff:10.1.2.3'); // an IPv6 address, not the IPv4 one
    expect(mapped).not.toBe(a);
    expect(t.text(t.internV4(0xffffffff))).toBe('255.255.255.255');
    expect(t.text(t.internV4(0))).toBe('0.0.0.0');
    expect(t.size).toBe(5);
    t.release(a);
    t.release(a);
    expect(t.size).toBe(4);
    expect(t.text(a)).toBe('');
    expect(t.internV4(0x0a010204)).toBe(a); // the free id is reused
  });

  it('matches a Map model through many inserts, releases and growth', () => {
    const t = new AddressTable();
    const model = new Map<number, { id: number; refs: number }>();
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const live: number[] = [];
    for (let step = 0; step < 200_000; step++) {
      if (live.length === 0 || rand() < 0.6) {
        // new or known address (a small space, so both happen)
        const n = (Math.floor(rand() * 50_000) * 2654435761) >>> 0;
        const id = rand() < 0.5 ? t.internV4(n) : t.intern(`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`);
        const m = model.get(n);
        if (m) {
          expect(id).toBe(m.id);
          m.refs++;
        } else {
          model.set(n, { id, refs: 1 });
        }
        live.push(n);
      } else {
        const k = Math.floor(rand() * live.length);
        const n = live[k];
        live[k] = live[live.length - 1];
        live.pop();
        const m = model.get(n)!;
        t.release(m.id);
        if (--m.refs === 0) model.delete(n);
      }
    }
    expect(t.size).toBe(model.size);
    for (const [n, m] of model) {
      expect(t.internV4(n)).toBe(m.id);
      expect(t.ipv4(m.id)).toBe(n);
      expect(t.refCount(m.id)).toBe(m.refs + 1);
    }
  });
});
