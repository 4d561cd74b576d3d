/** flowscope status's summary, from answers as an agent and a relay give them (captured from real ones, then varied). */
import { describe, expect, it } from 'vitest';
import type { InterfaceAnswer } from '../../src/cli/interfaces.js';
import { statusText, type StatusAnswer } from '../../src/cli/status.js';

const zeroDirection = { packets: 0, bytes: 0, pps: 0, bps: 0, otherPackets: 0, otherBytes: 0, overflowPackets: 0, overflowBytes: 0 };

const agentStatus = (): StatusAnswer => ({
  node: 'n1', version: '0.1.0', uptimeSeconds: 192.009, startedAt: '2026-11-29T23:09:34.760Z', ready: true,
  interfaces: [{ iface: 'eth0', ifindex: 100, hook: 'tc', tcMechanism: 'tcx' }, { iface: 'eth1', ifindex: 101, hook: 'xdp' }],
  flowsTracked: 64, mapCapacity: 65536, mapFill: 0.0009765625,
  overflowPackets: 3, overflowBytes: 1800, otherPackets: 0, otherBytes: 0,
  pollIntervalMs: 1000, polls: 192, pollErrors: 0, partialDrains: 0,
  pinned: null,
  lastPollAt: '2026-11-29T23:12:46.122Z', lastPollDurationMs: 8.545849999998609, lastDrainDurationMs: 0.143752, lastError: null,
  recordsExported: 1920,
  sinks: [
    { name: 'memory', exported: 1920, dropped: 0 },
    { name: 'redis', exported: 192, dropped: 12, pending: 64, connected: false, buffer: 200000, writer: 'c54fe7a218135ae7', duplicateNode: false, idClashes: 0, otherWriterSeen: 0, lastError: 'connect ECONNREFUSED 127.0.0.1:6379' },
  ],
  store: { records: 1920, capacity: 262144, seen: 1920, lost: 0 },
  flowsExpired: { idle: 5, syn: 0, fin: 2, rst: 0, active: 0, evicted: 0 },
  datapathFailures: { flow_map_full: 3, iface_map_full: 0, truncated_l2: 0 },
  top: { bucketMs: 10000, horizonMs: 3600000, buckets: 3 },
});

const agentInterfaces: InterfaceAnswer[] = [
  { iface: 'eth0', ifindex: 100, hook: 'tc', rx: { ...zeroDirection, packets: 1920, bytes: 192000, pps: 64, bps: 51200, overflowPackets: 3 }, tx: zeroDirection },
  { iface: 'eth1', ifindex: 101, hook: 'xdp', rx: zeroDirection, tx: { ...zeroDirection, packets: 12_345_678, bytes: 9_876_543_210, pps: 1234.5678, bps: 9.41e9 } },
];

const relayStatus = (): StatusAnswer => ({
  ...agentStatus(),
  node: 'vm', uptimeSeconds: 10.32,
  interfaces: [{ iface: 'n1/eth0', ifindex: 100, hook: 'tc' }, { iface: 'n1/eth1', ifindex: 101, hook: 'tc' }],
  flowsTracked: 0, mapCapacity: 0, mapFill: 0, overflowPackets: 0, overflowBytes: 0,
  pollIntervalMs: 0, polls: 98, lastPollAt: null, lastPollDurationMs: null, lastDrainDurationMs: null,
  recordsExported: 0, sinks: [], flowsExpired: {}, datapathFailures: {},
  store: { records: 192, capacity: 65536, seen: 192, lost: 0 },
  role: 'relay',
  relay: {
    redis: 'redis://127.0.0.1:16399', connected: true, group: 'flowscope-relay', consumer: 'vm',
    entries: 192, replayed: 0, recovered: 0, badEntries: 2, rejected: { attribution: 2 }, ignoredNodes: 0,
    nodes: [
      { node: 'n1', stream: 'flowscope:{n1}:flows', entries: 192, lastId: '1795993803121-63', lastRecordEnd: '2026-11-29T23:10:03.121Z', storeRecords: 192, interfaces: 2, rejected: { attribution: 2 }, readErrors: 0 },
      { node: 'n2', stream: 'flowscope:{n2}:flows', entries: 0, lastId: null, lastRecordEnd: null, storeRecords: 0, interfaces: 0, rejected: {}, readErrors: 1, lastError: 'WRONGTYPE' },
    ],
    scaleOut: {
      id: 'r1', url: 'http://10.0.0.5:9798', partitions: 8, owned: [0, 3], held: [0, 3, 5], live: ['r1', 'r2'],
      gained: 1, lost: 0, lastFanout: { peers: 1, missing: [], incomplete: [] },
    },
  },
});

const relayInterfaces: InterfaceAnswer[] = agentInterfaces.map((i) => ({ ...i, node: 'n1', at: '2026-11-29T23:10:03.123Z' }));

