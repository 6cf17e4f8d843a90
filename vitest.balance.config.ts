import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `pnpm test:balance`: how the adaptive balancer shares reads between equal replicas. Run on
 * its own, one file at a time: beside other test files the two "equal" replicas are not equal
 * (one postgres gets less CPU for a while), and adaptive balancing rightly favours the faster.
 */
export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/balance/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
  },
});
