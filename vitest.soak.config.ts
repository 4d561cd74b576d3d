import { defineConfig } from 'vitest/config';

// The soak test (npm run soak): minutes long, so outside `npm test`.
export default defineConfig({
  test: {
    // Agents started by tests pin under their own bpffs directory (test/helpers/pins.ts).
    env: { FLOWSCOPE_PIN_PATH: '/sys/fs/bpf/flowscope-test' },
    globalSetup: ['test/global-setup.ts'],
    include: ['test/soak/**/*.soak.ts'],
    fileParallelism: false,
    testTimeout: 3_600_000,
    hookTimeout: 120_000,
  },
});
