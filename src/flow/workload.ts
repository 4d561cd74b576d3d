/**
 * Who a flow belongs to, read off the path of its socket's cgroup (relative
 * to the cgroup v2 root), with no cluster access: a systemd unit
 * (`nginx.service`), a container (containerd, CRI-O, Docker scope names and
 * their cgroupfs-driver layouts), a Kubernetes pod (its UID from the kubepods
 * slices, its namespace and name from the node's own /var/log/pods).
 */

export interface Workload {
  /** a short label: `NAMESPACE/POD` for a pod, `docker:ID12` etc. for a bare container, the unit for systemd, else the last path component */
  workload: string;
  pod?: { namespace: string; name: string };
  /** the full container id (64 hex digits) */
  container?: string;
}

/** Pod UID -> namespace and name; undefined when the node does not know the pod (yet). */
export type PodLookup = (uid: string) => { namespace: string; name: string } | undefined;

const CONTAINER_ID = /^[0-9a-f]{64}$/;
/** systemd scope names of container runtimes: cri-containerd-ID.scope, crio-ID.scope, docker-ID.scope, containerd-ID.scope */
const RUNTIME_SCOPE = /^(cri-containerd|crio|docker|containerd|libpod)-([0-9a-f]{64})\.scope$/;
const RUNTIME_LABEL: Record<string, string> = { 'cri-containerd': 'containerd', crio: 'cri-o', docker: 'docker', containerd: 'containerd', libpod: 'podman' };
/** kubepods-burstable-pod<UID with _>.slice, kubepods-pod<UID>.slice (guaranteed), or pod<UID> (cgroupfs driver) */
const POD_SLICE = /^kubepods(?:-(?:burstable|besteffort))?-pod([0-9a-f_]{36})\.slice$/;
const POD_DIR = /^pod([0-9a-f-]{36})$/;

/** What a cgroup path says about its workload. */
export function describeCgroup(path: string, pods?: PodLookup): Workload {
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 0) return { workload: 'host' };
  let podUid: string | undefined;
  let container: string | undefined;
  let runtime: string | undefined;
  let unit: string | undefined;
  for (const part of parts) {
    const slice = POD_SLICE.exec(part);
    if (slice) {
      podUid = slice[1].replace(/_/g, '-');
      continue;
    }
    const dir = POD_DIR.exec(part);
    if (dir && parts[0] === 'kubepods') {
      podUid = dir[1];
      continue;
    }
    const scope = RUNTIME_SCOPE.exec(part);
    if (scope) {
      runtime = RUNTIME_LABEL[scope[1]];
      container = scope[2];
      continue;
    }
    if (CONTAINER_ID.test(part)) {
      container = part;
      if (parts[0] === 'docker') runtime = 'docker';
      continue;
    }
    if (part.endsWith('.service') || (part.endsWith('.scope') && !part.startsWith('crio-conmon-'))) unit = part;
  }
  if (podUid) {
    const pod = pods?.(podUid);
    const out: Workload = { workload: pod ? `${pod.namespace}/${pod.name}` : `pod:${podUid}` };
    if (pod) out.pod = pod;
    if (container) out.container = container;
    return out;
  }
  if (container) return { workload: `${runtime ?? 'container'}:${container.slice(0, 12)}`, container };
  if (unit) return { workload: unit };
  return { workload: parts[parts.length - 1] };
}
