/**
 * Drains a source until the interface's kernel counters stop moving across a
 * drain, so the sum of everything drained since `before` covers exactly the
 * counters' delta since `before`. Returns every drain, for per-drain checks.
 */
import { readFileSync } from 'node:fs';
import type { DrainResult, FlowBatch, FlowSource } from '../../src/datapath/types.js';
import { kernelCounters, type KernelInterfaceCounters } from '../../src/datapath/interfaces.js';

const same = (a: KernelInterfaceCounters, b: KernelInterfaceCounters) =>
  a.rxPackets === b.rxPackets && a.txPackets === b.txPackets && a.rxBytes === b.rxBytes && a.txBytes === b.txBytes &&
  a.rxDropped === b.rxDropped && a.txDropped === b.txDropped;

/** after - before, field by field */
export function counterDelta(before: KernelInterfaceCounters, after: KernelInterfaceCounters): KernelInterfaceCounters {
  return {
    rxPackets: after.rxPackets - before.rxPackets, rxBytes: after.rxBytes - before.rxBytes,
    txPackets: after.txPackets - before.txPackets, txBytes: after.txBytes - before.txBytes,
    rxDropped: after.rxDropped - before.rxDropped, txDropped: after.txDropped - before.txDropped,
  };
}

type DirectionTotal = { packets: number; bytes: number };

/**
 * The kernel's view of what crossed the hooks. Ingress: rx_packets/rx_bytes
 * (a veth counts a frame before it reaches TC ingress or XDP; frames it drops
 * never reach a hook). Egress: the TC egress hook runs before the driver, so a
 * frame the driver drops was seen by the hook and is in tx_dropped, not
 * tx_packets; the kernel keeps no byte count of dropped frames, so bytes are
 * exact only when nothing was dropped. `rxHeaderBytes` is the per-frame bytes
 * the driver leaves out of rx_bytes (14 for veth with XDP, see traffic.test.ts).
 */
export function expectMatchesKernel(
  total: { ingress: DirectionTotal; egress: DirectionTotal },
  kernel: KernelInterfaceCounters,
  rxHeaderBytes = 0,
): string[] {
  const problems: string[] = [];
  if (total.ingress.packets !== kernel.rxPackets) problems.push(`ingress packets ${total.ingress.packets} != rx_packets ${kernel.rxPackets}`);
  if (total.ingress.bytes !== kernel.rxBytes + rxHeaderBytes * kernel.rxPackets) problems.push(`ingress bytes ${total.ingress.bytes} != rx_bytes ${kernel.rxBytes} + ${rxHeaderBytes} x ${kernel.rxPackets}`);
  if (total.egress.packets !== kernel.txPackets + kernel.txDropped) problems.push(`egress packets ${total.egress.packets} != tx_packets ${kernel.txPackets} + tx_dropped ${kernel.txDropped}`);
  if (kernel.txDropped === 0 && total.egress.bytes !== kernel.txBytes) problems.push(`egress bytes ${total.egress.bytes} != tx_bytes ${kernel.txBytes}`);
  if (kernel.txDropped > 0 && total.egress.bytes <= kernel.txBytes) problems.push(`egress bytes ${total.egress.bytes} not above tx_bytes ${kernel.txBytes} with ${kernel.txDropped} dropped`);
  if (kernel.txDropped > 0) console.info(`[kernel] ${kernel.txDropped} frames crossed TC egress and were dropped by the driver (tx_dropped)`);
  return problems;
}

/**
 * A drain copied out of the source's buffers: a FlowBatch is only valid until
 * the second drain after it, and these tests keep drains longer than that.
 */
export function snapshot(d: DrainResult): DrainResult {
  const f = d.flows;
  const rows = Array.from({ length: f.count }, (_, i) => ({
    ifindex: f.ifindex(i), direction: f.direction(i), family: f.family(i), proto: f.proto(i), sport: f.sport(i), dport: f.dport(i),
    icmpType: f.icmpType(i), icmpCode: f.icmpCode(i), packets: f.packets(i), bytes: f.bytes(i), tcpFlags: f.tcpFlags(i),
    firstSeenMs: f.firstSeenMs(i), lastSeenMs: f.lastSeenMs(i), src: f.src(i), dst: f.dst(i), key: f.key(i),
  }));
  const keyWords = f.keyWords.slice(0, f.count * 12);
  const flows: FlowBatch = {
    count: rows.length, keyWords,
    ifindex: (i) => rows[i].ifindex, direction: (i) => rows[i].direction, family: (i) => rows[i].family, proto: (i) => rows[i].proto,
    sport: (i) => rows[i].sport, dport: (i) => rows[i].dport, icmpType: (i) => rows[i].icmpType, icmpCode: (i) => rows[i].icmpCode,
    packets: (i) => rows[i].packets, bytes: (i) => rows[i].bytes, tcpFlags: (i) => rows[i].tcpFlags,
    firstSeenMs: (i) => rows[i].firstSeenMs, lastSeenMs: (i) => rows[i].lastSeenMs, src: (i) => rows[i].src, dst: (i) => rows[i].dst, key: (i) => rows[i].key,
  };
  return { ...d, flows };
}

