/**
 * How the engine's tables are read by slot, without depending on them: the
 * flow table of an agent and the relay's flow table implement these.
 */

/** Reads the identity of a tracked (or retired, not yet released) flow by slot. */
export interface FlowTupleReader {
  ifindex(slot: number): number;
  meta(slot: number): number;
  ports(slot: number): number;
  srcText(slot: number): string;
  dstText(slot: number): string;
}

/** A FlowTupleReader that also gives the address ids, for grouping by number. */
export interface FlowTupleReaderWithIds extends FlowTupleReader {
  srcId(slot: number): number;
  dstId(slot: number): number;
}

/**
 * Which node a flow slot belongs to: an agent has one, a relay reading many
 * agents from Redis has several (src/relay/relay-flow-table.ts).
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
