/**
 * Nothing outlives the agent unnoticed: detach and close leave no program,
 * filter or qdisc behind; an unpinned source's TCX and XDP links die with its
 * process; a pinned one's attachments, clsact filters included, are adopted by
 * the next start (test/datapath/pinning.test.ts has the counts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { eventually, hasClsact, hasXdp, stillLoaded, tcFilters } from '../helpers/kernel-objects.js';
import { stop, waitForOutput } from '../helpers/processes.js';

const skip = skipKernelTests('datapath lifecycle');
const CHILD = new URL('../helpers/attach-child.ts', import.meta.url).pathname;

async function startChild(iface: string, mode: string, mechanism: string, pinDir?: string): Promise<{ child: ChildProcess; progIds: number[] }> {
  // one process (no tsx wrapper), so that SIGKILL hits the one holding the links
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, iface, mode, mechanism, ...(pinDir ? [pinDir] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let line = '';
  child.stdout!.on('data', (d: Buffer) => (line += d.toString()));
  await waitForOutput(child, 'attached', 30_000);
  const info = JSON.parse(line.slice(line.indexOf('{'), line.indexOf('\n', line.indexOf('attached')))) as { progIds: number[] };
  return { child, progIds: info.progIds };
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe.skipIf(skip)('attach, detach and crash recovery', () => {
  let pair: VethPair;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    pair = createVethPair(6);
  });
  afterAll(() => {
    children.forEach(stop);
    pair?.destroy();
  });

  it.each([
    ['tc', 'tcx'],
    ['tc', 'clsact'],
    ['xdp', 'tcx'],
  ] as const)('%s mode via %s: close leaves nothing', async (mode, mechanism) => {
    const source = new KernelFlowSource({ flowMapEntries: 256, tcMechanism: mechanism });
    const progIds = Object.values(source.nativeDatapath.info().progIds);
    try {
      const a = await source.attach(pair.hostIf, mode);
      expect(a.tcMechanism).toBe(mechanism);
      expect(hasXdp(pair.hostIf)).toBe(mode === 'xdp');
      if (mechanism === 'clsact') {
        expect(tcFilters(pair.hostIf, 'egress')).toContain('flowscope_tc_eg');
        expect(hasClsact(pair.hostIf)).toBe(true);
      }
      await expect(source.attach(pair.hostIf, mode)).rejects.toThrow(/already attached/);
    } finally {
      await source.close();
    }
    await source.close(); // idempotent
    expect(hasXdp(pair.hostIf)).toBe(false);
    expect(tcFilters(pair.hostIf, 'ingress')).toBe('');
    expect(tcFilters(pair.hostIf, 'egress')).toBe('');
    expect(hasClsact(pair.hostIf)).toBe(false);
    await eventually(() => stillLoaded(progIds).length === 0, `programs ${progIds} unloaded`);
  });

  it('detach of one interface leaves the others attached', async () => {
    const other = createVethPair(8);
    let source: KernelFlowSource | undefined;
    try {
      source = new KernelFlowSource({ flowMapEntries: 256 });
      await source.attach(pair.hostIf, 'xdp');
      await source.attach(other.hostIf, 'xdp');
      await source.detach(pair.hostIf);
      expect(hasXdp(pair.hostIf)).toBe(false);
      expect(hasXdp(other.hostIf)).toBe(true);
      expect(source.attachments().map((a) => a.iface)).toEqual([other.hostIf]);
      await expect(source.detach(pair.hostIf)).rejects.toThrow(/not attached/);
      // by index: the same interface, so refused as already attached
      const index = source.attachments()[0].ifindex;
      await expect(source.attach(String(index), 'tc')).rejects.toThrow(`${other.hostIf} is already attached`);
      await source.detach(other.hostIf);
      expect((await source.attach(String(index), 'tc')).iface).toBe(other.hostIf);
    } finally {
      await source?.close();
      other.destroy();
    }
  });

  it.each([
    ['tc', 'tcx'],
    ['xdp', 'tcx'],
  ] as const)('a SIGKILLed agent (%s via %s links) leaves nothing: the kernel drops its links', async (mode, mechanism) => {
    const { child, progIds } = await startChild(pair.hostIf, mode, mechanism);
    children.push(child);
    expect(stillLoaded(progIds)).toEqual(progIds);
    expect(hasXdp(pair.hostIf)).toBe(mode === 'xdp');
    await killHard(child);
    await eventually(() => stillLoaded(progIds).length === 0, `programs ${progIds} of the killed agent unloaded`);
    expect(hasXdp(pair.hostIf)).toBe(false);
    expect(tcFilters(pair.hostIf, 'ingress')).toBe('');
  });

  it('a SIGKILLed pinned agent\'s clsact filters stay counting and are adopted by the next start', async () => {
    const pinDir = `/sys/fs/bpf/flowscope-test-${process.pid}/lifecycle`;
    const { child, progIds } = await startChild(pair.hostIf, 'tc', 'clsact', pinDir);
    children.push(child);
    await killHard(child);
    // The filters hold the tc programs (the first two ids); the kernel keeps them.
    const tcProgIds = progIds.slice(0, 2);
    expect(tcFilters(pair.hostIf, 'ingress')).toContain('flowscope_tc_in');
    expect(tcFilters(pair.hostIf, 'egress')).toContain('flowscope_tc_eg');
    expect(stillLoaded(tcProgIds)).toEqual(tcProgIds);

    const source = new KernelFlowSource({ flowMapEntries: 256, tcMechanism: 'clsact', pinDir });
    try {
      expect(source.attachments()).toMatchObject([{ iface: pair.hostIf, mode: 'tc', tcMechanism: 'clsact', adopted: true }]);
      await source.attach(pair.hostIf, 'tc');
      // The same filter now runs this process's program; the dead agent's are unloaded.
      await eventually(() => stillLoaded(tcProgIds).length === 0, 'the dead agent\'s programs unloaded');
      const mine = Object.values(source.nativeDatapath.info().progIds).filter((id) => id > 0);
      expect(tcFilters(pair.hostIf, 'ingress')).toContain('flowscope_tc_in');
      expect(tcFilters(pair.hostIf, 'ingress').match(/handle 0xf10c/g)).toHaveLength(1);
      expect(stillLoaded(mine).length).toBeGreaterThan(0);
    } finally {
      await source.close();
    }
    expect(tcFilters(pair.hostIf, 'ingress')).toBe('');
    expect(tcFilters(pair.hostIf, 'egress')).toBe('');
    expect(hasClsact(pair.hostIf)).toBe(false);
    expect(existsSync(pinDir)).toBe(false);
    rmSync(`/sys/fs/bpf/flowscope-test-${process.pid}`, { recursive: true, force: true });
  });

  it('says what is wrong with a missing interface', async () => {
    const source = new KernelFlowSource({ flowMapEntries: 256 });
    try {
      await expect(source.attach('fs-no-such0', 'tc')).rejects.toThrow('no such interface: fs-no-such0');
    } finally {
      await source.close();
    }
  });
});
