/** The charts' point store: live points appended, a history read later put before them. */
import { describe, expect, it } from 'vitest';
import { History } from '../../src/web/client/charts.js';

describe('chart history', () => {
  it('puts older points before the live ones, leaves out the rest, and keeps the newest maxPoints', () => {
    const h = new History(5);
    h.push(10, new Map([['eth0:rx', 100]]));
    h.push(11, new Map([['eth0:rx', 110], ['eth1:rx', 5]]));
    h.prepend([7, 8, 9, 10, 11], new Map([['eth0:rx', [70, 80, 90, 999, 999]], ['old:rx', [1, null, null, 999, 999]]]));
    expect(h.times).toEqual([7, 8, 9, 10, 11]);
    expect(h.data(['eth0:rx', 'eth1:rx', 'old:rx'])).toEqual([[7, 8, 9, 10, 11], [70, 80, 90, 100, 110], [null, null, null, null, 5], [1, null, null, null, null]]);
    // more than maxPoints: the oldest go; a series with nothing left goes too
    h.prepend([1, 2, 3], new Map([['eth0:rx', [1, 2, 3]]]));
    expect(h.times).toEqual([7, 8, 9, 10, 11]);
    h.push(12, new Map([['eth0:rx', 120]]));
    expect(h.times).toEqual([8, 9, 10, 11, 12]);
    expect([...h.values.keys()].sort()).toEqual(['eth0:rx', 'eth1:rx']);
  });

  it('fills an empty store', () => {
    const h = new History(300);
    h.prepend([1, 2], new Map([['eth0:tx', [3, 4]]]));
    expect(h.data(['eth0:tx'])).toEqual([[1, 2], [3, 4]]);
  });
});
