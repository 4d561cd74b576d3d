import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TOP, emptyFilter, flowsQuery, formatKey, hashToState, isAddressOrCidr, isDuration, isIPv4, isIPv6, isPort,
  isProto, keyToFilter, normalizeFilter, stateToHash, topQuery, validateFilter,
} from '../../src/web/client/query.js';

describe('address validation', () => {
  it('accepts IPv4 and IPv6 addresses and prefixes', () => {
    for (const ok of ['10.0.0.1', '0.0.0.0', '255.255.255.255', '10.0.0.0/8', '10.1.2.3/32', '::', '::1', 'fd00::1',
      '2001:db8::/32', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8', '::ffff:10.0.0.1', '2001:DB8::A/128', '::/0']) {
      expect(isAddressOrCidr(ok), ok).toBe(true);
    }
  });
  it('rejects malformed addresses and prefix lengths', () => {
    for (const bad of ['', '10.0.0', '10.0.0.256', '01.2.3.4x', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/8/8', 'fd00:::1',
      '1:2:3:4:5:6:7:8:9', '1::2::3', 'fd00::/129', 'host.example', '::ffff:10.0.0.1.5', '12345::', 'g::1', '10.0.0.1 ']) {
      expect(isAddressOrCidr(bad), bad).toBe(false);
    }
  });
  it('separates families', () => {
    expect(isIPv4('10.0.0.1')).toBe(true);
    expect(isIPv6('10.0.0.1')).toBe(false);
    expect(isIPv6('::1')).toBe(true);
    expect(isIPv4('::1')).toBe(false);
  });
});

describe('other field validation', () => {
  it('checks ports, protocols and durations', () => {
    expect(isPort('0')).toBe(true);
    expect(isPort('65535')).toBe(true);
    expect(isPort('65536')).toBe(false);
    expect(isPort('-1')).toBe(false);
    expect(isPort('53a')).toBe(false);
    expect(isProto('udp')).toBe(true);
    expect(isProto('ICMPv6')).toBe(true);
    expect(isProto('47')).toBe(true);
    expect(isProto('256')).toBe(false);
    expect(isProto('http')).toBe(false);
    expect(isDuration('30s')).toBe(true);
    expect(isDuration('1h')).toBe(true);
    expect(isDuration('1 h')).toBe(false);
    // what the server accepts (flow/duration.ts): compound and fractional durations; a window is positive
    expect(isDuration('1h30m')).toBe(true);
    expect(isDuration('1.5h')).toBe(true);
    expect(isDuration('0s')).toBe(false);
  });
  it('reports each invalid field with what is allowed', () => {
    const f = normalizeFilter({ ip: '10.0.0.0/99', port: '70000', proto: 'http', direction: 'sideways', src: '1.2.3.4' });
    const e = validateFilter(f);
    expect(Object.keys(e).sort()).toEqual(['direction', 'ip', 'port', 'proto']);
    expect(e.ip).toMatch(/CIDR/);
    expect(e.port).toMatch(/0 to 65535/);
    expect(validateFilter(emptyFilter())).toEqual({});
  });
  it('checks the attribution filters as the server does', () => {
    expect(validateFilter(normalizeFilter({ cgroup: '/system.slice', workload: 'shop/cart-7d9f' }))).toEqual({});
    expect(validateFilter(normalizeFilter({ cgroup: '/' }))).toEqual({});
    const e = validateFilter(normalizeFilter({ cgroup: 'system.slice', workload: 'x'.repeat(513) }));
    expect(e.cgroup).toMatch(/cgroup path from the cgroup v2 root/);
    expect(e.workload).toMatch(/at most 512 characters/);
    expect(validateFilter(normalizeFilter({ cgroup: '/' + 'a'.repeat(4096) })).cgroup).toBeDefined();
  });
  it('normalizes whitespace and protocol case', () => {
    const f = normalizeFilter({ ip: ' 10.0.0.1 ', proto: 'UDP' });
    expect(f.ip).toBe('10.0.0.1');
    expect(f.proto).toBe('udp');
    expect(f.port).toBe('');
  });
});

describe('query strings', () => {
  it('sends only the fields that are set, in a fixed order', () => {
    expect(flowsQuery(emptyFilter())).toBe('');
    const f = normalizeFilter({ proto: 'udp', ip: '10.0.0.0/8', direction: 'egress' });
    expect(flowsQuery(f)).toBe('?ip=10.0.0.0%2F8&proto=udp&direction=egress');
    expect(flowsQuery(f, { limit: 250 })).toBe('?ip=10.0.0.0%2F8&proto=udp&direction=egress&limit=250');
    expect(flowsQuery(normalizeFilter({ dst: 'fd00::1' }), { since: '5m' })).toBe('?dst=fd00%3A%3A1&since=5m');
    expect(flowsQuery(normalizeFilter({ workload: 'nginx.service', cgroup: '/system.slice', node: 'n1' }))).toBe('?cgroup=%2Fsystem.slice&workload=nginx.service&node=n1');
  });
  it('builds the top query', () => {
    expect(topQuery({ by: 'pair', metric: 'packets', window: '5m', k: 20 })).toBe('?by=pair&metric=packets&window=5m&k=20');
    expect(topQuery(DEFAULT_TOP, normalizeFilter({ iface: 'eth0' }))).toBe('?by=src&metric=bytes&window=1m&k=10&iface=eth0');
  });
});

describe('top keys', () => {
  it('turns a key into the filter that selects it', () => {
    expect(keyToFilter({ src: '10.0.0.5' })).toEqual({ ...emptyFilter(), src: '10.0.0.5' });
    expect(keyToFilter({ src: 'a', dst: 'b' })).toMatchObject({ src: 'a', dst: 'b', ip: '' });
    expect(keyToFilter({ dport: 53 })).toMatchObject({ dport: '53' });
    expect(keyToFilter({ sport: 0 })).toMatchObject({ sport: '0' });
    expect(keyToFilter({ node: 'n1', iface: 'eth0' })).toMatchObject({ node: 'n1', iface: 'eth0' });
    expect(keyToFilter({ workload: 'nginx.service' })).toEqual({ ...emptyFilter(), workload: 'nginx.service' });
    expect(keyToFilter({ cgroup: '/system.slice/nginx.service', cgroupId: 4242 })).toEqual({ ...emptyFilter(), cgroup: '/system.slice/nginx.service' });
    // the group of flows without a local socket has no filter
    expect(keyToFilter({ cgroup: null })).toEqual(emptyFilter());
    expect(keyToFilter({ iface: 'eth0', direction: 'ingress', src: '1.1.1.1', dst: '2.2.2.2', proto: 'tcp', sport: 1, dport: 2, family: 4 }))
      .toEqual({ ...emptyFilter(), iface: 'eth0', direction: 'ingress', src: '1.1.1.1', dst: '2.2.2.2', proto: 'tcp', sport: '1', dport: '2' });
  });
  it('formats keys for display', () => {
    expect(formatKey('src', { src: '10.0.0.5' })).toBe('10.0.0.5');
    expect(formatKey('pair', { src: 'a', dst: 'b' })).toBe('a → b');
    expect(formatKey('flow', { proto: 'udp', src: 'fd00::1', sport: 5, dst: '10.0.0.1', dport: 53 })).toBe('udp [fd00::1]:5 → 10.0.0.1:53');
    expect(formatKey('flow', { proto: 'icmp', src: '1.1.1.1', sport: 0, dst: '2.2.2.2', dport: 0 })).toBe('icmp 1.1.1.1 → 2.2.2.2');
    expect(formatKey('dport', { dport: 443 })).toBe('443');
    expect(formatKey('iface', { node: 'n1', iface: 'eth0' })).toBe('n1/eth0');
    expect(formatKey('iface', { iface: 'eth0' })).toBe('eth0');
    expect(formatKey('cgroup', { cgroup: '/system.slice/nginx.service', cgroupId: 7 })).toBe('/system.slice/nginx.service');
    expect(formatKey('cgroup', { cgroup: null, cgroupId: 7 })).toBe('cgroup id 7');
    expect(formatKey('cgroup', { cgroup: null })).toBe('no local socket');
    expect(formatKey('workload', { workload: 'shop/cart' })).toBe('shop/cart');
    expect(formatKey('workload', { workload: null })).toBe('none');
    expect(formatKey('mystery', { a: 1, b: 'x' })).toBe('a=1 b=x');
  });
});

describe('location hash', () => {
  it('round-trips the view and leaves defaults out', () => {
    const view = { filter: normalizeFilter({ ip: '10.0.0.0/8', proto: 'udp' }), top: { ...DEFAULT_TOP, by: 'dport' as const } };
    const hash = stateToHash(view);
    expect(hash).toBe('#ip=10.0.0.0%2F8&proto=udp&by=dport');
    expect(hashToState(hash)).toEqual(view);
    expect(stateToHash({ filter: emptyFilter(), top: DEFAULT_TOP })).toBe('');
  });
  it('drops invalid values from a hand-edited hash', () => {
    const v = hashToState('#ip=nope&port=53&by=everything&metric=bytes&window=forever&k=5000');
    expect(v.filter.ip).toBe('');
    expect(v.filter.port).toBe('53');
    expect(v.top).toEqual(DEFAULT_TOP);
  });
});
