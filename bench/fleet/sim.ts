/**
 * Simulated agents for the fleet benchmarks: each node writes its exports
 * through the agent's own Redis sink (RESP-encoded XADD pipelines on its own
 * connection), as `flowscope run --redis` does, with a realistic mix of flows:
 * TCP, UDP, some ICMP, some IPv6, both directions, and half of the egress
 * flows attributed to one of a node's workloads (cgroup, workload, pod,
 * container), so entries carry every field an agent writes.
 */
import { AddressTable } from '../../src/flow/address-table.js';
import { RecordBatch, type CgroupLabeler } from '../../src/flow/record-batch.js';
import { packMeta, packPorts } from '../../src/flow/tuple.js';
import { connectClient, createRedisClient, type RedisClient } from '../../src/redis/connection.js';
import { RedisStreamSink } from '../../src/redis/stream-sink.js';
import { parseRedisUrl } from '../../src/redis/url.js';

/** workloads per node: a few pods with containers and a few systemd units */
const WORKLOADS = 12;

function labelsOf(node: number): CgroupLabeler {
  const labels = new Map<number, ReturnType<CgroupLabeler>>();
  for (let w = 0; w < WORKLOADS; w++) {
    const id = 1000 + w;
    if (w < 8) {
      const container = (node * 100 + w).toString(16).padStart(64, '0');
      labels.set(id, {
        path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${w}.slice/cri-containerd-${container}.scope`,
        workload: `shop/svc-${w}-7d9f`,
        pod: { namespace: 'shop', name: `svc-${w}-7d9f` },
        container,
      });
    } else labels.set(id, { path: `/system.slice/unit-${w}.service`, workload: `unit-${w}.service` });
  }
  return (id) => labels.get(id);
}

/** One export of node `node`: `flows` records over [startMs, endMs]; the same flows every export (long-lived), counts varying. */
export function exportBatch(node: number, flows: number, startMs: number, endMs: number, round: number, addresses = new AddressTable(), labels = labelsOf(node)): RecordBatch {
  const b = new RecordBatch(flows, addresses, (i) => (i === 2 ? 'eth0' : `eth${i}`), `fleet-${node}`);
  b.startMs = startMs;
  b.endMs = endMs;
  b.labels = labels;
  const self4 = `10.${(node >> 8) & 255}.${node & 255}.1`;
  const self6 = `fd00::${(node + 1).toString(16)}:1`;
  for (let i = 0; i < flows; i++) {
    const kind = i % 20;
    const proto = kind === 0 ? 1 : kind < 8 ? 17 : 6;
    const v6 = i % 10 === 9;
    const egress = (i & 1) === 0;
    // canonical text, as an agent writes it (RFC 5952)
    const remote = v6 ? `2001:db8:${((i >> 8) + 1).toString(16)}::${((i & 255) + 1).toString(16)}` : `172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`;
    const self = v6 ? self6 : self4;
    b.flowId[i] = i;
    b.ifindex[i] = 2;
    b.meta[i] = packMeta(egress ? 'egress' : 'ingress', v6 ? 6 : 4, v6 && proto === 1 ? 58 : proto, proto === 1 ? 8 : 0, 0);
    b.ports[i] = proto === 1 ? 0 : egress ? packPorts(32768 + (i % 28000), proto === 6 ? 443 : 53) : packPorts(proto === 6 ? 443 : 53, 32768 + (i % 28000));
    b.srcId[i] = addresses.intern(egress ? self : remote);
    b.dstId[i] = addresses.intern(egress ? remote : self);
    b.packets[i] = 1 + ((i * 7 + round) % 50);
    b.bytes[i] = b.packets[i] * (60 + (i % 1400));
    b.tcpFlags[i] = proto === 6 ? 16 | (round === 0 ? 2 : 0) : 0;
    b.firstSeen[i] = startMs - 60_000;
    b.lastSeen[i] = endMs - 1;
    b.cgroup[i] = egress && i % 4 === 0 ? 1000 + ((i >> 2) % WORKLOADS) : 0;
  }
  b.count = flows;
  return b;
}

/** A simulated agent: its node name, its Redis sink, its labels. */
export interface SimAgent {
  index: number;
  node: string;
  sink: RedisStreamSink;
  labels: CgroupLabeler;
}

/** Agents sharing one ioredis client (registration, writer key); each sink has its own XADD connection. */
export async function startAgents(url: string, from: number, count: number, maxLen = 1_000_000, bufferRecords = 50_000): Promise<{ agents: SimAgent[]; client: RedisClient }> {
  const client = createRedisClient(parseRedisUrl(url), { connectionName: 'fleet-sim' });
  client.setMaxListeners(0); // every sink listens for the shared client's events
  await connectClient(client, 10_000);
  const agents: SimAgent[] = [];
  for (let n = from; n < from + count; n++) {
    const node = `fleet-${n}`;
    const sink = new RedisStreamSink({ node, client, url: 'bench', maxLen, bufferRecords, batchSize: 512 });
    agents.push({ index: n, node, sink, labels: labelsOf(n) });
  }
  return { agents, client };
}

/** Writes one export of every agent and waits until Redis has every entry. */
export async function exportAll(agents: SimAgent[], flows: number, startMs: number, endMs: number, round: number): Promise<number> {
  const addresses = new AddressTable();
  let written = 0;
  for (const a of agents) {
    a.sink.write(exportBatch(a.index, flows, startMs, endMs, round, addresses, a.labels));
    void a.sink.flush();
    written += flows;
  }
  await settle(agents);
  return written;
}

/** Waits until every sink's queue is empty. */
export async function settle(agents: SimAgent[]): Promise<void> {
  for (;;) {
    let pending = 0;
    for (const a of agents) pending += a.sink.status().pending ?? 0;
    if (pending === 0) return;
    await Promise.all(agents.map((a) => a.sink.flush()));
  }
}

export async function stopAgents(agents: SimAgent[], client: RedisClient): Promise<void> {
  for (const a of agents) await a.sink.close();
  client.disconnect();
}
