/**
 * What /api/v1/top groups by and ranks on: the contract's names, one list for
 * the engine, the API's schema and error text, the CLI and the dashboard.
 * (`node` groups by node: useful on a relay; an agent has one. `cgroup` and
 * `workload` group by the local socket's cgroup v2 path and its workload label:
 * flows without a local socket form the group whose key is null.)
 */
export const TOP_DIMENSIONS = ['src', 'dst', 'pair', 'flow', 'sport', 'dport', 'proto', 'iface', 'node', 'cgroup', 'workload'] as const;
export type TopDimension = (typeof TOP_DIMENSIONS)[number];
export const TOP_METRICS = ['bytes', 'packets'] as const;
export type TopMetric = (typeof TOP_METRICS)[number];
