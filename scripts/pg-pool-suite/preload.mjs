// Loaded with `node --import` before each pg-pool test file (and the children it forks): makes
// pgpulse's TypeScript sources importable and puts the pieces the shim needs on globalThis,
// because the suite's `require('../')` is synchronous and pgpulse is an ES module.
import { register } from 'tsx/esm/api';

// The script points at the built JavaScript; TypeScript sources need tsx.
if (process.env.PGPULSE_CORE_ENTRY?.endsWith('.ts')) register();
const core = await import(process.env.PGPULSE_CORE_ENTRY);
globalThis.__pgpulseSuite = core;
