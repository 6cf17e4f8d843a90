import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `pnpm test:pgbouncer`: a node behind PgBouncer in transaction mode (Debian's `pgbouncer`,
 * which .ci/run installs). They fail, never skip, when pgbouncer is missing.
 */
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/pgbouncer/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
  },
});
