import {
  type ExplainOutcome,
  type ExplainResult,
  explainStatement,
  GENERIC_PLAN_VERSION,
  inReadOnlyTransaction,
  inspectStatement,
  parseExplainJson,
  type StatementShape,
  underSavepoint,
} from '../analysis/index.js';
import { PgPulseError } from '../errors/index.js';
import {
  createIndexSql,
  indexNames,
  loadParser,
  predicateSql,
  type QueryClient,
} from '../sql/index.js';
import { type Candidate, relationCandidates, tableFacts } from './candidates.js';
import { lookupNames, pickName } from './index-names.js';
import { relationUses, totalCost } from './plan-use.js';
import type { IndexRecommendation } from './recommendations.js';
import {
  estimateWhatIf,
  hypopgAvailable,
  hypopgWhatIf,
  type WhatIf,
  type WhatIfMethod,
} from './what-if.js';

/** Index advice for one statement, each index verified by a what-if cost. */
export interface StatementIndexAdvice {
  /** How the costs were obtained; 'estimate' is a model, not the planner (see note). */
  readonly method: WhatIfMethod;
  readonly note: string;
  /** Estimated cost of the statement today (plain EXPLAIN). */
  readonly cost: number;
  /** With every recommended index in place (same method). */
  readonly costWithIndexes: number;
  /** Built together, these give `costWithIndexes`; priority from the cost drop. */
  readonly recommendations: StatementIndexRecommendation[];
  /** Every candidate tried alone, with its what-if cost. */
  readonly candidates: readonly { readonly sql: string; readonly cost: number }[];
}

/**
 * An index advised for one statement, with the statement's plan cost before and after it and how
 * that was measured.
 */
export interface StatementIndexRecommendation extends IndexRecommendation {
  readonly costBefore: number;
  readonly costAfter: number;
  /** 1 - after / before, for the whole set of recommendations. */
  readonly costDrop: number;
  readonly method: WhatIfMethod;
}

/**
 * How `adviseStatementIndexes` tests candidate indexes: HypoPG or the estimate, the cost drop that
 * counts, and its time limit.
 */
export interface AdviseStatementOptions {
  /** 'auto' (default): HypoPG when installed or installable; 'require': fail without it; 'off'. */
  readonly hypopg?: 'auto' | 'require' | 'off';
  /** Advice only when the statement's cost drops at least this much. Default 0.5 (dexter's). */
  readonly minCostDrop?: number;
  /** statement_timeout for the analysis. Default 30 000. */
  readonly statementTimeoutMs?: number;
}

/** Each further index must cut the cost at least this much more to be kept. */
const MIN_STEP = 0.1;
/** Candidates within this share of the best are ranked by size (partial, fewer columns). */
const TIE = 0.1;

export function priorityFromDrop(drop: number, minDrop: number): 1 | 2 | 3 | 4 | 5 {
  if (drop >= 0.9) return 5;
  if (drop >= minDrop) return 4;
  if (drop >= minDrop / 2) return 3;
  return drop > 0.1 ? 2 : 1;
}

function size(c: Candidate): number {
  return c.fraction * (c.shape.columns.length + (c.shape.include?.length ?? 0));
}

/** Greedy, as dexter: the best candidate, then others while each cuts the cost further. */
async function choose(
  engine: WhatIf,
  candidates: readonly Candidate[],
): Promise<{ chosen: Candidate[]; cost: number; singles: Map<Candidate, number> }> {
  const singles = new Map<Candidate, number>();
  let chosen: Candidate[] = [];
  let current = engine.baseline;
  let pool = [...candidates];
  for (let round = 0; round < 3 && pool.length > 0; round++) {
    const tried: { c: Candidate; cost: number }[] = [];
    for (const c of pool) {
      const cost = await engine.cost([...chosen, c]);
      if (round === 0) singles.set(c, cost);
      tried.push({ c, cost });
    }
    const best = Math.min(...tried.map((t) => t.cost));
    if (!(best < current * (1 - MIN_STEP))) break;
    const near = tried
      .filter((t) => t.cost <= best + Math.max(0.01, best * TIE))
      .sort((a, b) => size(a.c) - size(b.c) || a.cost - b.cost);
    const pick = near[0]!;
    chosen = [...chosen, pick.c];
    current = pick.cost;
    // One index per relation and role: the others on that relation compete with it.
    pool = pool.filter((c) => c !== pick.c && c.use.alias !== pick.c.use.alias);
  }
  // Keep only indexes the set needs: without one, the cost must rise noticeably.
  if (chosen.length > 1) {
    for (const c of [...chosen]) {
      const without = chosen.filter((x) => x !== c);
      if ((await engine.cost(without)) <= current * (1 + MIN_STEP / 2)) chosen = without;
    }
    current = await engine.cost(chosen);
  }
  return { chosen, cost: current, singles };
}

export interface WhatIfInput {
  readonly sql: string;
  readonly params: readonly unknown[] | undefined;
  readonly shape: StatementShape;
  readonly version: number;
  readonly cleanups: string[];
  readonly useHypopg: boolean;
  readonly minCostDrop: number;
}

