/** /api/v1/top over HTTP: now, with bounds and attribution; /api/v1/top/series. */
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { makeAgent, makeApp, udp, T0 } from '../helpers/agent-fixture.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('GET /api/v1/top', () => {
  it('answers from the last poll, before its bucket closes, with bounds equal to the values when exact', async () => {
    const t = await makeAgent({ top: { bucketMs: 10_000, horizonMs: 3_600_000, capacity: 100 } });
    app = await makeApp(t);
    await t.poll([udp('10.0.0.1', '10.0.0.2', 1000, 53, 3, 300)]);
    const body = (await app.inject('/api/v1/top?window=1m')).json();
    expect(body).toMatchObject({
      exact: true, totalBytes: 300, to: new Date(T0 + 1000).toISOString(), unlistedBytesMax: 0, unlistedPacketsMax: 0,
      entries: [{ key: { src: '10.0.0.1' }, bytes: 300, packets: 3, bytesMax: 300, packetsMax: 3, share: 1 }],
    });
  });

  it('reports upper bounds when buckets dropped groups', async () => {
    const t = await makeAgent({ top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 2 } });
    app = await makeApp(t);
    for (let b = 0; b < 3; b++) await t.poll(Array.from({ length: 6 }, (_, i) => udp(`10.0.1.${(i + b) % 6}`, '10.0.0.2', 1000, 53, 1, 100 + i)));
    const body = (await app.inject('/api/v1/top?k=3')).json();
    expect(body.exact).toBe(false);
    for (const e of body.entries) expect(e.bytesMax).toBeGreaterThanOrEqual(e.bytes);
    expect(body.unlistedBytesMax).toBeGreaterThan(0);
  });

  it('groups and filters by cgroup and workload', async () => {
    const t = await makeAgent({ labels: (id) => ({ path: `/system.slice/s${id}.service`, workload: `s${id}.service` }) });
    app = await makeApp(t);
    await t.poll([{ ...udp('10.0.0.1', '10.0.0.2', 1, 2, 1, 700), cgroupId: 7 }, { ...udp('10.0.0.3', '10.0.0.2', 1, 2, 1, 300), cgroupId: 8 }, udp('10.0.0.4', '10.0.0.2', 1, 2, 1, 5)]);
    expect((await app.inject('/api/v1/top?by=cgroup')).json().entries.map((e: { key: unknown }) => e.key)).toEqual([
      { cgroup: '/system.slice/s7.service' }, { cgroup: '/system.slice/s8.service' }, { cgroup: null },
    ]);
    expect((await app.inject('/api/v1/top?by=workload&workload=s8.service')).json().entries).toMatchObject([{ key: { workload: 's8.service' }, bytes: 300 }]);
    expect((await app.inject('/api/v1/top?by=src&cgroup=/system.slice')).json().totalBytes).toBe(1000);
    const bad = await app.inject('/api/v1/top?cgroup=system.slice');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/cgroup/);
  });
});

describe('GET /api/v1/top/series', () => {
  it('answers the top groups per bucket, oldest first, with the rest as other', async () => {
    const t = await makeAgent({ top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 } });
    app = await makeApp(t);
    await t.poll([udp('10.0.0.1', '10.0.0.2', 1, 2, 1, 100), udp('10.0.0.3', '10.0.0.2', 1, 2, 1, 1)]);
    await t.poll([udp('10.0.0.1', '10.0.0.2', 1, 2, 1, 50)]);
    const r = await app.inject('/api/v1/top/series?window=2s&k=1');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      by: 'src', metric: 'bytes', window: '2s', bucketMs: 1000, exact: true,
      times: [T0 + 1000, T0 + 2000].map((t) => new Date(t).toISOString()),
      entries: [{ key: { src: '10.0.0.1' }, values: [100, 50] }],
      other: [1, 0],
    });
    expect((await app.inject('/api/v1/top/series?window=2h')).statusCode).toBe(400);
    expect((await app.inject('/api/v1/top/series?by=nope')).statusCode).toBe(400);
  });
});
