/**
 * The relay's Prometheus metrics (prom-client), named flowscope_* like the
 * agent's. Labels are node names, interface names and directions: bounded by
 * the size of the fleet.
 */
import client from 'prom-client';
import type { FleetView } from './fleet-view.js';
import type { StreamConsumer } from './stream-consumer.js';

export interface RelayMetricsSource {
  version: string;
  view: FleetView;
  consumer: StreamConsumer;
  connected(): boolean;
  ready(): boolean;
  streamClients(): number;
}

export class RelayMetrics {
  readonly registry = new client.Registry();

  constructor(src: RelayMetricsSource) {
    const registers = [this.registry];
    const defaults = new client.Registry();
    client.collectDefaultMetrics({ register: defaults, prefix: 'flowscope_' });
    for (const metric of defaults.getMetricsAsArray()) {
      const { name, type } = metric as unknown as { name: string; type: string };
      if (name.endsWith('_total') && type !== 'counter') continue; // promtool rejects such gauges
      this.registry.registerMetric(metric as unknown as client.Metric);
    }
    const gauge = (name: string, help: string, read: () => number): void => {
      new client.Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    };
    const counter = (name: string, help: string, read: () => number): void => {
      new client.Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    new client.Gauge({
      name: 'flowscope_build_info',
      help: 'Always 1; the version is in the label.',
      labelNames: ['version', 'role'],
      registers,
      collect() {
        this.set({ version: src.version, role: 'relay' }, 1);
      },
    });
    gauge('flowscope_ready', '1 when the relay is connected to Redis and has replayed the streams.', () => (src.ready() ? 1 : 0));
    gauge('flowscope_relay_redis_connected', '1 while the connection to Redis is ready.', () => (src.connected() ? 1 : 0));
    gauge('flowscope_relay_nodes', 'Nodes whose streams the relay reads.', () => src.view.nodes.size);
    counter('flowscope_relay_replayed_entries_total', 'Entries read back with XRANGE at start (history up to the group position).', () => src.consumer.replayed);
    counter('flowscope_relay_acked_entries_total', 'Entries read with XREADGROUP and acknowledged.', () => src.consumer.acked);
    counter('flowscope_relay_recovered_entries_total', 'Pending entries taken over and acknowledged (earlier runs, dead consumers).', () => src.consumer.recovered);
    counter('flowscope_relay_bad_entries_total', 'Entries skipped because a contract field was missing or malformed.', () => src.consumer.badEntries);
    counter('flowscope_relay_read_errors_total', 'Failed read rounds (Redis errors).', () => src.consumer.errors);
    new client.Counter({
      name: 'flowscope_relay_rejected_total',
      help: 'Stream entries and interfaces hash values refused by the checks, by node and reason (docs/redis.md).',
      labelNames: ['node', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const [node, h] of src.consumer.health) for (const [reason, n] of h.rejected) this.inc({ node, reason }, n);
      },
    });
    new client.Counter({
      name: 'flowscope_relay_node_read_errors_total',
      help: "Error replies for a node's keys (wrong type, ...): that node is skipped, the others are read.",
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of src.view.nodes.keys()) this.inc({ node: n }, 0);
        for (const [node, h] of src.consumer.health) if (node !== '') this.inc({ node }, h.errors);
      },
    });
    gauge('flowscope_relay_ignored_nodes', 'Names in flowscope:nodes the relay does not read (malformed, or past the node limit).', () => src.consumer.ignoredNodes.size);
    gauge('flowscope_flows_tracked', 'Distinct flows (node, interface, 5-tuple) the relay holds for the top talkers.', () => src.view.flows_.size);
    gauge('flowscope_stream_clients', 'Clients following /api/v1/flows/stream.', () => src.streamClients());
    const byNode = (name: string, help: string, read: (node: FleetView['nodes'] extends Map<string, infer N> ? N : never) => number): void => {
      new client.Counter({
        name,
        help,
        labelNames: ['node'],
        registers,
        collect() {
          this.reset();
          for (const n of src.view.nodes.values()) this.inc({ node: n.name }, read(n));
        },
      });
    };
    byNode('flowscope_relay_entries_total', 'Stream entries ingested, by node.', (n) => n.entries);
    new client.Counter({
      name: 'flowscope_relay_cgroup_labels_dropped_total',
      help: "Attribution labels not kept because a node named more cgroups than the relay keeps per node (docs/redis.md): those records show cgroup null; nodes with none are not listed.",
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of src.view.nodes.values()) if (n.labels.dropped > 0) this.inc({ node: n.name }, n.labels.dropped);
      },
    });
    new client.Gauge({
      name: 'flowscope_store_records',
      help: 'Records held by the in-memory stores, by node.',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of src.view.nodes.values()) this.set({ node: n.name }, n.store.size);
      },
    });
    const ifaceCounter = (name: string, help: string, pick: (d: { packets: number; bytes: number }) => number): void => {
      new client.Counter({
        name,
        help,
        labelNames: ['node', 'iface', 'direction'],
        registers,
        collect() {
          this.reset();
          for (const i of src.view.interfaces()) {
            this.inc({ node: i.node, iface: i.iface, direction: 'ingress' }, pick(i.rx));
            this.inc({ node: i.node, iface: i.iface, direction: 'egress' }, pick(i.tx));
          }
        },
      });
    };
    ifaceCounter('flowscope_interface_packets_total', "Frames counted at the hooks since attach, as each node's agent last published them.", (d) => d.packets);
    ifaceCounter('flowscope_interface_bytes_total', "Bytes counted at the hooks since attach, as each node's agent last published them.", (d) => d.bytes);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
