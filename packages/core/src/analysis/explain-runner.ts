import { ExplainError } from '../errors/index.js';
import { errorCode, type QueryClient } from '../sql/index.js';
import { functionsAreStable } from './catalog.js';
import { type ExplainResult, parseExplainJson } from './plan.js';
import type { StatementShape } from './statement.js';

/**
 * How a plan was obtained:
 * - 'explain': plain EXPLAIN, with the statement's parameter values when it had some;
 * - 'generic': EXPLAIN (GENERIC_PLAN) of `$n` text without values (PostgreSQL 16+);
 * - 'generic-prepared': the same before 16, via PREPARE + force_generic_plan + EXECUTE(NULL...);
 * - 'analyze': EXPLAIN ANALYZE of a provably read-only statement inside BEGIN READ ONLY.
 */
export type ExplainMode = 'explain' | 'generic' | 'generic-prepared' | 'analyze';

export const GENERIC_PLAN_VERSION = 160_000;

/**
 * Wraps an error from the server. Data exceptions (SQLSTATE class 22) quote the offending
 * value ("invalid input syntax for type integer: ..."), which may be a bound parameter or a
 * literal, so for them, and whenever parameters were bound, only the SQLSTATE is kept and the
 * original error is not attached (invariant 6). Other messages (a missing table, a syntax
 * error) name objects, not values, and are kept.
 */
export function explainFailure(error: unknown, hasParams: boolean): ExplainError {
  if (error instanceof ExplainError) return error;
  const code = errorCode(error);
  const quotesValues = hasParams || code === undefined || code.startsWith('22');
  if (quotesValues) {
    const what = code === undefined ? 'the server or connection failed' : `SQLSTATE ${code}`;
    return new ExplainError(
      `EXPLAIN failed: ${what} (message withheld: it may quote a value).`,
      code,
    );
  }
  const text = error instanceof Error ? error.message : String(error);
  return new ExplainError(`EXPLAIN failed: ${text} (SQLSTATE ${code}).`, code, { cause: error });
}

/**
 * Runs `body` inside `BEGIN READ ONLY ... ROLLBACK` with a transaction-local
 * statement_timeout. Nothing the body runs can write (invariant 5), and the rollback leaves
 * the session as it found it, except for prepared statements: those go in `cleanups`, run
 * after the rollback. A failure of the rollback or of a cleanup is thrown (after the body's own
 * error, if any, which wins) so the caller can discard the connection.
 */
export async function inReadOnlyTransaction<T>(
  client: QueryClient,
  statementTimeoutMs: number,
  body: (cleanups: string[]) => Promise<T>,
): Promise<T> {
  const cleanups: string[] = [];
  await client.query('BEGIN READ ONLY');
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    await client.query("SELECT pg_catalog.set_config('statement_timeout', $1, true)", [
      String(Math.max(1, Math.floor(statementTimeoutMs))),
    ]);
    outcome = { ok: true, value: await body(cleanups) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  try {
    await client.query('ROLLBACK');
    for (const cleanup of cleanups) await client.query(cleanup);
  } catch (error) {
    throw outcome.ok ? error : outcome.error;
  }
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/**
 * Runs `body` under a savepoint so its failure leaves the enclosing transaction usable;
 * returns undefined when it failed.
 */
export async function underSavepoint<T>(
  client: QueryClient,
  body: () => Promise<T>,
): Promise<T | undefined> {
  await client.query('SAVEPOINT pgpulse_analysis');
  try {
    const value = await body();
    await client.query('RELEASE SAVEPOINT pgpulse_analysis');
    return value;
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT pgpulse_analysis');
    return undefined;
  }
}

let preparedSeq = 0;

export interface ExplainRequest {
  readonly sql: string;
  readonly params?: readonly unknown[] | undefined;
  readonly shape: StatementShape;
  /** Asks for EXPLAIN ANALYZE; granted only for provably read-only statements. */
  readonly analyze: boolean;
  readonly serverVersion: number;
}

export interface ExplainOutcome {
  readonly result: ExplainResult;
  readonly mode: ExplainMode;
}

/**
 * Whether EXPLAIN ANALYZE may run: the classifier proved the text read-only, the catalog
 * knows every function it calls as non-volatile, and the values for its `$n` are at hand.
 */
export async function mayAnalyze(
  client: QueryClient,
  request: Pick<ExplainRequest, 'shape' | 'params' | 'analyze'>,
): Promise<boolean> {
  const { shape } = request;
  if (!request.analyze || !shape.explainable || shape.kind !== 'read') return false;
  if (shape.paramCount > (request.params?.length ?? 0)) return false;
  return functionsAreStable(client, shape.functions);
}

/**
 * Runs the EXPLAIN for one statement. Must be called inside `inReadOnlyTransaction`.
 * Always VERBOSE: only then does every scan name its relation's schema, so advice is about the
 * table the statement read, never a same-named one that search_path finds first.
 * EXPLAIN without ANALYZE plans and never executes, so it is safe for writes (invariant 5).
 */
export async function explainStatement(
  client: QueryClient,
  request: ExplainRequest,
  cleanups: string[],
): Promise<ExplainOutcome> {
  const { sql, shape } = request;
  const params =
    request.params !== undefined && request.params.length > 0 ? [...request.params] : undefined;
  if (!shape.explainable) {
    throw new ExplainError(
      `EXPLAIN skipped: the statement is ${shape.reason ?? 'not explainable'} (only a single ` +
        'SELECT, INSERT, UPDATE, DELETE or MERGE has a plan).',
    );
  }
  if (request.analyze && (await mayAnalyze(client, request))) {
    const rows = await client.query(
      `EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON)\n${sql}`,
      params,
    );
    return { result: parseExplainJson(rows.rows), mode: 'analyze' };
  }
  if (shape.paramCount > 0 && params === undefined) {
    if (request.serverVersion >= GENERIC_PLAN_VERSION) {
      const rows = await client.query(`EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON)\n${sql}`);
      return { result: parseExplainJson(rows.rows), mode: 'generic' };
    }
    // Before PostgreSQL 16: a prepared statement forced to its generic plan shows the plan
    // any parameter values would get, so NULLs can stand in for them.
    const name = `pgpulse_explain_${process.pid}_${++preparedSeq}`;
    await client.query(`PREPARE ${name} AS\n${sql}`);
    cleanups.push(`DEALLOCATE ${name}`);
    await client.query(
      "SELECT pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)",
    );
    const nulls = Array.from({ length: shape.paramCount }, () => 'NULL').join(', ');
    const rows = await client.query(`EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE ${name}(${nulls})`);
    return { result: parseExplainJson(rows.rows), mode: 'generic-prepared' };
  }
  const rows = await client.query(`EXPLAIN (VERBOSE, FORMAT JSON)\n${sql}`, params);
  return { result: parseExplainJson(rows.rows), mode: 'explain' };
}
