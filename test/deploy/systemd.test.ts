/**
 * deploy/systemd: the unit passes `systemd-analyze verify` and the offline
 * security review, keeps its privileges to CAP_BPF, CAP_PERFMON and
 * CAP_NET_ADMIN, and its environment file names only options `flowscope run`
 * knows (and is accepted by its parser). privileges.test.ts runs the real
 * agent under the unit's capability set.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunConfig } from '../../src/cli/run.js';
import { envName, RUN_OPTIONS } from '../../src/config/config.js';
import { DEPLOY, requireTool, unitDirectives } from './deploy-helpers.js';

const UNIT = join(DEPLOY, 'systemd', 'flowscope.service');
const ENV_FILE = join(DEPLOY, 'systemd', 'flowscope.env');
const ANALYZE = '/usr/bin/systemd-analyze';

let tmp: string;
let verifyCopy: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'flowscope-systemd-'));
  // systemd-analyze verify checks that ExecStart's binary exists: the unit
  // names /usr/bin/node (Debian's nodejs, NodeSource); where Node.js lives
  // elsewhere, verify a copy that names this Node.js instead.
  let text = readFileSync(UNIT, 'utf8');
  if (!existsSync('/usr/bin/node')) text = text.replaceAll('/usr/bin/node ', `${process.execPath} `);
  verifyCopy = join(tmp, 'flowscope.service');
  writeFileSync(verifyCopy, text);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('systemd unit', () => {
  it('passes systemd-analyze verify', () => {
    if (!requireTool(ANALYZE, 'systemd')) return;
    const r = spawnSync(ANALYZE, ['verify', verifyCopy], { encoding: 'utf8', timeout: 60_000 });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('passes the offline security review with an exposure of at most 2.5', () => {
    if (!requireTool(ANALYZE, 'systemd')) return;
    const r = spawnSync(ANALYZE, ['security', '--offline=yes', '--threshold=25', '--no-pager', verifyCopy], { encoding: 'utf8', timeout: 60_000 });
    const level = /Overall exposure level for [^:]+: ([\d.]+)/.exec(r.stdout)?.[1];
    expect(Number(level), r.stdout.slice(-400)).toBeLessThanOrEqual(2.5);
    expect(r.status).toBe(0);
  });

  it('holds exactly CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, as an unprivileged user', () => {
    const d = unitDirectives(readFileSync(UNIT, 'utf8'));
    const set = (k: string) => d.get(k)!.join(' ').split(/\s+/).sort();
    expect(set('CapabilityBoundingSet')).toEqual(['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_PERFMON']);
    expect(set('AmbientCapabilities')).toEqual(['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_PERFMON']);
    expect(d.get('DynamicUser')).toEqual(['yes']);
    expect(d.get('NoNewPrivileges')).toEqual(['yes']);
    expect(d.get('PrivateUsers')).toEqual(['no']); // capabilities must count in the host user namespace
  });

  it('is hardened, without the settings that would break the agent', () => {
    const d = unitDirectives(readFileSync(UNIT, 'utf8'));
    for (const [k, v] of Object.entries({
      ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes', ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes', ProtectControlGroups: 'yes', RestrictNamespaces: 'yes', LockPersonality: 'yes',
      SystemCallArchitectures: 'native', RestrictSUIDSGID: 'yes',
    })) expect(d.get(k), k).toEqual([v]);
    expect(d.get('RestrictAddressFamilies')![0].split(' ').sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
    expect(d.get('SystemCallFilter')).toEqual(['@system-service bpf']);
    // V8's JIT needs W+X memory; a network monitor needs the host network.
    expect(d.has('MemoryDenyWriteExecute')).toBe(false);
    expect(d.has('PrivateNetwork')).toBe(false);
    expect(d.has('ProcSubset')).toBe(false);
  });

  it('stops with SIGTERM within a bound, restarts on failure, reloads with SIGHUP', () => {
    const d = unitDirectives(readFileSync(UNIT, 'utf8'));
    expect(d.get('KillSignal')).toEqual(['SIGTERM']);
    expect(d.get('TimeoutStopSec')).toEqual(['30s']);
    expect(d.get('Restart')).toEqual(['on-failure']);
    expect(d.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(d.get('EnvironmentFile')).toEqual(['/etc/flowscope/flowscope.env']);
    expect(d.get('ExecStart')![0]).toMatch(/^\/usr\/bin\/node \/opt\/flowscope\/dist\/cli\/main\.js run --keep-attached$/);
    // Restarts hand the pinned state over: the service's user owns it, and bpffs is writable.
    expect(d.get('ExecStartPre')![0]).toMatch(/^\+\/bin\/sh -c 'mkdir -p \/sys\/fs\/bpf\/flowscope && chown -R flowscope: \/sys\/fs\/bpf\/flowscope'$/);
    expect(d.get('ReadWritePaths')).toEqual(['/sys/fs/bpf']);
  });
});

describe('systemd environment file', () => {
  const lines = () => readFileSync(ENV_FILE, 'utf8').split('\n');
  const known = new Set([...Object.keys(RUN_OPTIONS).map(envName), 'FLOWSCOPE_CONFIG']);

  it('names only variables `flowscope run` reads, set or commented out', () => {
    const names = lines().flatMap((l) => [.../^#?\s*(FLOWSCOPE_[A-Z0-9_]+)=/.exec(l.trim())?.slice(1) ?? []]);
    expect(names.length).toBeGreaterThan(8);
    for (const n of names) expect(known, n).toContain(n);
  });

  it('its settings and the config file it names are accepted by `flowscope run`; the interfaces live in the file', () => {
    const env: Record<string, string> = {};
    for (const l of lines()) {
      const m = /^(FLOWSCOPE_[A-Z0-9_]+)=(.*)$/.exec(l.trim());
      if (m) env[m[1]] = m[2];
    }
    // SIGHUP re-reads the config file, never the environment: the interface list must be in the file.
    expect(env.FLOWSCOPE_IFACE).toBeUndefined();
    expect(env.FLOWSCOPE_CONFIG).toBe('/etc/flowscope/flowscope.yaml');
    const { config } = loadRunConfig([], { ...env, FLOWSCOPE_CONFIG: join(DEPLOY, 'systemd', 'flowscope.yaml') });
    expect(config.ifaces).toEqual(['eth0']);
    expect(config.listen).toBe(env.FLOWSCOPE_LISTEN);
    expect(config.logFormat).toBe('json');
  });
});
