import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string, entry = 'index') =>
  fileURLToPath(new URL(`./packages/${pkg}/src/${entry}.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@pgpulse/core': src('core'),
      // Before '@pgpulse/sandbox', which would otherwise match the subpath as a prefix.
      '@pgpulse/sandbox/testing': src('sandbox', 'testing/index'),
      '@pgpulse/sandbox': src('sandbox'),
      '@pgpulse/drizzle': src('drizzle'),
      '@pgpulse/prisma': src('prisma'),
      '@pgpulse/typeorm': src('typeorm'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    // Browser tests need Chromium: they run as `pnpm test:browser` (vitest.browser.config.ts).
    // HypoPG tests need Debian's PostgreSQL 15 + HypoPG: `pnpm test:hypopg` (vitest.hypopg.config.ts).
    exclude: [
      '**/node_modules/**',
      'test/browser/**',
      'test/etcd/**',
      'test/pgbouncer/**',
      'test/hypopg/**',
      'test/balance/**',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file starts its own PostgreSQL cluster; two cores cannot run many at once.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
