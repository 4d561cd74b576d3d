import { defineConfig } from 'vitest/config';

// Kernel tests create namespaces, attach programs and measure traffic: they run
// one file at a time so two files never fight over CPUs or interface counters.
export default defineConfig({
  test: {
    // Agents started by tests pin under their own bpffs directory (test/helpers/pins.ts).
    env: { FLOWSCOPE_PIN_PATH: '/sys/fs/bpf/flowscope-test' },
    globalSetup: ['test/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
