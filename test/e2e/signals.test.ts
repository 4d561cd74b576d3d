/**
 * Signals and uninstall with the real agent (issue 9): SIGHUP before the
 * agent is ready does not kill it; a second SIGTERM during the stop does not
 * skip the clean-up; `flowscope detach` removes what a --keep-attached stop
 * left, and refuses while an agent runs.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { eventually } from '../helpers/eventually.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { flowscopeTcxLinks, tcFilters } from '../helpers/kernel-objects.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { removePins, uniquePinPath } from '../helpers/pins.js';
import { freePort } from '../helpers/ports.js';

const skip = skipKernelTests('signals and detach');
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const DIST_MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function flowscope(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(skip)('signals and flowscope detach', () => {
  let pair: VethPair;
  const agents: AgentProcess[] = [];
  const pinPaths: string[] = [];
  const pinPath = () => {
    const p = uniquePinPath();
    pinPaths.push(p);
    return p;
  };

  beforeAll(() => {
    pair = createVethPair(64);
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    for (const p of pinPaths) removePins(p);
    pair?.destroy();
  });

  it('SIGHUP before the agent is ready does not end it', async () => {
    const port = await freePort();
    const pins = pinPath();
    // The built command, as deployed: its first module takes SIGHUP within Node's start-up (tsx would add seconds).
    const child = spawn(process.execPath, [DIST_MAIN, 'run', '--iface', pair.hostIf, '--listen', `127.0.0.1:${port}`, '--pin-path', pins, '--log-format', 'json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // From the moment the command has taken SIGHUP (its first module does, within Node's start-up:
      // the kernel shows it in SigCgt) until ready, every 50 ms.
      const takesSighup = () => (BigInt(`0x${/SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]}`) & 1n) === 1n;
      await eventually(() => takesSighup(), 'the command takes SIGHUP', 30_000);
      expect(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)).toBe(false);
      const hups = setInterval(() => child.kill('SIGHUP'), 50);
      try {
        await eventually(async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}): ${out.slice(-500)}`);
          return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok === true;
        }, 'ready under SIGHUPs', 30_000);
      } finally {
        clearInterval(hups);
      }
      expect(child.exitCode).toBe(null);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('a second SIGTERM during the stop does not skip the clean-up', async () => {
    const pins = pinPath();
    const before = new Set(flowscopeTcxLinks());
    const agent = await startAgent(['--iface', pair.hostIf, '--pin-path', pins]);
    agents.push(agent);
    // (bpftool of Debian 12 shows no interface for TCX links: the agent's are the ones that appeared.)
    const its = flowscopeTcxLinks().filter((id) => !before.has(id));
    expect(its).toHaveLength(2);
    agent.child.kill('SIGTERM');
    agent.child.kill('SIGTERM');
    agent.child.kill('SIGINT');
    expect(await agent.exited, agent.output()).toBe(0);
    expect(agent.output()).toContain('already stopping');
    expect(flowscopeTcxLinks().filter((id) => its.includes(id))).toEqual([]);
    expect(existsSync(pins)).toBe(false);
  });

  it('flowscope detach removes what a --keep-attached stop left, and refuses while an agent runs', async () => {
    const pins = pinPath();
    const agent = await startAgent(['--iface', pair.hostIf, '--pin-path', pins, '--keep-attached', '--tc-mechanism', 'clsact']);
    agents.push(agent);
    const running = flowscope(['detach', '--pin-path', pins]);
    expect(running.status).toBe(1);
    expect(running.stderr.trim().split('\n')).toHaveLength(1);
    expect(running.stderr).toMatch(/a running flowscope agent \(pid \d+, started .*, API http:\/\/127\.0\.0\.1:\d+\) owns .*; stop it first/);

    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(tcFilters(pair.hostIf, 'ingress')).toContain('flowscope_tc_in');
    expect(existsSync(path.join(pins))).toBe(true);

    const done = flowscope(['detach', '--pin-path', pins]);
    expect(done.status, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^detached: removed 0 links, 2 tc filters from 1 pinned node state\(s\) under /);
    expect(tcFilters(pair.hostIf, 'ingress')).toBe('');
    expect(tcFilters(pair.hostIf, 'egress')).toBe('');
    expect(execFileSync('tc', ['qdisc', 'show', 'dev', pair.hostIf], { encoding: 'utf8' })).not.toContain('clsact');
    expect(existsSync(pins)).toBe(false);
    // Nothing left: a second run finds nothing and says so.
    expect(flowscope(['detach', '--pin-path', pins]).stdout).toMatch(/removed 0 links, 0 tc filters from 0 pinned/);
    expect(flowscope(['detach', '--pin-path', 'relative/path']).status).toBe(2);
  });
});
