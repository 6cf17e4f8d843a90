import { ExplainError, PgPulseError } from '../errors/index.js';
import type { Classifier } from '../routing/index.js';
import { loadParser, type QueryClient, qualified } from '../sql/index.js';
import { fetchColumns, fetchRelations, type RelationInfo, serverVersion } from './catalog.js';
import {
  type ExplainMode,
  type ExplainOutcome,
  explainFailure,
  explainStatement,
  inReadOnlyTransaction,
  underSavepoint,
} from './explain-runner.js';
import { type PlanNode, planNumber, planRelations } from './plan.js';
import { analyzePlan, type PlanAnalyzerOptions, type PlanFinding } from './plan-analyzer.js';
import { redactPlan } from './redact-plan.js';
import { applyRewrites, findNotInCandidates, type NotInCandidate } from './rewrite-not-in.js';
import { inspectStatement, type StatementShape } from './statement.js';
import { dedupe, type QuerySuggestion, suggest } from './suggestions.js';

export type { QuerySuggestion, SuggestionKind, SuggestionPriority } from './suggestions.js';

/**
 * What `analyzeQuery` returns: the execution plan, its findings and the suggestions that follow
 * from them.
 */
export interface QueryAnalysis {
  readonly executionPlan: {
    /** The root node's estimated total cost. */
    readonly cost: number;
    readonly plan: PlanNode;
    readonly mode: ExplainMode;
    readonly planningTimeMs?: number;
    readonly executionTimeMs?: number;
  };
  readonly findings: readonly PlanFinding[];
  /** The most valuable first. */
  readonly suggestions: readonly QuerySuggestion[];
  /** Present only when a rewrite keeps the meaning and EXPLAIN estimates it cheaper. */
  readonly optimizedQuery?: string;
  readonly optimizedCost?: number;
}

/**
 * How `analyzeQuery` runs: EXPLAIN ANALYZE for provably read-only statements or a plain EXPLAIN,
 * and its time limit.
 */
export interface AnalyzeQueryOptions {
  /**
   * EXPLAIN ANALYZE when the statement is provably read-only (it then runs, inside BEGIN READ
   * ONLY ... ROLLBACK). Writes always get a plain EXPLAIN and are never executed. Default true.
   */
  readonly analyze?: boolean;
  /** statement_timeout for the analysis, transaction-local. Default 30 000. */
  readonly statementTimeoutMs?: number;
  /** Mask literals in the returned plan (EXPLAIN prints parameter values). Default true. */
  readonly redact?: boolean;
  /** A rewrite is offered only below this share of the original cost. Default 0.9. */
  readonly rewriteCostRatio?: number;
  readonly classifier?: Classifier;
  readonly analyzer?: Omit<PlanAnalyzerOptions, 'relationRows'>;
}

/**
 * Explains one statement on `client` and turns the plan into findings and ranked suggestions:
 * indexes (ready `CREATE INDEX CONCURRENTLY`, names checked in the catalog), statistics,
 * configuration, and a semantics-preserving rewrite when EXPLAIN shows it cheaper.
 *
 * `client` must be one connection outside a transaction (a pg.Client or a checked-out
 * PoolClient, not a Pool): everything runs inside BEGIN READ ONLY ... ROLLBACK on it.
 */
export async function analyzeQuery(
  client: QueryClient,
  sql: string,
  params?: readonly unknown[],
  options: AnalyzeQueryOptions = {},
): Promise<QueryAnalysis> {
  await loadParser();
  const shape = inspectStatement(sql, options.classifier);
  if (!shape.explainable) {
    throw new ExplainError(
      `Cannot analyze this statement: it is ${shape.reason ?? 'not explainable'}. Pass one ` +
        'SELECT, INSERT, UPDATE, DELETE or MERGE.',
    );
  }
  const hasParams = (params?.length ?? 0) > 0;
  try {
    await refuseOpenTransaction(client);
    const version = await serverVersion(client);
    const timeout = options.statementTimeoutMs ?? 30_000;
    return await inReadOnlyTransaction(client, timeout, async (cleanups) => {
      const outcome = await explainStatement(
        client,
        { sql, params, shape, analyze: options.analyze ?? true, serverVersion: version },
        cleanups,
      );
      const relations =
        (await underSavepoint(client, () =>
          fetchRelations(client, planRelations(outcome.result)),
        )) ?? new Map<string, RelationInfo>();
      const findings = analyzePlan(outcome.result, {
        ...options.analyzer,
        relationRows: (relation, schema) => relations.get(qualified(schema, relation))?.rows,
      });
      const suggestions = await suggest(client, findings, relations);
      const rewrite = await tryRewrite(client, {
        sql,
        params,
        shape,
        version,
        cleanups,
        outcome,
        options,
      });
      suggestions.push(...rewrite.suggestions);
      return build(outcome, findings, suggestions, rewrite, options);
    });
  } catch (error) {
    if (error instanceof PgPulseError) throw error;
    throw explainFailure(error, hasParams);
  }
}

