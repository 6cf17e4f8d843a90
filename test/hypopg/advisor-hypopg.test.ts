import { advisorSuite } from '../advisor/suite.js';

// `pnpm test:hypopg`: PGPULSE_PG_BIN points at a PostgreSQL with HypoPG (Debian's
// postgresql-15-hypopg); every case fails, never skips, when CREATE EXTENSION hypopg fails.
advisorSuite('hypopg');
