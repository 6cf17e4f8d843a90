import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `pnpm test:browser`: only the tests that drive a real Chromium (Debian's package). Not
 * merged with the base config's test section: vitest would concatenate the include lists.
 */
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/browser/**/*.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 90_000,
    maxWorkers: 1,
  },
});
