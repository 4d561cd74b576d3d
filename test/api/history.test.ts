/**
 * GET /api/v1/interfaces/history on a test agent (synthetic source, hand-driven
 * clock): counts per step equal the traffic sent in it, minutes from the
 * coarse ring agree with the polls, bad input is a 400 that says what is
 * allowed, and a server without history (a relay) answers 501.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.js';
import { makeAgent, makeApp, T0, udp, type TestAgent } from '../helpers/agent-fixture.js';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** packets sent in the poll of second k (the poll at T0 + k s carries what was queued for it) */
const packetsAt = (k: number) => ((k - 1) % 7) + 1;

/** 180 polls, one a second: eth0 receives packetsAt(k) datagrams of 100 bytes and sends one of 60 in second k; eth1 is silent. */
async function threeMinutes(): Promise<TestAgent> {
  const t = await makeAgent();
  for (let k = 1; k <= 180; k++) {
    await t.poll([
      udp('10.0.0.1', '10.0.0.2', 1000, 53, packetsAt(k), packetsAt(k) * 100),
      udp('10.0.0.2', '10.0.0.1', 53, 1000, 1, 60, 'eth0', 'egress'),
    ]);
  }
  return t;
}

interface Series {
  iface: string;
  ifindex: number;
  t: number[];
  rxPackets: number[];
  rxBytes: number[];
  txPackets: number[];
  txBytes: number[];
}

