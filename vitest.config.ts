import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) =>
  fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      '@pgpulse/core': src('core'),
      '@pgpulse/sandbox': src('sandbox'),
      '@pgpulse/drizzle': src('drizzle'),
      '@pgpulse/prisma': src('prisma'),
      '@pgpulse/typeorm': src('typeorm'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each file starts its own PostgreSQL cluster; two cores cannot run many at once.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
