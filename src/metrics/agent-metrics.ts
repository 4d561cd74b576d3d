/**
 * The agent's Prometheus metrics (prom-client), all named flowscope_*.
 *
 * Label cardinality is bounded by construction: labels are interface names,
 * directions, sink names, event/reason names from fixed lists, and at most
 * --metrics-workloads workload names plus three reserved ones
 * (workload-counters.ts), never addresses or ports. Gauges and datapath counters are read from the agent at
 * scrape time; the poll histograms are fed by the collector.
 */
import client from 'prom-client';
import { FAILURE_NAMES, type FailureName } from '../datapath/types.js';
import type { CollectorListener, PollReport } from '../engine/collector.js';
import { EXPIRY_REASONS, type ExpiryReason } from '../engine/expiry.js';
import type { InterfaceReport } from '../engine/interface-accounting.js';
import type { SinkStatus } from '../engine/sink.js';
import type { RecordBatch } from '../flow/record-batch.js';
import type { WorkloadCounters } from './workload-counters.js';

/** What the metrics read from the agent at scrape time. */
export interface MetricsSource {
  version: string;
  flowsTracked(): number;
  mapCapacity(): number;
  lastDrainFlows(): number;
  interfaces(): InterfaceReport[];
  sinks(): SinkStatus[];
  store(): { records: number; capacity: number; lost: number };
  expired(): Record<ExpiryReason, number>;
  /** cumulative datapath failure counters from the last drain */
  failures(): Record<FailureName, number> | undefined;
  ready(): boolean;
  streamClients(): number;
  /** drains that returned part of the counters (the rest came later) */
  partialDrains(): number;
  /** drains a killed predecessor read and never saw exported (pinned state), 0 otherwise */
  unconfirmedDrains(): number;
}

export class AgentMetrics implements CollectorListener {
  readonly registry = new client.Registry();
  private readonly pollSeconds: client.Histogram;
  private readonly drainSeconds: client.Histogram;
  private readonly polls: client.Counter<'result'>;
  private readonly drainedFlows: client.Counter;
  private readonly sinkErrors: client.Counter<'sink'>;