describe('GET /api/v1/interfaces/history', () => {
  it('answers counts per poll-interval step over the default 15 minutes, each equal to what was sent', async () => {
    const t = await threeMinutes();
    app = await makeApp(t);
    const r = await app.inject('/api/v1/interfaces/history');
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ node: 'test-node', pollIntervalMs: 1000, stepMs: 1000, to: T0 + 180_000, from: T0 + 180_000 - 900_000, interfacesOmitted: 0 });
    const [eth0, eth1] = body.interfaces as Series[];
    expect(eth0).toMatchObject({ iface: 'eth0', ifindex: 2 });
    // the first poll's step holds everything since attach and is left out; the last poll's step is in progress
    expect(eth0.t).toEqual(Array.from({ length: 178 }, (_, i) => T0 + (i + 2) * 1000));
    eth0.t.forEach((start, i) => {
      const k = (start - T0) / 1000;
      expect([eth0.rxPackets[i], eth0.rxBytes[i], eth0.txPackets[i], eth0.txBytes[i]]).toEqual([packetsAt(k), packetsAt(k) * 100, 1, 60]);
    });
    // an attached interface without traffic has a history of zeros
    expect(eth1.iface).toBe('eth1');
    expect(eth1.rxPackets.every((v) => v === 0) && eth1.t.length === 178).toBe(true);
  });

  it('serves whole minutes from the coarse ring, equal to the sums of the polls', async () => {
    const t = await threeMinutes();
    app = await makeApp(t);
    const body = (await app.inject('/api/v1/interfaces/history?window=24h&iface=eth0')).json();
    // 24 h: minute steps (about 900 steps at most would be 96 s; the first round step of whole minutes is 2m)
    expect(body.stepMs).toBe(120_000);
    const m = (await app.inject('/api/v1/interfaces/history?window=5m&step=1m&iface=eth0')).json();
    expect(m.stepMs).toBe(60_000);
    expect(m.interfaces.map((s: Series) => s.iface)).toEqual(['eth0']);
    const [s] = m.interfaces as Series[];
    // minute 0 holds the first poll (partial), minute 3 is in progress
    expect(s.t).toEqual([T0 + 60_000, T0 + 120_000]);
    for (const [i, start] of s.t.entries()) {
      let packets = 0;
      for (let k = (start - T0) / 1000; k < (start - T0) / 1000 + 60; k++) packets += packetsAt(k);
      expect([s.rxPackets[i], s.rxBytes[i], s.txPackets[i], s.txBytes[i]]).toEqual([packets, packets * 100, 60, 3600]);
    }
    // the same minutes from the poll-resolution ring: 60 steps of 1 s add up to each
    const fine = (await app.inject('/api/v1/interfaces/history?window=5m&step=1s&iface=eth0')).json().interfaces[0] as Series;
    for (const [i, start] of s.t.entries()) {
      const inMinute = fine.t.map((x, j) => (x >= start && x < start + 60_000 ? fine.rxBytes[j] : 0));
      expect(inMinute.reduce((a, b) => a + b, 0)).toBe(s.rxBytes[i]);
    }
    // the interface accounting's total is the listed steps plus the first and the open poll
    const total = (await app.inject('/api/v1/interfaces')).json()[0].rx.bytes;
    expect(fine.rxBytes.reduce((a, b) => a + b, 0) + packetsAt(1) * 100 + packetsAt(180) * 100).toBe(total);
  });

  it('answers an empty history before the first poll, and none for an unknown interface', async () => {
    const t = await makeAgent();
    app = await makeApp(t);
    const body = (await app.inject('/api/v1/interfaces/history?window=1m')).json();
    expect(body.interfaces).toEqual([]);
    expect(body.to - body.from).toBe(60_000);
    await t.poll();
    expect((await app.inject('/api/v1/interfaces/history?iface=wlan0')).json().interfaces).toEqual([]);
  });

  it('refuses bad input with a 400 that says what is allowed', async () => {
    const t = await threeMinutes();
    app = await makeApp(t);
    const cases: [string, RegExp][] = [
      ['window=abc', /window is malformed; use a duration such as 30s, 5m/],
      ['window=0s', /window: "0s" is not a positive duration/],
      ['window=48h', /window: 48h is longer than the 1d of history this agent keeps; use at most 1d/],
      ['window=500ms', /shorter than the poll interval \(1s\)/],
      ['step=soon', /step is malformed/],
      ['step=1500ms', /step: 1500ms is not a multiple of the poll interval \(1s\) nor of 1m/],
      ['window=2h&step=10s', /step: 10s needs a window of at most 1h .*whole minutes/],
      ['window=1m&step=2m', /step: 2m is longer than the window/],
      ['iface=a/b', /iface is malformed/],
      ['limit=3', /unknown parameter "limit"; allowed parameters: window, step, iface/],
    ];
    for (const [q, message] of cases) {
      const r = await app.inject(`/api/v1/interfaces/history?${q}`);
      expect(r.statusCode, q).toBe(400);
      expect(r.json().message, q).toMatch(message);
    }
  });

  it('bounds the steps of an answer (a fast poll interval)', async () => {
    const t = await makeAgent({ collector: { pollIntervalMs: 100 } });
    app = await makeApp(t);
    const r = await app.inject('/api/v1/interfaces/history?window=10m&step=100ms');
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toMatch(/step: 100ms gives 6000 steps in the window, more than 5000; use a step of at least 1s/);
    // its poll-resolution ring holds 7200 polls (12 min): a longer window takes whole minutes
    expect((await app.inject('/api/v1/interfaces/history?window=13m&step=1s')).json().message).toMatch(/at most 12m/);
    expect((await app.inject('/api/v1/interfaces/history?window=13m')).json().stepMs).toBe(60_000);
  });

  it('is 501 where no history is kept (a relay), and is in the OpenAPI document', async () => {
    const t = await makeAgent();
    const { history: _none, ...services } = t.agent.services();
    app = await createApp({ services, version: '0.0.0-test', clock: t.now });
    const r = await app.inject('/api/v1/interfaces/history');
    expect(r.statusCode).toBe(501);
    expect(r.json()).toEqual({ error: 'not_implemented', message: expect.stringMatching(/each agent keeps its own/) });
    const doc = (await app.inject('/openapi.json')).json();
    expect(Object.keys(doc.paths['/api/v1/interfaces/history'].get.responses)).toEqual(['200', '400', '501']);
  });
});