async function refuseOpenTransaction(client: QueryClient): Promise<void> {
  // Outside a transaction block every statement is its own transaction, so the two match.
  const result = await client.query(
    'SELECT pg_catalog.transaction_timestamp() <> pg_catalog.statement_timestamp() AS open',
  );
  const row = result.rows[0];
  if (typeof row === 'object' && row !== null && (row as { open?: unknown }).open === true) {
    throw new PgPulseError(
      'PGPULSE_ANALYZE_IN_TRANSACTION',
      'analyzeQuery needs a connection outside a transaction: it runs BEGIN READ ONLY ... ' +
        'ROLLBACK itself, which would end yours. Pass an idle connection.',
    );
  }
}

function build(
  outcome: ExplainOutcome,
  findings: readonly PlanFinding[],
  suggestions: QuerySuggestion[],
  rewrite: Rewrite,
  options: AnalyzeQueryOptions,
): QueryAnalysis {
  const result = options.redact === false ? outcome.result : redactPlan(outcome.result);
  const planning = planNumber(result, 'Planning Time');
  const execution = planNumber(result, 'Execution Time');
  const ranked = dedupe(suggestions).sort((a, b) => b.priority - a.priority);
  return {
    executionPlan: {
      cost: planNumber(result.Plan, 'Total Cost') ?? 0,
      plan: result.Plan,
      mode: outcome.mode,
      ...(planning === undefined ? {} : { planningTimeMs: planning }),
      ...(execution === undefined ? {} : { executionTimeMs: execution }),
    },
    findings,
    suggestions: ranked,
    ...(rewrite.query === undefined
      ? {}
      : { optimizedQuery: rewrite.query, optimizedCost: rewrite.cost }),
  };
}

// ---------------------------------------------------------------------------------------------
// Rewrites

interface Rewrite {
  readonly query?: string;
  readonly cost?: number;
  readonly suggestions: QuerySuggestion[];
}

interface RewriteInput {
  readonly sql: string;
  readonly params: readonly unknown[] | undefined;
  readonly shape: StatementShape;
  readonly version: number;
  readonly cleanups: string[];
  readonly outcome: ExplainOutcome;
  readonly options: AnalyzeQueryOptions;
}

async function notNull(client: QueryClient, target: NotInCandidate['outer']): Promise<boolean> {
  const columns = await underSavepoint(client, () =>
    fetchColumns(client, qualified(target.schema, target.relation), [target.column]),
  );
  return columns?.get(target.column)?.notNull === true;
}

/**
 * NOT IN (subquery) -> NOT EXISTS, only when both compared columns are NOT NULL in the catalog
 * (otherwise the results differ) and EXPLAIN estimates the new text cheaper.
 */
async function tryRewrite(client: QueryClient, input: RewriteInput): Promise<Rewrite> {
  const candidates = findNotInCandidates(input.sql);
  if (candidates.length === 0) return { suggestions: [] };
  const safe: NotInCandidate[] = [];
  const suggestions: QuerySuggestion[] = [];
  for (const c of candidates) {
    const outerOk = await notNull(client, c.outer);
    const innerOk = await notNull(client, c.inner);
    if (outerOk && innerOk) {
      safe.push(c);
      continue;
    }
    const nullable = [!outerOk ? c.outer : undefined, !innerOk ? c.inner : undefined]
      .filter((t) => t !== undefined)
      .map((t) => `${t.relation}.${t.column}`);
    suggestions.push({
      description:
        `NOT IN (subquery) compares ${nullable.join(' and ')}, which may be NULL, so it cannot ` +
        'become the usually faster NOT EXISTS without changing the result (a NULL makes NOT IN ' +
        'return no rows). If NULLs cannot occur, declare the column NOT NULL.',
      priority: 2,
      kind: 'rewrite',
    });
  }
  if (safe.length === 0) return { suggestions };
  const rewritten = applyRewrites(input.sql, safe);
  const shape = inspectStatement(rewritten, input.options.classifier);
  // The rewrite must stay one statement of the same kind using the same parameters.
  if (
    !shape.explainable ||
    shape.kind !== input.shape.kind ||
    shape.paramCount !== input.shape.paramCount
  ) {
    return { suggestions };
  }
  const explained = await underSavepoint(client, () =>
    explainStatement(
      client,
      { sql: rewritten, params: input.params, shape, analyze: false, serverVersion: input.version },
      input.cleanups,
    ),
  );
  const original = planNumber(input.outcome.result.Plan, 'Total Cost');
  const cost =
    explained === undefined ? undefined : planNumber(explained.result.Plan, 'Total Cost');
  const ratio = input.options.rewriteCostRatio ?? 0.9;
  if (original === undefined || cost === undefined || cost >= original * ratio) {
    return { suggestions };
  }
  suggestions.push({
    description:
      `Rewrite NOT IN (subquery) as NOT EXISTS: the compared columns are NOT NULL, so the ` +
      `result is the same, and the estimated cost drops from ${Math.round(original).toLocaleString('en-US')} ` +
      `to ${Math.round(cost).toLocaleString('en-US')}.`,
    priority: cost < original / 10 ? 5 : 4,
    kind: 'rewrite',
  });
  return { query: rewritten, cost, suggestions };
}
