#!/usr/bin/env node
/** The pgpulse command line. */
import { Command } from 'commander';
import { registerDashboard } from './commands/dashboard.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerOptimize } from './commands/optimize.js';
import { registerSandbox } from './commands/sandbox.js';

const program = new Command('pgpulse')
  .description('PostgreSQL primary/replica routing, failover and query insight for TypeScript ORMs')
  .showHelpAfterError()
  // Usage errors exit 2, so that 1 keeps meaning "an invariant broke" (demo) or "the primary is
  // unreachable" (doctor).
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));
registerDemo(program);
registerSandbox(program);
registerDoctor(program);
registerDashboard(program);
registerOptimize(program);

await program.parseAsync(process.argv);
