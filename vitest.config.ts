import { defineConfig } from 'vitest/config';

// Kernel tests create namespaces, attach programs and measure traffic: they run
// one file at a time so two files never fight over CPUs or interface counters.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
