import { IndexMaintenanceError } from '../errors/index.js';
import { errorCode } from '../sql/index.js';

/**
 * Checked readers of the rows a driver returns, and the typed failure of index DDL. The DDL
 * builders themselves are in sql/index-ddl.ts.
 */

// ---------------------------------------------------------------------------------------------
// Reading rows: every value from a driver is checked before use.

export type Row = Readonly<Record<string, unknown>>;

export function asRow(value: unknown): Row {
  return typeof value === 'object' && value !== null ? (value as Row) : {};
}

export function num(value: unknown): number | undefined {
  const n = typeof value === 'string' || typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function bool(value: unknown): boolean {
  return value === true || value === 't' || value === 'true';
}

/** A json/jsonb column: parsed by pg already, or JSON text from a driver that does not. */
export function json(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

export function timestamp(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  return typeof value === 'string' ? value : undefined;
}

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Wraps a server error from index DDL. Data and integrity errors (SQLSTATE classes 22, 23)
 * quote row values ("Key (email)=(...) is duplicated"), so their text is withheld and the
 * original error not attached (invariant 6); other messages name objects and are kept.
 */
export function ddlFailure(what: string, error: unknown): IndexMaintenanceError {
  if (error instanceof IndexMaintenanceError) return error;
  const code = errorCode(error);
  if (code === undefined || code.startsWith('22') || code.startsWith('23')) {
    const why = code === undefined ? 'the server or connection failed' : `SQLSTATE ${code}`;
    return new IndexMaintenanceError(
      `${what} failed: ${why} (message withheld: it may quote a value).`,
      code,
    );
  }
  const text = error instanceof Error ? error.message : String(error);
  return new IndexMaintenanceError(`${what} failed: ${text} (SQLSTATE ${code}).`, code, {
    cause: error,
  });
}
