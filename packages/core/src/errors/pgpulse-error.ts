/**
 * The base of every error pgpulse raises: a stable `code`, whether a retry may succeed, and a
 * message that says what happened and how to fix it. Its own module so that the error files
 * beside it can extend it without importing errors/index.ts.
 */
export class PgPulseError extends Error {
  /** A stable machine-readable code, e.g. `PGPULSE_POOL_TIMEOUT`. */
  readonly code: string;
  /** True when trying the same operation again later may succeed. */
  readonly retriable: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; retriable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options?.retriable ?? false;
  }
}
