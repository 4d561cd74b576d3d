/**
 * A generated set of bad inputs for every route: each must be answered 400
 * with { error, message } saying what is wrong, and none may give a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { makeAgent, makeApp, udp } from '../helpers/agent-fixture.js';

const BAD_ADDRESSES = ['10.0.0.0/33', '10.0.0.256', '10.0.0', 'abc', '::g', '2001:db8::/129', '1::2::3', '10.0.0.1/', '10.0.0.1/-1', '', '1.2.3.4/8/8', 'x'.repeat(100), '10.0.0.1%20', '-1'];
const BAD_PORTS = ['-1', '65536', 'http', '1.5', '', '1e10', '0x10', '99999999999999999999'];
const BAD_PROTOS = ['tcpx', '256', '-1', '', 'udp!', 'toolongname', '6.0'];
const BAD_TIMES = ['5x', '-5m', 'yesterday', '', '2024-13-45T00:00:00Z', '1714564800', '5 m', 'PT5M', '2024-05-01T11:00:00'];
const BAD_LIMITS = ['-1', '0', '10001', '1e9', 'ten', '', '1.5', '99999999999999999999', 'NaN', 'Infinity'];
const BAD_K = ['-1', '0', '1001', '1e9', 'ten', '', '2.5'];
const BAD_WINDOWS = ['', '5x', '-1m', '0s', '2h', '1d', 'PT1M', '1m 1s', 'x'.repeat(40)];

function badCases(): [string, string][] {
  const cases: [string, string][] = [];
  const filterRoutes = ['/api/v1/flows', '/api/v1/flows/stream', '/api/v1/top'];
  for (const route of filterRoutes) {
    for (const name of ['src', 'dst', 'ip']) for (const v of BAD_ADDRESSES) cases.push([route, `${name}=${encodeURIComponent(v)}`]);
    for (const name of ['port', 'sport', 'dport']) for (const v of BAD_PORTS) cases.push([route, `${name}=${encodeURIComponent(v)}`]);
    for (const v of BAD_PROTOS) cases.push([route, `proto=${encodeURIComponent(v)}`]);
    for (const v of ['up', 'INGRESS', '', 'both']) cases.push([route, `direction=${v}`]);
    for (const v of ['', 'a b', 'x'.repeat(16), 'eth0/1', 'a:b']) cases.push([route, `iface=${encodeURIComponent(v)}`]);
    for (const name of ['since', 'until']) for (const v of BAD_TIMES) cases.push([route, `${name}=${encodeURIComponent(v)}`]);
    cases.push([route, 'since=1m&until=5m']);
    cases.push([route, 'bogus=1']);
    cases.push([route, 'port=53&port=54']);
    cases.push([route, 'src=10.0.0.1&src=10.0.0.2']);
  }
  for (const v of BAD_LIMITS) cases.push(['/api/v1/flows', `limit=${encodeURIComponent(v)}`]);
  for (const v of ['-1', '10001', 'ten']) cases.push(['/api/v1/flows/stream', `limit=${v}`]);
  for (const v of ['x', 'host', '', 'SRC', 'nodes']) cases.push(['/api/v1/top', `by=${v}`]);
  for (const v of ['x', 'flows', '', 'BYTES']) cases.push(['/api/v1/top', `metric=${v}`]);
  for (const v of BAD_K) cases.push(['/api/v1/top', `k=${encodeURIComponent(v)}`]);
  for (const v of BAD_WINDOWS) cases.push(['/api/v1/top', `window=${encodeURIComponent(v)}`]);
  cases.push(['/api/v1/top', 'limit=10']);
  for (const route of ['/api/v1/interfaces', '/api/v1/status', '/metrics', '/healthz', '/readyz']) {
    cases.push([route, 'x=1']);
    cases.push([route, 'limit=5']);
  }
  return cases;
}

describe('bad input', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const t = await makeAgent({ top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 } });
    await t.poll([udp('10.0.0.1', '10.0.0.2', 1, 2, 1, 100)]);
    app = await makeApp(t);
  });
  afterAll(() => app.close());

  const cases = badCases();
  it(`has a large generated set (${cases.length} cases)`, () => {
    expect(cases.length).toBeGreaterThan(300);
  });

  it.each(cases)('GET %s?%s is a 400 with a message', async (route, query) => {
    const r = await app.inject(`${route}?${query}`);
    expect(r.statusCode, r.body).toBe(400);
    const body = r.json() as { error: string; message: string };
    expect(body.error).toBe('bad_request');
    expect(body.message.length).toBeGreaterThan(10);
  });

  it('names the unknown parameter and lists the allowed ones', async () => {
    const r = await app.inject('/api/v1/flows?colour=red');
    expect(r.json().message).toBe('unknown parameter "colour"; allowed parameters: src, dst, ip, port, sport, dport, proto, iface, direction, node, cgroup, workload, since, until, limit');
  });

  it('says what is allowed for enums, ranges and CIDRs', async () => {
    expect((await app.inject('/api/v1/top?by=host')).json().message).toMatch(/by must be one of src, dst, pair, flow, sport, dport, proto, iface, node, cgroup, workload$/);
    expect((await app.inject('/api/v1/top?k=5000')).json().message).toMatch(/k must be <= 1000/);
    expect((await app.inject('/api/v1/flows?limit=0')).json().message).toMatch(/limit must be >= 1.*1 to 10000/);
    expect((await app.inject('/api/v1/flows?src=10.0.0.0/33')).json().message).toMatch(/not an IP address or CIDR; use e\.g\. 10\.0\.0\.1, 10\.0\.0\.0\/8/);
    expect((await app.inject('/api/v1/top?window=2h')).json().message).toMatch(/longer than the 1h this agent keeps/);
    expect((await app.inject('/api/v1/flows?proto=tcpx')).json().message).toMatch(/icmp, tcp, udp, icmpv6, sctp or a protocol number 0-255/);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const r = await app.inject('/api/v1/nope');
    expect(r.statusCode).toBe(404);
    expect(r.json().error).toBe('not_found');
  });

  it('accepts the good values next to the bad ones', async () => {
    for (const q of ['src=10.0.0.0/8', 'ip=2001:db8::/32', 'proto=TCP', 'proto=47', 'port=0', 'since=5m', 'since=2024-05-01T00:00:00Z', 'limit=10000', 'iface=eth0', 'direction=egress']) {
      expect((await app.inject(`/api/v1/flows?${q}`)).statusCode, q).toBe(200);
    }
    for (const q of ['by=pair&metric=packets&k=1000&window=1h', 'window=500ms', 'by=flow&dport=53']) {
      expect((await app.inject(`/api/v1/top?${q}`)).statusCode, q).toBe(200);
    }
  });
});
