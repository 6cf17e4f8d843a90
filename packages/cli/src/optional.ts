/**
 * The demo and the sandbox need packages that a CLI-only install (`npm install -g pgpulse` for
 * `doctor`, `analyze`, `indexes`) does not bring: they are optional peer dependencies, checked
 * here before the command imports them, so that a missing one is a clear message instead of
 * ERR_MODULE_NOT_FOUND from deep inside.
 */
import { PgPulseError } from '@pgpulse/core';

/** What a command needs beyond the CLI's own dependencies. */
export const DEMO_PACKAGES = [
  '@pgpulse/sandbox',
  '@pgpulse/drizzle',
  '@pgpulse/prisma',
  '@pgpulse/typeorm',
  'drizzle-orm',
  '@prisma/client',
  '@prisma/adapter-pg',
  'typeorm',
  'reflect-metadata',
] as const;
export const SANDBOX_PACKAGES = ['@pgpulse/sandbox'] as const;

/** The error a command reports (exit 2) when optional packages are not installed. */
export class MissingPackagesError extends PgPulseError {
  constructor(
    readonly command: string,
    readonly missing: readonly string[],
  ) {
    super(
      'PGPULSE_MISSING_PACKAGES',
      `pgpulse ${command} needs ${missing.join(', ')}, which this install does not have. Install them beside pgpulse: npm install ${missing.join(' ')}`,
    );
  }
}

/** Throws MissingPackagesError naming every package of `names` that cannot be resolved. */
export function requirePackages(command: string, names: readonly string[]): void {
  const missing = names.filter((name) => !resolvable(name));
  if (missing.length > 0) throw new MissingPackagesError(command, missing);
}

function resolvable(name: string): boolean {
  try {
    import.meta.resolve(name);
    return true;
  } catch {
    return false;
  }
}