  constructor(
    private readonly src: MetricsSource,
    /** per-workload byte and packet counters, when attribution is on */
    private readonly workloads?: WorkloadCounters,
    private readonly clock: () => number = Date.now,
  ) {
    const registers = [this.registry];
    // Process and Node.js metrics, minus the gauges prom-client names *_total
    // (promtool rejects a non-counter with that suffix).
    const defaults = new client.Registry();
    client.collectDefaultMetrics({ register: defaults, prefix: 'flowscope_' });
    for (const metric of defaults.getMetricsAsArray()) {
      const { name, type } = metric as unknown as { name: string; type: string };
      if (name.endsWith('_total') && type !== 'counter') continue;
      this.registry.registerMetric(metric as unknown as client.Metric);
    }
    new client.Gauge({
      name: 'flowscope_build_info',
      help: 'Always 1; the version is in the label.',
      labelNames: ['version'],
      registers,
      collect() {
        this.set({ version: src.version }, 1);
      },
    });
    new client.Gauge({
      name: 'flowscope_ready',
      help: '1 when the programs are attached and a poll has completed.',
      registers,
      collect() {
        this.set(src.ready() ? 1 : 0);
      },
    });
    this.pollSeconds = new client.Histogram({
      name: 'flowscope_poll_duration_seconds',
      help: 'Duration of a poll: drain, aggregation, export and expiry.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.drainSeconds = new client.Histogram({
      name: 'flowscope_drain_duration_seconds',
      help: 'Duration of the kernel drain alone, as the datapath measured it.',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.polls = new client.Counter({ name: 'flowscope_polls_total', help: 'Polls by result (ok or error).', labelNames: ['result'], registers });
    this.polls.inc({ result: 'ok' }, 0);
    this.polls.inc({ result: 'error' }, 0);
    this.drainedFlows = new client.Counter({ name: 'flowscope_drained_flow_entries_total', help: 'Flow entries drained from the kernel maps.', registers });
    this.sinkErrors = new client.Counter({ name: 'flowscope_sink_errors_total', help: 'Errors raised by a record sink.', labelNames: ['sink'], registers });
    // Every sink's series exists from the start, so rate() and alerts see 0 rather than nothing.
    for (const sink of src.sinks()) this.sinkErrors.inc({ sink: sink.name }, 0);
    new client.Gauge({
      name: 'flowscope_flows_tracked',
      help: 'Flows in the flow table.',
      registers,
      collect() {
        this.set(src.flowsTracked());
      },
    });
    new client.Gauge({
      name: 'flowscope_flow_map_capacity',
      help: 'Entries of one kernel flow map (one generation).',
      registers,
      collect() {
        this.set(src.mapCapacity());
      },
    });
    new client.Gauge({
      name: 'flowscope_flow_map_fill_ratio',
      help: 'Flows in the last drained generation divided by the flow map capacity.',
      registers,
      collect() {
        const cap = src.mapCapacity();
        this.set(cap > 0 ? src.lastDrainFlows() / cap : 0);
      },
    });
    new client.Counter({
      name: 'flowscope_flows_expired_total',
      help: 'Flows the flow table forgot, by reason (idle, fin, rst, active, evicted).',
      labelNames: ['reason'],
      registers,
      collect() {
        const expired = src.expired();
        this.reset();
        for (const reason of EXPIRY_REASONS) this.inc({ reason }, expired[reason]);
      },
    });
    new client.Counter({
      name: 'flowscope_datapath_events_total',
      help: 'Datapath events and failures counted by the BPF programs since load, by event.',
      labelNames: ['event'],
      registers,
      collect() {
        const failures = src.failures();
        this.reset();
        for (const event of FAILURE_NAMES) this.inc({ event }, failures?.[event] ?? 0);
      },
    });
    const ifaceCounter = (name: string, help: string, pick: (r: InterfaceReport['rx']) => number): void => {
      new client.Counter({
        name,
        help,
        labelNames: ['iface', 'direction'],
        registers,
        collect() {
          this.reset();
          for (const i of src.interfaces()) {
            this.inc({ iface: i.iface, direction: 'ingress' }, pick(i.rx));
            this.inc({ iface: i.iface, direction: 'egress' }, pick(i.tx));
          }
        },
      });
    };
    ifaceCounter('flowscope_interface_packets_total', 'Frames counted at the hooks since attach.', (d) => d.packets);
    ifaceCounter('flowscope_interface_bytes_total', 'Bytes (L2 frame length) counted at the hooks since attach.', (d) => d.bytes);
    ifaceCounter('flowscope_interface_other_packets_total', 'Frames that are not flows (non-IP, or IP too short).', (d) => d.otherPackets);
    ifaceCounter('flowscope_interface_other_bytes_total', 'Bytes of frames that are not flows.', (d) => d.otherBytes);
    ifaceCounter('flowscope_overflow_packets_total', 'IP frames counted while the flow map was full (in no flow).', (d) => d.overflowPackets);
    ifaceCounter('flowscope_overflow_bytes_total', 'Bytes of IP frames counted while the flow map was full.', (d) => d.overflowBytes);
    const sinkCounter = (name: string, help: string, pick: (s: SinkStatus) => number): void => {
      new client.Counter({
        name,
        help,
        labelNames: ['sink'],
        registers,
        collect() {
          this.reset();
          for (const s of src.sinks()) this.inc({ sink: s.name }, pick(s));
        },
      });
    };
    sinkCounter('flowscope_records_exported_total', 'Records delivered by each sink.', (s) => s.exported);
    sinkCounter('flowscope_records_dropped_total', 'Records a sink could not deliver.', (s) => s.dropped);
    // The Redis sink's signs of a second writer on its stream (two agents with one node name).
    const redisSinks = (): (SinkStatus & { duplicateNode: boolean; idClashes: number; otherWriterSeen: number })[] =>
      src.sinks().filter((s): s is SinkStatus & { duplicateNode: boolean; idClashes: number; otherWriterSeen: number } => 'duplicateNode' in s);
    new client.Gauge({
      name: 'flowscope_redis_duplicate_node',
      help: '1 while another process writes this node\'s stream (two agents with one --node), seen in the last minute.',
      registers,
      collect() {
        this.set(redisSinks().some((s) => s.duplicateNode) ? 1 : 0);
      },
    });
    new client.Counter({
      name: 'flowscope_redis_id_clashes_total',
      help: 'Stream entries Redis refused because another writer had taken their ID; each is sent again with a fresh ID.',
      registers,
      collect() {
        this.reset();
        this.inc(redisSinks().reduce((a, s) => a + s.idClashes, 0));
      },
    });
    new client.Counter({
      name: 'flowscope_redis_other_writer_seen_total',
      help: "Flushes that found another writer's id in flowscope:{NODE}:writer.",
      registers,
      collect() {
        this.reset();
        this.inc(redisSinks().reduce((a, s) => a + s.otherWriterSeen, 0));
      },
    });
    new client.Gauge({
      name: 'flowscope_store_records',
      help: 'Records held by the in-memory store.',
      registers,
      collect() {
        this.set(src.store().records);
      },
    });
    new client.Gauge({
      name: 'flowscope_store_capacity_records',
      help: 'Records the in-memory store can hold.',
      registers,
      collect() {
        this.set(src.store().capacity);
      },
    });
    new client.Counter({
      name: 'flowscope_store_lost_records_total',
      help: 'Records overwritten in the in-memory store when it wrapped.',
      registers,
      collect() {
        this.reset();
        this.inc(src.store().lost);
      },
    });
    new client.Counter({
      name: 'flowscope_drain_partial_total',
      help: 'Drains that returned only part of the kernel counters because a step failed; the rest stayed in the kernel for a later drain.',
      registers,
      collect() {
        this.reset();
        this.inc(src.partialDrains());
      },
    });
    new client.Gauge({
      name: 'flowscope_restart_unconfirmed_drains',
      help: 'Drains the previous agent read out of the kernel but never saw every sink accept before it died: their records may be missing downstream.',
      registers,
      collect() {
        this.set(src.unconfirmedDrains());
      },
    });
    if (workloads) {
      const workloadCounter = (name: string, help: string, pick: (w: ReturnType<WorkloadCounters['totals']>[number]) => [number, number]): void => {
        new client.Counter({
          name,
          help,
          labelNames: ['workload', 'direction'],
          registers,
          collect() {
            this.reset();
            for (const w of workloads.totals()) {
              const [ingress, egress] = pick(w);
              this.inc({ workload: w.workload, direction: 'ingress' }, ingress);
              this.inc({ workload: w.workload, direction: 'egress' }, egress);
            }
          },
        });
      };
      workloadCounter('flowscope_workload_bytes_total', 'Bytes of flows by the workload of their local socket (the busiest workloads by name; "other", "none" = no local socket, "unknown" = cgroup not named).', (w) => w.bytes);
      workloadCounter('flowscope_workload_packets_total', 'Packets of flows by the workload of their local socket (labels as flowscope_workload_bytes_total).', (w) => w.packets);
    }
    new client.Gauge({
      name: 'flowscope_stream_clients',
      help: 'Clients following /api/v1/flows/stream.',
      registers,
      collect() {
        this.set(src.streamClients());
      },
    });
  }

  pollDone(report: PollReport): void {
    this.pollSeconds.observe(report.durationMs / 1000);
    this.drainSeconds.observe(report.drainMs / 1000);
    this.polls.inc({ result: 'ok' });
    this.drainedFlows.inc(report.flows);
  }

  exported(batch: RecordBatch): void {
    this.workloads?.add(batch, this.clock());
  }

  pollFailed(): void {
    this.polls.inc({ result: 'error' });
  }

  sinkFailed(sink: string): void {
    this.sinkErrors.inc({ sink });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