/** The what-if advice, inside the caller's read-only transaction. */
export async function whatIfAdvice(
  client: QueryClient,
  input: WhatIfInput,
): Promise<StatementIndexAdvice> {
  const explain = async (): Promise<ExplainResult> => {
    const outcome: ExplainOutcome = await explainStatement(
      client,
      {
        sql: input.sql,
        params: input.params,
        shape: input.shape,
        analyze: false,
        serverVersion: input.version,
      },
      input.cleanups,
    );
    return outcome.result;
  };
  const plan = await explain();
  const baseline = totalCost(plan.Plan);
  const explainConditions = async (text: string): Promise<ExplainResult | undefined> => {
    const generic = /\$\d/.test(text);
    if (generic && input.version < GENERIC_PLAN_VERSION) return undefined;
    return underSavepoint(client, async () => {
      const r = await client.query(
        `EXPLAIN (${generic ? 'GENERIC_PLAN, ' : ''}FORMAT JSON) ${text}`,
      );
      return parseExplainJson(r.rows);
    });
  };
  const engine = input.useHypopg
    ? hypopgWhatIf(client, explain, baseline)
    : await estimateWhatIf(client, plan, explainConditions);
  const candidates: Candidate[] = [];
  for (const use of relationUses(plan).values()) {
    const facts = await tableFacts(client, use.schema, use.table);
    if (facts === undefined) continue;
    candidates.push(...(await relationCandidates(client, use, facts)));
  }
  const { chosen, cost, singles } = await choose(engine, candidates);
  const drop = baseline > 0 ? 1 - cost / baseline : 0;
  const note =
    engine.method === 'hypopg'
      ? 'Costs from the planner with HypoPG hypothetical indexes (what-if EXPLAIN).'
      : 'Costs are a planner-statistics estimate (HypoPG is not installed): a model of btree ' +
        'costing fed with pg_class, pg_stats and the planner\u2019s row estimates. Install ' +
        'HypoPG for the planner\u2019s own what-if costs.';
  const recommendations: StatementIndexRecommendation[] = [];
  if (drop >= input.minCostDrop) {
    for (const c of chosen) {
      const { plain, hashed } = indexNames(c.shape);
      const taken = await lookupNames(client, c.shape.schema, [plain, hashed]);
      const name = pickName(c.shape, c.tableOid, taken);
      if (name === undefined) continue;
      const s = c.shape;
      const shown = s.columns.map((col, i) => `${col}${s.order?.[i] === 'desc' ? ' DESC' : ''}`);
      recommendations.push({
        schema: s.schema,
        table: s.table,
        columns: s.columns,
        ...(s.order === undefined ? {} : { order: s.order }),
        ...(s.predicate === undefined
          ? {}
          : { predicate: s.predicate, where: predicateSql(s.predicate) }),
        ...(s.include === undefined ? {} : { include: s.include }),
        name,
        reason:
          `Index ${s.schema}.${s.table} (${shown.join(', ')})` +
          (s.include ? ` INCLUDE (${s.include.join(', ')})` : '') +
          (s.predicate ? ` WHERE ${predicateSql(s.predicate)}` : '') +
          ` (${c.origin}): the statement's estimated cost drops from ${Math.round(baseline)} to ` +
          `${Math.round(cost)} (${Math.round(drop * 100)}%, ${engine.method === 'hypopg' ? 'HypoPG' : 'planner-statistics estimate'}).`,
        priority: priorityFromDrop(drop, input.minCostDrop),
        estimatedBenefit: `${Math.round(drop * 100)}% lower estimated cost (${engine.method})`,
        sql: createIndexSql(s, name),
        source: 'statement',
        costBefore: baseline,
        costAfter: cost,
        costDrop: drop,
        method: engine.method,
      });
    }
  }
  return {
    method: engine.method,
    note,
    cost: baseline,
    costWithIndexes: recommendations.length > 0 ? cost : baseline,
    recommendations,
    candidates: [...singles].map(([c, v]) => ({
      sql: createIndexSql(c.shape, indexNames(c.shape).plain),
      cost: v,
    })),
  };
}

/**
 * Index advice for one statement, dexter's way and safe on every schema: candidates from the
 * whole plan (EXPLAIN VERBOSE, so every relation is exact), each verified by a what-if cost
 * (HypoPG when `CREATE EXTENSION hypopg` works, else a planner-statistics estimate, labelled
 * so), kept when the cost drops at least `minCostDrop`. Never executes the statement: only
 * EXPLAIN, inside BEGIN READ ONLY ... ROLLBACK. `client`: one connection outside a transaction.
 */
export async function adviseStatementIndexes(
  client: QueryClient,
  sql: string,
  params?: readonly unknown[],
  options: AdviseStatementOptions = {},
): Promise<StatementIndexAdvice> {
  await loadParser();
  const shape = inspectStatement(sql);
  if (!shape.explainable) {
    throw new PgPulseError(
      'PGPULSE_EXPLAIN_FAILED',
      `Cannot advise on this statement: it is ${shape.reason ?? 'not explainable'}.`,
    );
  }
  const mode = options.hypopg ?? 'auto';
  let useHypopg = false;
  if (mode !== 'off') {
    if (!(await hypopgAvailable(client))) {
      try {
        await client.query('CREATE EXTENSION IF NOT EXISTS hypopg');
      } catch {
        // Not installed on the server, not allowed, or a replica: the estimate is used.
      }
    }
    useHypopg = await hypopgAvailable(client);
    if (!useHypopg && mode === 'require') {
      throw new PgPulseError(
        'PGPULSE_HYPOPG_UNAVAILABLE',
        'HypoPG is required but CREATE EXTENSION hypopg failed: install it on the server ' +
          '(Debian: postgresql-<version>-hypopg) or pass hypopg: "auto".',
      );
    }
  }
  const version = Number(
    (
      (await client.query("SELECT current_setting('server_version_num') AS v")).rows[0] as {
        v: string;
      }
    ).v,
  );
  return inReadOnlyTransaction(client, options.statementTimeoutMs ?? 30_000, (cleanups) =>
    whatIfAdvice(client, {
      sql,
      params,
      shape,
      version,
      cleanups,
      useHypopg,
      minCostDrop: options.minCostDrop ?? 0.5,
    }),
  );
}
