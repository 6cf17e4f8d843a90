import { loadModule } from 'libpg-query';
import { PgPulseError } from '../errors/index.js';

/**
 * libpg-query's WASM parser, loaded once per process. The classifier, fingerprints and the
 * advisors parse synchronously, so each caller awaits loadParser() once before its first use.
 */

let parserLoaded = false;
let parserLoading: Promise<void> | undefined;

/** Loads libpg-query's WASM once; later calls share the same promise. */
export function loadParser(): Promise<void> {
  if (parserLoading === undefined) {
    parserLoading = loadModule().then(
      () => {
        parserLoaded = true;
      },
      (error: unknown) => {
        // Forget the failure so a later call can retry (e.g. after a transient fs error).
        parserLoading = undefined;
        throw new PgPulseError(
          'PGPULSE_PARSER_LOAD',
          `Could not load the PostgreSQL parser (libpg-query WASM): ${describe(error)}`,
          { cause: error },
        );
      },
    );
  }
  return parserLoading;
}

export function isParserLoaded(): boolean {
  return parserLoaded;
}

/** What the classifier throws when used before loadParser() resolved. */
export function parserNotLoaded(): PgPulseError {
  return new PgPulseError(
    'PGPULSE_PARSER_NOT_LOADED',
    'The SQL classifier was used before its parser was loaded: await loadParser() once at ' +
      'start-up before classifying statements.',
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
