/** Workload labels from realistic cgroup paths (issue 14): systemd, containerd, CRI-O, Docker, kubepods QoS classes, both cgroup drivers. */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CgroupResolver } from '../../src/flow/cgroups.js';
import { describeCgroup } from '../../src/flow/workload.js';

const ID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);
const UID = '0f1e2d3c-4b5a-6978-8899-aabbccddeeff';
const UID_ = UID.replace(/-/g, '_');
const pods = (uid: string) => (uid === UID ? { namespace: 'shop', name: 'cart-7d9f' } : undefined);

describe('describeCgroup', () => {
  it.each([
    ['/system.slice/nginx.service', { workload: 'nginx.service' }],
    ['/system.slice/nginx.service/worker', { workload: 'nginx.service' }],
    ['/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service', { workload: 'foo.service' }],
    ['/user.slice/user-1000.slice/session-3.scope', { workload: 'session-3.scope' }],
    ['/system.slice/docker-' + ID + '.scope', { workload: 'docker:' + ID.slice(0, 12), container: ID }],
    ['/docker/' + ID, { workload: 'docker:' + ID.slice(0, 12), container: ID }],
    ['/system.slice/containerd-' + ID + '.scope', { workload: 'containerd:' + ID.slice(0, 12), container: ID }],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`, { workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: ID }],
    [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope`, { workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: ID }],
    [`/kubepods.slice/kubepods-pod${UID_}.slice/docker-${ID}.scope`, { workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: ID }],
    [`/kubepods/burstable/pod${UID}/${ID}`, { workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: ID }],
    [`/kubepods/pod${UID}/${ID}`, { workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: ID }],
    [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`, { workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' } }],
    ['/', { workload: 'host' }],
    ['/flowscope-test-1-a', { workload: 'flowscope-test-1-a' }],
  ])('%s', (p, want) => {
    expect(describeCgroup(p, pods)).toEqual(want);
  });

  it('a pod the node does not know yet is labelled by its UID', () => {
    const other = '11111111-2222-3333-4444-555555555555';
    expect(describeCgroup(`/kubepods/besteffort/pod${other}/${ID}`, pods)).toEqual({ workload: `pod:${other}`, container: ID });
  });
});

describe('CgroupResolver', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'flowscope-cgroup-'));
  const logs = mkdtempSync(path.join(tmpdir(), 'flowscope-pods-'));
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(logs, { recursive: true, force: true });
  });

  it('maps ids (directory inodes) to paths and workloads, walking again for an id it does not know, at most once per rescanMs', () => {
    let now = 0;
    const r = new CgroupResolver({ root, podLogDir: logs, rescanMs: 1000, clock: () => now });
    const svc = path.join(root, 'system.slice', 'nginx.service');
    mkdirSync(svc, { recursive: true });
    expect(r.path(statSync(svc).ino)).toBe('/system.slice/nginx.service');
    expect(r.workload(statSync(svc).ino)).toEqual({ workload: 'nginx.service' });
    expect(r.walks).toBe(1);

    const pod = path.join(root, 'kubepods.slice', `kubepods-pod${UID_}.slice`, `cri-containerd-${ID}.scope`);
    mkdirSync(pod, { recursive: true });
    const id = statSync(pod).ino;
    expect(r.path(id)).toBe(undefined); // too soon after the last walk
    now += 1000;
    expect(r.workload(id)).toEqual({ workload: `pod:${UID}`, container: ID });
    mkdirSync(path.join(logs, `shop_cart-7d9f_${UID}`));
    now += 1000;
    expect(r.workload(id)).toEqual({ workload: 'shop/cart-7d9f', pod: { namespace: 'shop', name: 'cart-7d9f' }, container: ID });
    expect(r.path(0)).toBe(undefined);
    expect(r.walks).toBe(2);
  });
});
