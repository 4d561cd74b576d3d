import { describe, expect, it } from 'vitest';
import { missingPrerequisites, prerequisiteProblem, readHostFacts } from '../../src/datapath/prerequisites.js';

const caps = (...bits: number[]) => bits.reduce((m, b) => m | (1n << BigInt(b)), 0n).toString(16);
const kernel = '6.18.44-generic';

describe('prerequisites', () => {
  it('root (all capabilities) on a new kernel has everything', () => {
    expect(missingPrerequisites({ capEff: '000001ffffffffff', kernelRelease: kernel })).toEqual([]);
    expect(prerequisiteProblem({ capEff: '000001ffffffffff', kernelRelease: kernel })).toBeUndefined();
  });

  it('CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN is enough, and so is CAP_SYS_ADMIN + CAP_NET_ADMIN', () => {
    expect(missingPrerequisites({ capEff: caps(39, 38, 12), kernelRelease: kernel })).toEqual([]);
    expect(missingPrerequisites({ capEff: caps(21, 12), kernelRelease: kernel })).toEqual([]);
  });

  it('names each missing piece, in one line', () => {
    expect(missingPrerequisites({ capEff: '0', kernelRelease: kernel })).toEqual(['CAP_BPF (or CAP_SYS_ADMIN)', 'CAP_PERFMON (or CAP_SYS_ADMIN)', 'CAP_NET_ADMIN']);
    expect(missingPrerequisites({ capEff: caps(39, 12), kernelRelease: kernel })).toEqual(['CAP_PERFMON (or CAP_SYS_ADMIN)']);
    expect(missingPrerequisites({ capEff: caps(21), kernelRelease: '5.10.0-23-amd64' })).toEqual(['CAP_NET_ADMIN', 'Linux >= 5.15 (this is 5.10.0-23-amd64)']);
    const line = prerequisiteProblem({ capEff: caps(39, 12), kernelRelease: kernel })!;
    expect(line).not.toContain('\n');
    expect(line).toMatch(/^flowscope run needs CAP_PERFMON \(or CAP_SYS_ADMIN\): run as root, or grant/);
  });

  it('reads this process\'s real capabilities', () => {
    const facts = readHostFacts();
    expect(facts.capEff).toMatch(/^[0-9a-f]+$/);
    if (process.getuid?.() === 0) expect(missingPrerequisites(facts)).toEqual([]);
  });
});
