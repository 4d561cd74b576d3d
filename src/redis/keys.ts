/**
 * Redis key names of the contract (shared/contract.md, "Redis streams"). The
 * braces around the node name are a Redis Cluster hash tag: all of a node's
 * keys hash to one slot, so they can share a pipeline.
 */

/** The set of node names. */
export const NODES_KEY = 'flowscope:nodes';

/** The stream of a node's flow records. */
export const flowsKey = (node: string): string => `flowscope:{${node}}:flows`;

/** The hash of a node's per-interface counters (field = interface name, value = JSON). */
export const interfacesKey = (node: string): string => `flowscope:{${node}}:interfaces`;

/** The id of the process writing a node's stream (stream-sink.ts: a second writer there means a duplicate node name). */
export const writerKey = (node: string): string => `flowscope:{${node}}:writer`;

/** The node name of a flows stream key; undefined for any other key. */
export function nodeOfFlowsKey(key: string): string | undefined {
  const m = /^flowscope:\{(.*)\}:flows$/.exec(key);
  return m ? m[1] : undefined;
}