/** What a summary must never hold: JSON in a cell, a number with many decimals. */
function expectReadable(text: string) {
  expect(text).not.toMatch(/[{}"[\]]/);
  expect(text).not.toMatch(/\d\.\d{4,}/);
}

describe('flowscope status summary', () => {
  it("summarises an agent's status in rounded human units, tables without JSON", () => {
    const text = statusText(agentStatus(), agentInterfaces);
    expectReadable(text);
    const lines = text.split('\n');
    expect(lines[0]).toBe('agent n1, version 0.1.0: ready, up 3m12s (since 2026-11-29 23:09:34Z)');
    expect(text).toMatch(/^ {2}Polls: +192 every 1s, 0 errors, 0 partial; last at 2026-11-29 23:12:46Z took 8\.55 ms \(drain 0\.14 ms\)$/m);
    expect(text).toMatch(/^ {2}Flow map: +0\.098% of 65\.5k entries/m);
    expect(text).toMatch(/^ {2}Flows: +64 tracked; expired: idle 5, fin 2$/m);
    expect(text).toMatch(/^ {2}Overflow: +3 packets, 1\.76 KiB found the flow map full/m);
    expect(text).toMatch(/^ {2}Failures: +flow_map_full 3 /m);
    expect(text).toMatch(/^ {2}Pinned: +no /m);
    // interfaces as rows: human totals and rates, the attachment's mechanism
    expect(text).toMatch(/^IFACE\s+IFINDEX\s+HOOK\s+RX_PACKETS\s+RX_BYTES\s+RX_PPS\s+RX_RATE\s+TX_PACKETS\s+TX_BYTES\s+TX_PPS\s+TX_RATE\s+OVERFLOW$/m);
    expect(text).toMatch(/^eth0\s+100\s+tc\/tcx\s+1\.92k\s+188 KiB\s+64\s+51\.2 kbit\/s\s+0\s+0 B\s+0\s+0 bit\/s\s+3$/m);
    expect(text).toMatch(/^eth1\s+101\s+xdp\s+0\s+0 B\s+0\s+0 bit\/s\s+12\.3M\s+9\.2 GiB\s+1\.23k\s+9\.41 Gbit\/s\s+0$/m);
    // sinks as rows
    expect(text).toMatch(/^SINK\s+EXPORTED\s+DROPPED\s+PENDING\s+BUFFER\s+STATE$/m);
    expect(text).toMatch(/^memory\s+1\.92k\s+0\s+-\s+-\s+ok$/m);
    expect(text).toMatch(/^redis\s+192\s+12\s+64\s+200k\s+NOT CONNECTED; error: connect ECONNREFUSED 127\.0\.0\.1:6379$/m);
  });

  it('says what an agent adopted from a pinned predecessor', () => {
    const s = agentStatus();
    s.pinned = { dir: '/sys/fs/bpf/flowscope/n1', adopted: true, adoptedInterfaces: ['eth0'], resumedFrom: '2026-11-29T23:09:30.000Z', unconfirmedDrains: 1, problems: [], keepAttached: true };
    s.interfaces[0].adopted = true;
    const text = statusText(s, agentInterfaces);
    expectReadable(text);
    expect(text).toMatch(/^ {2}Pinned: +\/sys\/fs\/bpf\/flowscope\/n1: adopted eth0 from a previous agent, counting since 2026-11-29 23:09:30Z; 1 drain of the previous agent maybe not exported; stays attached when stopped$/m);
    expect(text).toMatch(/^eth0\s+100\s+tc\/tcx \(adopted\)\s/m);
  });

  it('says when an earlier version\'s flow maps are being drained after an upgrade, and when they are done', () => {
    const s = agentStatus();
    const pinned = { dir: '/sys/fs/bpf/flowscope/n1', adopted: true, adoptedInterfaces: ['eth0'], resumedFrom: null, unconfirmedDrains: 0, problems: [], keepAttached: true };
    s.pinned = { ...pinned, previousLayout: { valueBytes: 40, flowsDrained: 1234, mapsLeft: 1 } };
    expect(statusText(s, agentInterfaces)).toMatch(/; flow maps of an earlier version \(40-byte values\): 1\.23k flows read, 1 map left to drain;/);
    s.pinned = { ...pinned, previousLayout: { valueBytes: 40, flowsDrained: 1234, mapsLeft: 0 } };
    expect(statusText(s, agentInterfaces)).toMatch(/; flow maps of an earlier version \(40-byte values\): 1\.23k flows read, all drained;/);
  });

  it("summarises a relay's status: Redis, ingest, nodes as rows, interfaces per node", () => {
    const text = statusText(relayStatus(), relayInterfaces);
    expectReadable(text);
    expect(text.split('\n')[0]).toBe('relay vm, version 0.1.0: ready, up 10s (since 2026-11-29 23:09:34Z)');
    expect(text).toMatch(/^ {2}Redis: +redis:\/\/127\.0\.0\.1:16399 connected; group flowscope-relay, consumer vm$/m);
    expect(text).toMatch(/^ {2}Ingested: +192 entries .*98 read rounds, 0 errors$/m);
    expect(text).toMatch(/^ {2}Refused: +2 entries \(attribution 2\); 0 nodes ignored$/m);
    expect(text).toMatch(/^ {2}Scale-out: +r1: owns partitions 0 3 of 8 \(holds 0 3 5\), 2 live relays; last fan-out 1 peer$/m);
    // no agent-only lines
    expect(text).not.toMatch(/Polls:|Pinned:|Failures:|SINK/);
    expect(text).toMatch(/^NODE\s+IFACE\s+IFINDEX\s+HOOK\s+RX_PACKETS/m);
    expect(text).toMatch(/^n1\s+eth0\s+100\s+tc\s+1\.92k\s+188 KiB/m);
    expect(text).toMatch(/^NODE\s+ENTRIES\s+LAST_RECORD\s+STORE\s+IFACES\s+REFUSED\s+READ_ERRORS\s+STATE$/m);
    expect(text).toMatch(/^n1\s+192\s+2026-11-29 23:10:03Z\s+192\s+2\s+2\s+0\s+ok$/m);
    expect(text).toMatch(/^n2\s+0\s+-\s+0\s+0\s+0\s+1\s+error: WRONGTYPE$/m);
  });

  it('prints the attachments when the interface counters cannot be read', () => {
    const text = statusText(agentStatus(), undefined);
    expect(text).toMatch(/^eth0\s+100\s+tc\/tcx$/m);
    expect(text).toMatch(/^\(interface counters unavailable\)$/m);
  });
});
