/**
 * The privileges the deployment artifacts give the agent are enough, and
 * each one is needed: the real agent (dist/cli/main.js), attached to a veth,
 * under exactly the capability sets that the Kubernetes DaemonSet (and its
 * legacy overlay) and the systemd unit declare, read from those files:
 *
 * - Kubernetes: UID 0, bounding set = securityContext.capabilities.add,
 *   no_new_privs (allowPrivilegeEscalation: false), no ambient capabilities;
 * - systemd: an unprivileged UID, bounding and ambient sets =
 *   CapabilityBoundingSet / AmbientCapabilities, NoNewPrivileges.
 *
 * (setpriv sets the same process attributes the container runtime and
 * systemd set; seccomp and the mount restrictions are not reproduced here.)
 * The agent must become ready, count traffic on the interface, and exit 0
 * on SIGTERM. Without any one of the DaemonSet's capabilities it must refuse
 * to start with exit status 2 and a one-line reason.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipKernelTests } from '../helpers/kernel.js';
import { hasClsact, tcFilters } from '../helpers/kernel-objects.js';
import { removePins, uniquePinPath } from '../helpers/pins.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { startHostSink, stop as stopChild, TRAFFIC } from '../helpers/processes.js';
import { setprivCap, setprivWith, startFlowscope } from './agent-process.js';
import { container, DEPLOY, find, freePort, K8S, parseDocs, render, unitDirectives, waitForStatus, type Obj } from './deploy-helpers.js';
import type { ChildProcess } from 'node:child_process';

const skip = skipKernelTests('deploy privileges');

const daemonSetCaps = (): string[] => container(find(render(join(K8S, 'base')), 'DaemonSet', 'flowscope-agent'), 'agent').securityContext.capabilities.add;
const legacyCaps = (): string[] => {
  const k = parseDocs(readFileSync(join(K8S, 'overlays', 'legacy-capabilities', 'kustomization.yaml'), 'utf8'), 'legacy')[0];
  const ops = parseDocs(k.patches[0].patch, 'patch')[0] as unknown as Obj[];
  return ops.find((o) => o.path.endsWith('/capabilities/add'))!.value;
};
const unit = () => unitDirectives(readFileSync(join(DEPLOY, 'systemd', 'flowscope.service'), 'utf8'));

describe.skipIf(skip)('the agent under the deployments\' privileges', () => {
  let pair: VethPair;
  let sink: ChildProcess | undefined;
  const SINK_PORT = 40_999;

  beforeAll(async () => {
    pair = createVethPair(40);
    sink = await startHostSink('udp-sink', SINK_PORT, 120);
  });
  afterAll(() => {
    stopChild(sink);
    pair?.destroy();
  });

  /** Starts the agent under `prefix`, checks it is ready and counts, stops it; returns its exit code and output. */
  async function readyAndCounting(prefix: string[], extra: string[] = []): Promise<void> {
    const port = await freePort();
    const agent = startFlowscope(['run', '--iface', pair.hostIf, '--listen', `127.0.0.1:${port}`, '--poll-interval', '200ms', '--log-format', 'json', ...extra], prefix);
    try {
      expect(await waitForStatus(`http://127.0.0.1:${port}/readyz`, 200), agent.output()).toBe(200);
      pair.exec(process.execPath, [TRAFFIC, 'udp', pair.hostV4, String(SINK_PORT), '50', '100']);
      let rx = 0;
      for (let i = 0; i < 50 && rx < 50; i++) {
        await new Promise((r) => setTimeout(r, 200));
        const ifaces = (await (await fetch(`http://127.0.0.1:${port}/api/v1/interfaces`)).json()) as { iface: string; rx: { packets: number } }[];
        rx = ifaces.find((i) => i.iface === pair.hostIf)?.rx.packets ?? 0;
      }
      expect(rx, agent.output()).toBeGreaterThanOrEqual(50);
    } finally {
      const code = await agent.stop();
      expect(code, agent.output()).toBe(0);
    }
  }

  it('Kubernetes DaemonSet: UID 0 with only BPF, PERFMON, NET_ADMIN and no_new_privs', async () => {
    const caps = daemonSetCaps().map(setprivCap);
    expect(caps.sort()).toEqual(['bpf', 'net_admin', 'perfmon']);
    await readyAndCounting(setprivWith({ uid: 0, caps, ambient: false, noNewPrivs: true }));
  });

  it('Kubernetes legacy-capabilities overlay: UID 0 with only SYS_ADMIN, NET_ADMIN', async () => {
    const caps = legacyCaps().map(setprivCap);
    expect(caps.sort()).toEqual(['net_admin', 'sys_admin']);
    await readyAndCounting(setprivWith({ uid: 0, caps, ambient: false, noNewPrivs: true }));
  });

  it('systemd unit: an unprivileged user with the ambient capabilities of the unit and NoNewPrivileges', async () => {
    const d = unit();
    const bounding = d.get('CapabilityBoundingSet')!.join(' ').split(/\s+/).map(setprivCap);
    const ambient = d.get('AmbientCapabilities')!.join(' ').split(/\s+/).map(setprivCap);
    expect(ambient.sort()).toEqual(bounding.sort());
    expect(d.get('NoNewPrivileges')).toEqual(['yes']);
    // DynamicUser picks an unprivileged UID; nobody stands in for it. It pins
    // under a directory it can create (the unit's ExecStartPre hands
    // /sys/fs/bpf/flowscope to the service's user).
    const pinPath = `/sys/fs/bpf/flowscope-test-nobody-${process.pid}`;
    try {
      await readyAndCounting(setprivWith({ uid: 65534, caps: ambient, ambient: true, noNewPrivs: true }), ['--pin-path', pinPath]);
    } finally {
      removePins(pinPath);
    }
  });

  it('DaemonSet capabilities, clsact forced (the path of kernels < 6.6): kill -9 and a new start take the filters over; a stop removes them', async () => {
    const caps = daemonSetCaps().map(setprivCap);
    const prefix = setprivWith({ uid: 0, caps, ambient: false, noNewPrivs: true });
    const pinPath = uniquePinPath();
    const start = async () => {
      const port = await freePort();
      const agent = startFlowscope(
        ['run', '--iface', pair.hostIf, '--listen', `127.0.0.1:${port}`, '--poll-interval', '200ms', '--tc-mechanism', 'clsact', '--pin-path', pinPath, '--log-format', 'json'],
        prefix,
      );
      expect(await waitForStatus(`http://127.0.0.1:${port}/readyz`, 200), agent.output()).toBe(200);
      return { agent, port };
    };
    try {
      const first = await start();
      expect(tcFilters(pair.hostIf, 'ingress')).toContain('flowscope_tc_in');
      first.agent.child.kill('SIGKILL');
      await first.agent.exited;
      expect(tcFilters(pair.hostIf, 'ingress')).toContain('flowscope_tc_in');
      const second = await start();
      try {
        const status = (await (await fetch(`http://127.0.0.1:${second.port}/api/v1/status`)).json()) as { pinned: { adopted: boolean; problems: string[] }; interfaces: { tcMechanism: string }[] };
        expect(status.pinned, second.agent.output()).toMatchObject({ adopted: true, problems: [] });
        expect(status.interfaces[0].tcMechanism).toBe('clsact');
        expect(tcFilters(pair.hostIf, 'ingress').match(/handle 0xf10c/g)).toHaveLength(1);
      } finally {
        expect(await second.agent.stop(), second.agent.output()).toBe(0);
      }
      expect(tcFilters(pair.hostIf, 'ingress')).toBe('');
      expect(tcFilters(pair.hostIf, 'egress')).toBe('');
      expect(hasClsact(pair.hostIf)).toBe(false);
    } finally {
      removePins(pinPath);
    }
  });

  it('each DaemonSet capability is needed: without it the agent exits 2 with a one-line reason', async () => {
    const caps = daemonSetCaps().map(setprivCap);
    for (const missing of caps) {
      const port = await freePort();
      const agent = startFlowscope(['run', '--iface', pair.hostIf, '--listen', `127.0.0.1:${port}`], setprivWith({ uid: 0, caps: caps.filter((c) => c !== missing), ambient: false, noNewPrivs: true }));
      const code = await Promise.race([agent.exited, new Promise<string>((r) => setTimeout(() => r('running'), 15_000))]);
      if (code === 'running') await agent.stop();
      expect(code, `without ${missing}: ${agent.output()}`).toBe(2);
      const lines = agent.output().trim().split('\n');
      expect(lines.length, agent.output()).toBe(1);
      expect(lines[0].toLowerCase()).toContain(`cap_${missing}`);
    }
  });

  it("the image's default non-root user without capabilities is refused with exit 2 (the agent needs --user 0 + caps)", async () => {
    const port = await freePort();
    const agent = startFlowscope(['run', '--iface', pair.hostIf, '--listen', `127.0.0.1:${port}`], setprivWith({ uid: 10001, caps: [], ambient: false, noNewPrivs: true }));
    const code = await Promise.race([agent.exited, new Promise<string>((r) => setTimeout(() => r('running'), 15_000))]);
    if (code === 'running') await agent.stop();
    expect(code, agent.output()).toBe(2);
    expect(agent.output()).toMatch(/CAP_BPF/);
  });
});