/**
 * Quiet means: the counters did not move across a drain, and that drain found
 * nothing new at the interface's hooks. The second condition closes a race:
 * a hook counts a frame a moment before the driver bumps tx_packets, so a
 * frame (a stray MLD report, say) caught in that moment would be drained yet
 * missing from `after` if unchanged counters alone meant quiet.
 */
export async function drainUntilQuiet(source: FlowSource, iface: string, settleMs = 200): Promise<{ drains: DrainResult[]; after: KernelInterfaceCounters }> {
  const drains: DrainResult[] = [];
  const ifindex = Number(readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8'));
  let quietRounds = 0;
  for (let attempt = 0; attempt < 50; attempt++) {
    await new Promise((r) => setTimeout(r, settleMs));
    const before = kernelCounters(iface);
    const drain = snapshot(await source.drain());
    drains.push(drain);
    const after = kernelCounters(iface);
    const hooksSawNothing = !drain.interfaces.some((i) => i.ifindex === ifindex && i.packets > 0);
    // Twice in a row: a veth may account a frame in its peer's NAPI poll, after the frame left the hook.
    quietRounds = same(before, after) && hooksSawNothing ? quietRounds + 1 : 0;
    if (quietRounds === 2) return { drains, after };
  }
  throw new Error(`${iface} never went quiet`);
}

/** Flow totals by a readable key, summed over drains. */
export interface FlowTotal {
  direction: string;
  family: number;
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  icmpType: number;
  packets: number;
  bytes: number;
  tcpFlags: number;
}

export function sumFlows(drains: DrainResult[], ifindex: number): Map<string, FlowTotal> {
  const out = new Map<string, FlowTotal>();
  for (const d of drains) {
    const f = d.flows;
    for (let i = 0; i < f.count; i++) {
      if (f.ifindex(i) !== ifindex) continue;
      const key = `${f.direction(i)} ${f.src(i)}:${f.sport(i)} > ${f.dst(i)}:${f.dport(i)} p${f.proto(i)} t${f.icmpType(i)}`;
      const t = out.get(key) ?? {
        direction: f.direction(i), family: f.family(i), src: f.src(i), dst: f.dst(i), proto: f.proto(i),
        sport: f.sport(i), dport: f.dport(i), icmpType: f.icmpType(i), packets: 0, bytes: 0, tcpFlags: 0,
      };
      t.packets += f.packets(i);
      t.bytes += f.bytes(i);
      t.tcpFlags |= f.tcpFlags(i);
      out.set(key, t);
    }
  }
  return out;
}

/** Interface totals by direction over drains, and a check of each drain's own invariant. */
export function sumInterface(drains: DrainResult[], ifindex: number) {
  const total = { ingress: { packets: 0, bytes: 0, other: 0, overflow: 0 }, egress: { packets: 0, bytes: 0, other: 0, overflow: 0 } };
  const violations: string[] = [];
  for (const d of drains) {
    for (const i of d.interfaces) {
      if (i.ifindex !== ifindex) continue;
      const t = total[i.direction];
      t.packets += i.packets;
      t.bytes += i.bytes;
      t.other += i.otherPackets;
      t.overflow += i.overflowPackets;
      let fp = 0;
      let fb = 0;
      for (let k = 0; k < d.flows.count; k++) {
        if (d.flows.ifindex(k) === ifindex && d.flows.direction(k) === i.direction) {
          fp += d.flows.packets(k);
          fb += d.flows.bytes(k);
        }
      }
      if (fp + i.otherPackets + i.overflowPackets !== i.packets || fb + i.otherBytes + i.overflowBytes !== i.bytes) {
        violations.push(`${i.direction}: flows ${fp}/${fb} + other ${i.otherPackets}/${i.otherBytes} + overflow ${i.overflowPackets}/${i.overflowBytes} != ${i.packets}/${i.bytes}`);
      }
    }
  }
  return { total, violations };
}
