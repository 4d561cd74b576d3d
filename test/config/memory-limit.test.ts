/** --memory-limit, the max-flows it affords, and --tcp-syn-timeout. */
import { describe, expect, it } from 'vitest';
import { ConfigError, optionsHelp, resolveConfig, RUN_OPTIONS } from '../../src/config/config.js';
import {
  BYTES_PER_FLOW,
  MIN_BUDGET_FLOWS,
  formatBytes,
  kernelMapBytes,
  memoryBudget,
  parseBytes,
  possibleCpus,
} from '../../src/engine/memory-budget.js';

const MiB = 1024 * 1024;
const resolve = (flags: Record<string, string> = {}, env: NodeJS.ProcessEnv = {}, cpus = 2) =>
  resolveConfig({ flags: { iface: ['eth0'], ...flags }, env, possibleCpus: cpus });

describe('memory sizes', () => {
  it('parses Kubernetes-style units and bytes', () => {
    expect(parseBytes('512Mi')).toBe(512 * MiB);
    expect(parseBytes('512MiB')).toBe(512 * MiB);
    expect(parseBytes('1Gi')).toBe(1024 * MiB);
    expect(parseBytes('1.5G')).toBe(1.5e9);
    expect(parseBytes('64k')).toBe(64_000);
    expect(parseBytes('536870912')).toBe(536_870_912);
    for (const bad of ['', 'Mi', '-1Gi', '1 Gibibyte', '1e9', '12X']) expect(parseBytes(bad)).toBeUndefined();
    expect(formatBytes(512 * MiB)).toBe('512Mi');
    expect(formatBytes(1024 * MiB)).toBe('1Gi');
  });

  it('counts possible CPUs from the kernel list', () => {
    expect(possibleCpus(() => '0-63\n')).toBe(64);
    expect(possibleCpus(() => '0,2-5')).toBe(5);
    expect(possibleCpus(() => '0')).toBe(1);
    expect(possibleCpus(() => 'garbage')).toBeGreaterThan(0); // falls back to os.cpus()
  });
});

describe('memory budget', () => {
  const base = { memoryLimit: 512 * MiB, flowMapSize: 65_536, possibleCpus: 2, storeSize: 262_144, pollIntervalMs: 1000, topBucketMs: 10_000, redisBuffer: 0 };

  it('gives max-flows what is left after the kernel maps, buffers, store and runtime, less one drain', () => {
    const b = memoryBudget(base);
    expect(b.kernelMaps).toBe(2 * 65_536 * (48 + 72 + 80));
    const fixed = b.kernelMaps + b.drainBuffers + b.store + b.interfaceHistory + b.runtime;
    expect(b.slots).toBe(Math.floor((512 * MiB - fixed) / BYTES_PER_FLOW));
    expect(b.maxFlows).toBe(b.slots - 65_536);
    expect(b.floodSlots).toBe(11 * 65_536);
    expect(b.fits).toBe(true);
    // The record store's index (40 B per record, 10 MiB at 262,144) leaves the default 512 MiB about 10 MB short of a kernel-rate flood's slots: said (floodFits), not hidden.
    expect(b.floodFits).toBe(false);
    expect((b.floodSlots - b.slots) * BYTES_PER_FLOW).toBeLessThan(12 * MiB);
    expect(b.maxFlows).toBeGreaterThan(600_000);
  });

  it('shrinks with more CPUs, a bigger map, a store and a Redis queue', () => {
    const b = memoryBudget(base).maxFlows;
    expect(memoryBudget({ ...base, possibleCpus: 3 }).maxFlows).toBeLessThan(b);
    expect(memoryBudget({ ...base, storeSize: 1_000_000 }).maxFlows).toBeLessThan(b);
    expect(memoryBudget({ ...base, redisBuffer: 200_000 }).maxFlows).toBe(b - Math.ceil((200_000 * 508) / BYTES_PER_FLOW));
    expect(memoryBudget({ ...base, memoryLimit: 1024 * MiB }).maxFlows).toBeGreaterThan(2 * b);
  });

  it('says when the budget cannot hold a flood, and never goes below one drain of flows', () => {
    expect(memoryBudget({ ...base, possibleCpus: 16 })).toMatchObject({ fits: true, floodFits: false });
    const big = memoryBudget({ ...base, possibleCpus: 64 });
    expect(big.kernelMaps).toBe(kernelMapBytes(65_536, 64));
    expect(big.fits).toBe(false);
    expect(big.maxFlows).toBe(MIN_BUDGET_FLOWS);
    expect(memoryBudget({ ...base, possibleCpus: 64, memoryLimit: 1536 * MiB })).toMatchObject({ fits: true, floodFits: true });
  });
});

describe('run options', () => {
  it('defaults max-flows from a 512Mi memory-limit, and takes an explicit max-flows as given', () => {
    const c = resolve();
    expect(c.memoryLimit).toBe(512 * MiB);
    expect(c.maxFlowsFrom).toBe('memory-limit');
    expect(c.maxFlows).toBe(c.memoryBudget.maxFlows);
    const explicit = resolve({ 'max-flows': '100000' });
    expect(explicit.maxFlows).toBe(100_000);
    expect(explicit.maxFlowsFrom).toBe('max-flows');
    expect(resolve({ 'memory-limit': '1Gi' }).maxFlows).toBeGreaterThan(c.maxFlows);
    expect(resolve({}, { FLOWSCOPE_MEMORY_LIMIT: '768Mi' }).memoryLimit).toBe(768 * MiB);
    expect(resolveConfig({ flags: { iface: ['eth0'] }, env: {}, file: { 'memory-limit': 600 * MiB }, possibleCpus: 2 }).memoryLimit).toBe(600 * MiB);
  });

  it('refuses sizes that are not sizes or out of range, in one line', () => {
    expect(() => resolve({ 'memory-limit': 'lots' })).toThrow(ConfigError);
    expect(() => resolve({ 'memory-limit': '1Mi' })).toThrow(/--memory-limit: "1Mi" must be a size from 64Mi/);
  });

  it('has a 20 s SYN timeout by default', () => {
    expect(resolve().tcpSynTimeoutMs).toBe(20_000);
    expect(resolve({ 'tcp-syn-timeout': '5s' }).tcpSynTimeoutMs).toBe(5000);
    expect(() => resolve({ 'tcp-syn-timeout': '10ms' })).toThrow(ConfigError);
    expect(optionsHelp(RUN_OPTIONS)).toMatch(/--memory-limit .*\(default 512Mi\)/);
    expect(optionsHelp(RUN_OPTIONS)).toMatch(/--tcp-syn-timeout .*\(default 20s\)/);
  });
});
