import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `pnpm test:etcd`: the failover coordinator's tests against a real etcd (Debian's
 * `etcd-server`, which .ci/run installs). They fail, never skip, when etcd is missing.
 */
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/etcd/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
  },
});
