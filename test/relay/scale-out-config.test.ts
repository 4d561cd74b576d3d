/** `flowscope relay --partitions`: its options and checks (src/config/relay.ts). */
import { describe, expect, it } from 'vitest';
import { resolveRelayConfig } from '../../src/config/relay.js';

const base = { redis: 'redis://127.0.0.1:6379', consumer: 'r1' };

describe('relay scale-out options', () => {
  it('off by default; --partitions with a loopback peer endpoint by default', () => {
    const off = resolveRelayConfig({ flags: base, env: {} });
    expect(off).toMatchObject({ partitions: 0, peerListen: { host: '127.0.0.1', port: 9798 }, leaseMs: 3000 });
    const on = resolveRelayConfig({ flags: { ...base, partitions: '64', 'peer-url': 'http://relay-1.example:9798', lease: '5s' }, env: {} });
    expect(on).toMatchObject({ partitions: 64, peerUrl: 'http://relay-1.example:9798', leaseMs: 5000 });
    expect(resolveRelayConfig({ flags: base, env: { FLOWSCOPE_PARTITIONS: '8' } }).partitions).toBe(8);
  });

  it('a peer endpoint off loopback needs a token (or --insecure-no-auth); bad values are refused', () => {
    expect(() => resolveRelayConfig({ flags: { ...base, partitions: '8', 'peer-listen': '0.0.0.0:9798' }, env: {} })).toThrow(/peer-listen .* no token/);
    expect(resolveRelayConfig({ flags: { ...base, partitions: '8', 'peer-listen': '0.0.0.0:9798', token: 's3cret' }, env: {} }).peerListen.host).toBe('0.0.0.0');
    expect(resolveRelayConfig({ flags: { ...base, partitions: '8', 'peer-listen': '0.0.0.0:9798', 'insecure-no-auth': 'true' }, env: {} }).partitions).toBe(8);
    expect(() => resolveRelayConfig({ flags: { ...base, partitions: '-1' }, env: {} })).toThrow();
    expect(() => resolveRelayConfig({ flags: { ...base, partitions: '8', 'peer-listen': 'nope' }, env: {} })).toThrow(/peer-listen/);
    expect(() => resolveRelayConfig({ flags: { ...base, partitions: '8', 'peer-url': 'ftp://x' }, env: {} })).toThrow(/peer-url/);
  });
});
