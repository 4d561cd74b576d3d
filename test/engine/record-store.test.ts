import { describe, expect, it } from 'vitest';
import { parseFlowFilter, type FlowFilterParams } from '../../src/flow/filter.js';
import { makeAgent, udp, T0 } from '../helpers/agent-fixture.js';

async function storeWith(storeSize = 1000) {
  const t = await makeAgent({ storeSize });
  // poll 1 (ends T0+1s): three flows on eth0 ingress, one egress on eth1
  await t.poll([
    udp('10.0.0.1', '10.0.0.2', 1000, 53, 1, 100),
    udp('10.0.0.3', '192.168.1.9', 1001, 443, 2, 200),
    { iface: 'eth0', direction: 'ingress', src: '2001:db8::1', dst: '2001:db8::2', proto: 6, sport: 4000, dport: 80, packets: 3, bytes: 300, tcpFlags: 0x12 },
    udp('10.0.0.2', '10.0.0.1', 53, 1000, 4, 400, 'eth1', 'egress'),
  ]);
  // poll 2 (ends T0+2s): ICMP
  await t.poll([{ iface: 'eth0', direction: 'ingress', src: '10.0.0.7', dst: '10.0.0.1', proto: 1, icmpType: 8, packets: 5, bytes: 500 }]);
  const q = (params: FlowFilterParams, limit = 100) => t.agent.flows(parseFlowFilter(params, t.now()), limit);
  return { t, q };
}

describe('RecordStore queries', () => {
  it('returns contract records newest first with total and truncated', async () => {
    const { q } = await storeWith();
    const all = q({});
    expect(all.total).toBe(5);
    expect(all.truncated).toBe(false);
    expect(all.flows[0]).toEqual({
      node: 'test-node', iface: 'eth0', ifindex: 2, direction: 'ingress', family: 4, src: '10.0.0.7', dst: '10.0.0.1',
      proto: 'icmp', sport: 0, dport: 0, icmpType: 8, icmpCode: 0, packets: 5, bytes: 500, tcpFlags: [],
      start: new Date(T0 + 1000).toISOString(), end: new Date(T0 + 2000).toISOString(),
      firstSeen: new Date(T0 + 2000).toISOString(), lastSeen: new Date(T0 + 2000).toISOString(),
    });
    const tcp = all.flows.find((f) => f.proto === 'tcp')!;
    expect(tcp.tcpFlags).toEqual(['SYN', 'ACK']);
    expect(tcp.icmpType).toBeUndefined();
    const two = q({}, 2);
    expect(two.flows.map((f) => f.packets)).toEqual([5, 4]);
    expect(two).toMatchObject({ total: 5, truncated: true });
  });

  it('applies every filter, combined with AND', async () => {
    const { q } = await storeWith();
    const packets = (params: FlowFilterParams) => q(params).flows.map((f) => f.packets).sort();
    expect(packets({ src: '10.0.0.0/30' })).toEqual([1, 2, 4]);
    expect(packets({ src: '10.0.0.0/31' })).toEqual([1]);
    expect(packets({ dst: '10.0.0.1' })).toEqual([4, 5]);
    expect(packets({ ip: '10.0.0.1' })).toEqual([1, 4, 5]);
    expect(packets({ ip: '2001:db8::/32' })).toEqual([3]);
    expect(packets({ src: '2001:DB8:0::1' })).toEqual([3]);
    expect(packets({ port: 53 })).toEqual([1, 4]);
    expect(packets({ sport: 53 })).toEqual([4]);
    expect(packets({ dport: 443 })).toEqual([2]);
    expect(packets({ proto: 'tcp' })).toEqual([3]);
    expect(packets({ proto: '1' })).toEqual([5]);
    expect(packets({ iface: 'eth1' })).toEqual([4]);
    expect(packets({ iface: 'nope' })).toEqual([]);
    expect(packets({ direction: 'egress' })).toEqual([4]);
    expect(packets({ direction: 'ingress', port: 53 })).toEqual([1]);
    expect(packets({ src: '10.0.0.0/8', dport: 443, proto: 'udp' })).toEqual([2]);
  });

  it('bounds records by time with since/until', async () => {
    const { q } = await storeWith();
    const iso = (ms: number) => new Date(ms).toISOString();
    // poll 1 records cover (T0, T0+1s], poll 2's (T0+1s, T0+2s]
    expect(q({ since: iso(T0 + 1500) }).total).toBe(1);
    expect(q({ since: iso(T0 + 1000) }).total).toBe(1);
    expect(q({ since: iso(T0 + 999) }).total).toBe(5);
    expect(q({ until: iso(T0 + 1000) }).total).toBe(4);
    expect(q({ until: iso(T0 + 1001) }).total).toBe(5);
    expect(q({ since: iso(T0 + 1001), until: iso(T0 + 1002) }).total).toBe(1);
    expect(q({ since: '500ms' }).total).toBe(1); // now is T0+2s
    expect(q({ until: '1500ms' }).total).toBe(4);
    expect(q({ since: iso(T0 + 5000) }).total).toBe(0);
  });

  it('overwrites the oldest records when full and counts them as lost', async () => {
    const { t, q } = await storeWith(3);
    expect(t.agent.store.size).toBe(3);
    expect(t.agent.store.lost).toBe(2);
    expect(q({}).flows.map((f) => f.packets)).toEqual([5, 4, 3]);
    expect(t.agent.status().store).toEqual({ records: 3, capacity: 3, seen: 5, lost: 2 });
  });

  it('keeps the addresses of stored records after their flows expire', async () => {
    const t = await makeAgent({ storeSize: 10, expiry: { udpIdleMs: 1000 } });
    await t.poll([udp('10.1.1.1', '10.2.2.2', 1, 2, 1, 100)]);
    for (let i = 0; i < 5; i++) await t.poll([udp('10.3.3.3', '10.4.4.4', 1, 2, 1, 100)], [], 2000);
    expect(t.agent.table.expired.idle).toBeGreaterThanOrEqual(1);
    const oldest = t.agent.flows(parseFlowFilter({}, t.now()), 100).flows.at(-1)!;
    expect([oldest.src, oldest.dst]).toEqual(['10.1.1.1', '10.2.2.2']);
  });
});
