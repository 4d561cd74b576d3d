/** Top talkers by cgroup and workload, and the cgroup=/workload= filters on /top. */
import { describe, expect, it } from 'vitest';
import { parseFlowFilter, type FlowFilterParams } from '../../../src/flow/filter.js';
import type { TopDimension } from '../../../src/flow/top-dimensions.js';
import type { CgroupLabeler } from '../../../src/flow/record-batch.js';
import { makeAgent, udp } from '../../helpers/agent-fixture.js';

const LABELS: Record<number, ReturnType<CgroupLabeler>> = {
  101: { path: '/system.slice/nginx.service', workload: 'nginx.service' },
  102: { path: '/system.slice/sshd.service', workload: 'sshd.service' },
  103: { path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poduid1.slice/cri-containerd-aaa.scope', workload: 'shop/web-1', pod: { namespace: 'shop', name: 'web-1' }, container: 'aaa' },
  104: { path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poduid1.slice/cri-containerd-bbb.scope', workload: 'shop/web-1', pod: { namespace: 'shop', name: 'web-1' }, container: 'bbb' },
};
const labels: CgroupLabeler = (id) => LABELS[id];

async function agentWithTraffic() {
  const t = await makeAgent({ labels, top: { bucketMs: 1000, horizonMs: 3_600_000, capacity: 100 } });
  const flows = [
    { ...udp('10.0.0.1', '10.0.0.9', 1000, 80, 1, 1000), cgroupId: 101 },
    { ...udp('10.0.0.1', '10.0.0.9', 1001, 80, 1, 500), cgroupId: 101 },
    { ...udp('10.0.0.2', '10.0.0.9', 1000, 22, 1, 300), cgroupId: 102 },
    { ...udp('10.0.0.3', '10.0.0.9', 1000, 8080, 1, 700), cgroupId: 103 },
    { ...udp('10.0.0.3', '10.0.0.9', 1001, 8080, 1, 600), cgroupId: 104 },
    { ...udp('10.0.0.4', '10.0.0.9', 1000, 53, 1, 50), cgroupId: 105 }, // a cgroup gone before its path was read
    udp('10.0.0.5', '10.0.0.9', 1000, 53, 1, 20), // forwarded: no local socket
  ];
  await t.poll(flows); // closed by the next poll
  await t.poll(flows.map((f) => ({ ...f, bytes: 1 }))); // in the open bucket
  return t;
}

const top = async (t: Awaited<ReturnType<typeof makeAgent>>, by: TopDimension, params: FlowFilterParams = {}) =>
  (await t.agent.top({ by, metric: 'bytes', windowMs: 3_600_000, k: 10, filter: parseFlowFilter(params, t.now()) })).entries.map((e) => [e.key, e.bytes]);

describe('top talkers by attribution', () => {
  it('by=cgroup: one group per cgroup path; no socket is null; an unreadable cgroup keeps its id', async () => {
    const t = await agentWithTraffic();
    expect(t.agent.topWindows.bucketCount).toBe(1);
    expect(await top(t, 'cgroup')).toEqual([
      [{ cgroup: '/system.slice/nginx.service' }, 1502],
      [{ cgroup: LABELS[103]!.path }, 701],
      [{ cgroup: LABELS[104]!.path }, 601],
      [{ cgroup: '/system.slice/sshd.service' }, 301],
      [{ cgroup: null, cgroupId: 105 }, 51],
      [{ cgroup: null }, 21],
    ]);
  });

  it('by=workload: containers of one pod are one workload', async () => {
    const t = await agentWithTraffic();
    expect(await top(t, 'workload')).toEqual([
      [{ workload: 'nginx.service' }, 1502],
      [{ workload: 'shop/web-1' }, 1302],
      [{ workload: 'sshd.service' }, 301],
      [{ workload: null }, 72],
    ]);
  });

  it('cgroup= (by path component) and workload= filter /top', async () => {
    const t = await agentWithTraffic();
    expect(await top(t, 'src', { cgroup: '/system.slice' })).toEqual([[{ src: '10.0.0.1' }, 1502], [{ src: '10.0.0.2' }, 301]]);
    expect(await top(t, 'src', { cgroup: '/system' })).toEqual([]);
    expect(await top(t, 'dport', { workload: 'shop/web-1' })).toEqual([[{ dport: 8080 }, 1302]]);
    expect(await top(t, 'cgroup', { cgroup: '/kubepods.slice' })).toEqual([[{ cgroup: LABELS[103]!.path }, 701], [{ cgroup: LABELS[104]!.path }, 601]]);
  });
});
