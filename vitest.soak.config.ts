import { defineConfig } from 'vitest/config';

// The soak test (npm run soak): minutes long, so outside `npm test`.
export default defineConfig({
  test: {
    include: ['test/soak/**/*.soak.ts'],
    fileParallelism: false,
    testTimeout: 3_600_000,
    hookTimeout: 120_000,
  },
});
