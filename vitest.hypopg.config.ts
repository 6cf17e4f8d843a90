import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `pnpm test:hypopg`: the advisor suite through HypoPG, on a PostgreSQL that has it
 * (PGPULSE_PG_BIN, default Debian's /usr/lib/postgresql/15/bin with postgresql-15-hypopg).
 * The cases fail, never skip, when CREATE EXTENSION hypopg fails.
 */
process.env.PGPULSE_PG_BIN ??= '/usr/lib/postgresql/15/bin';

export default defineConfig({
  resolve: base.resolve,
  test: {
    include: ['test/hypopg/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    maxWorkers: 1,
  },
});
