import type { FlowTupleReader } from './flow-table.js';

/** A FlowTupleReader that also gives the address ids, for grouping by number. */
export interface FlowTupleReaderWithIds extends FlowTupleReader {
  srcId(slot: number): number;
  dstId(slot: number): number;
}

/**
 * Which node a flow slot belongs to: an agent has one, a relay reading many
 * agents from Redis has several (src/redis/relay-flow-table.ts).
 */
export interface FlowNodeReader {
  /** true when flows come from several nodes: flow keys then carry the node */
  readonly many: boolean;
  nodeId(slot: number): number;
  nodeName(slot: number): string;
}

/** The node reader of an agent: every flow is the agent's own. */
export function singleNode(name: string): FlowNodeReader {
  return { many: false, nodeId: () => 0, nodeName: () => name };
}
