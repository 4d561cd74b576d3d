/**
 * Failures say what failed and what to do: errno, the call, and a hint.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelFlowSource } from '../../src/datapath/flow-source.js';
import { skipKernelTests } from '../helpers/kernel.js';
import { createVethPair, type VethPair } from '../helpers/netns.js';
import { iproute2BpffsCleanup } from '../helpers/iproute2-bpffs.js';

const skip = skipKernelTests('datapath errors');
const ROOT = new URL('../..', import.meta.url).pathname;

describe.skipIf(skip)('datapath errors', () => {
  let pair: VethPair;
  beforeAll(() => {
    pair = createVethPair(9);
  });
  afterAll(() => pair?.destroy());

  it('without privileges: EPERM from the load, with what to grant', () => {
    // setpriv drops to nobody with no capabilities; the files are world-readable.
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all',
      process.execPath, '--import', 'tsx', 'test/helpers/load-as-user.mts'], { cwd: ROOT, encoding: 'utf8' });
    const result = JSON.parse(out.trim().split('\n').pop()!);
    expect(result).toMatchObject({ code: 'EPERM', syscall: 'flowscope_bpf__load' });
    expect(result.message).toMatch(/^cannot load the BPF programs: .*Operation not permitted \(EPERM\)/);
    expect(result.hint).toMatch(/CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON/);
  });

  it('a missing interface is named', async () => {
    const source = new KernelFlowSource({ flowMapEntries: 64 });
    try {
      await expect(source.attach('fs-missing0', 'xdp')).rejects.toThrow('no such interface: fs-missing0 (see `ip link`)');
      await expect(source.attach('bad/name', 'tc')).rejects.toThrow('no such interface: bad/name');
      await expect(source.attach('999999', 'tc')).rejects.toThrow('no such interface: index 999999');
    } finally {
      await source.close();
    }
  });

  it('an XDP hook taken by another program: EEXIST, with what to do, and nothing half-attached', async () => {
    const obj = `${ROOT}bpf/.output/flowscope.bpf.o`;
    const removeBpffsDirs = iproute2BpffsCleanup();
    execFileSync('ip', ['link', 'set', 'dev', pair.hostIf, 'xdpgeneric', 'obj', obj, 'sec', 'xdp']);
    const source = new KernelFlowSource({ flowMapEntries: 64 });
    try {
      type AttachError = { message: string; code?: string; syscall?: string; hint?: string };
      const err = (await source.attach(pair.hostIf, 'xdp').catch((e: unknown) => e)) as AttachError;
      expect(err).toMatchObject({ code: 'EEXIST', syscall: 'bpf_link_create(BPF_XDP) [xdp]' });
      expect(err.message).toMatch(new RegExp(`cannot attach to ${pair.hostIf} \\(xdp\\)`));
      expect(err.hint).toMatch(/another XDP program is attached.*--hook tc/);
      expect(source.attachments()).toEqual([]);
      // the tc-egress half was never attached, so tc mode still works
      await source.attach(pair.hostIf, 'tc');
    } finally {
      await source.close();
      execFileSync('ip', ['link', 'set', 'dev', pair.hostIf, 'xdpgeneric', 'off']);
      removeBpffsDirs();
    }
  });

  it('rejects bad options before touching the kernel', () => {
    expect(() => new KernelFlowSource({ flowMapEntries: 3 })).toThrow('flowMapEntries must be an integer from 16 to 16777216, got 3');
    expect(() => new KernelFlowSource({ flowMapEntries: 1.5 })).toThrow(/flowMapEntries must be an integer/);
    expect(() => new KernelFlowSource({ tcMechanism: 'bogus' as 'tcx' })).toThrow('tcMechanism must be tcx or clsact, got bogus');
  });
});
