import type { ExplainResult, PlanNode } from '../analysis/index.js';
import {
  columnListSql,
  includeSql,
  predicateSql,
  type QueryClient,
  qualified,
  quoteIdent,
} from '../sql/index.js';
import type { Candidate } from './candidates.js';
import { planRows, totalCost } from './plan-use.js';
import { asRow, num } from './sql.js';

/**
 * What-if costs: the statement's estimated cost were some candidate indexes there.
 * - 'hypopg': the planner itself plans with hypothetical indexes (HypoPG), as dexter does;
 * - 'estimate': without HypoPG, a model of PostgreSQL's btree costing (cost_index: descent,
 *   index pages, heap pages by Mackert-Lohman with the column's correlation, CPU per tuple)
 *   fed with the planner's statistics (pg_class, pg_stats) and its own row estimates. It
 *   replaces a scan's cost, a sort under a LIMIT served in index order, or a hash/merge join
 *   turned into a nested loop over the index; everything else in the plan is kept.
 */
export type WhatIfMethod = 'hypopg' | 'estimate';

export interface WhatIf {
  readonly method: WhatIfMethod;
  readonly baseline: number;
  cost(candidates: readonly Candidate[]): Promise<number>;
}

/** The plain CREATE INDEX HypoPG parses (no name, no CONCURRENTLY). */
function hypotheticalSql(c: Candidate): string {
  const s = c.shape;
  const where = s.predicate === undefined ? '' : ` WHERE (${predicateSql(s.predicate)})`;
  return `CREATE INDEX ON ${qualified(s.schema, s.table)} USING btree (${columnListSql(s)})${includeSql(s)}${where}`;
}

export type Explain = () => Promise<ExplainResult>;

/** HypoPG when usable on this connection (installed, or installable), else undefined. */
export async function hypopgAvailable(client: QueryClient): Promise<boolean> {
  try {
    const r = await client.query(
      "SELECT pg_catalog.to_regproc('hypopg_create_index') IS NOT NULL AS ok",
    );
    return asRow(r.rows[0]).ok === true;
  } catch {
    return false;
  }
}

export function hypopgWhatIf(client: QueryClient, explain: Explain, baseline: number): WhatIf {
  return {
    method: 'hypopg',
    baseline,
    async cost(candidates) {
      await client.query('SELECT hypopg_reset()');
      try {
        for (const c of candidates) {
          await client.query('SELECT indexrelid FROM hypopg_create_index($1)', [
            hypotheticalSql(c),
          ]);
        }
        return totalCost((await explain()).Plan);
      } finally {
        await client.query('SELECT hypopg_reset()');
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The estimate

interface Costs {
  readonly random: number;
  readonly seq: number;
  readonly cpuTuple: number;
  readonly cpuIndexTuple: number;
  readonly cpuOperator: number;
}

interface TableStats {
  readonly rows: number;
  readonly pages: number;
  readonly allVisible: number;
  readonly columns: Map<string, { width: number; correlation: number; distinct: number }>;
}

async function loadCosts(client: QueryClient): Promise<Costs> {
  const r = asRow(
    (
      await client.query(
        `SELECT current_setting('random_page_cost')::float8 AS random,
                current_setting('seq_page_cost')::float8 AS seq,
                current_setting('cpu_tuple_cost')::float8 AS cpu_tuple,
                current_setting('cpu_index_tuple_cost')::float8 AS cpu_index_tuple,
                current_setting('cpu_operator_cost')::float8 AS cpu_operator`,
      )
    ).rows[0],
  );
  return {
    random: num(r.random) ?? 4,
    seq: num(r.seq) ?? 1,
    cpuTuple: num(r.cpu_tuple) ?? 0.01,
    cpuIndexTuple: num(r.cpu_index_tuple) ?? 0.005,
    cpuOperator: num(r.cpu_operator) ?? 0.0025,
  };
}

async function loadTable(client: QueryClient, oid: number): Promise<TableStats> {
  const t = asRow(
    (
      await client.query(
        `SELECT GREATEST(c.reltuples, 1)::float8 AS rows, GREATEST(c.relpages, 1)::float8 AS pages,
                c.relallvisible::float8 AS all_visible, n.nspname AS schema, c.relname AS name
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = $1::pg_catalog.oid`,
        [oid],
      )
    ).rows[0],
  );
  const rows = num(t.rows) ?? 1;
  const stats = await client.query(
    `SELECT attname AS column, avg_width::float8 AS width, COALESCE(correlation, 0)::float8 AS corr,
            n_distinct::float8 AS distinct
       FROM pg_catalog.pg_stats WHERE schemaname = $1 AND tablename = $2 AND NOT inherited`,
    [t.schema, t.name],
  );
  const columns = new Map<string, { width: number; correlation: number; distinct: number }>();
  for (const raw of stats.rows) {
    const r = asRow(raw);
    const d = num(r.distinct) ?? -1;
    columns.set(String(r.column), {
      width: num(r.width) ?? 8,
      correlation: num(r.corr) ?? 0,
      distinct: Math.max(1, d >= 0 ? d : -d * rows),
    });
  }
  return { rows, pages: num(t.pages) ?? 1, allVisible: num(t.all_visible) ?? 0, columns };
}

/** Mackert-Lohman: distinct pages touched fetching `tuples` random tuples of `pages` pages. */
function pagesFetched(tuples: number, pages: number): number {
  if (tuples <= 0) return 0;
  return Math.min(pages, (2 * pages * tuples) / (2 * pages + tuples));
}

interface IndexCostInput {
  readonly candidate: Candidate;
  readonly table: TableStats;
  /** Rows the index conditions select (over all loops). */
  readonly tuples: number;
  readonly loops: number;
  readonly indexOnly: boolean;
}

/** Total cost of reading `tuples` rows through the candidate (cost_index, simplified). */
function indexScanCost(k: Costs, x: IndexCostInput): number {
  const { table, candidate } = x;
  const cols = [...candidate.shape.columns, ...(candidate.shape.include ?? [])];
  const width = cols.reduce((sum, c) => sum + (table.columns.get(c)?.width ?? 8), 0);
  const indexRows = table.rows * candidate.fraction;
  const indexPages = Math.max(1, Math.ceil((indexRows * (width + 12)) / (8192 * 0.9)));
  const height = Math.max(1, Math.ceil(Math.log(indexPages) / Math.log(256)));
  const descent =
    (Math.ceil(Math.log2(Math.max(2, indexRows))) + (height + 1) * 50) * k.cpuOperator;
  const sel = Math.min(1, x.tuples / Math.max(1, indexRows * x.loops));
  const leafPages =
    x.loops > 1
      ? pagesFetched(x.loops * Math.max(1, sel * indexPages), indexPages)
      : Math.max(1, Math.ceil(sel * indexPages));
  const heapShare = x.indexOnly ? Math.max(0, 1 - table.allVisible / table.pages) : 1;
  const heapTuples = x.tuples * heapShare;
  const corr = table.columns.get(candidate.shape.columns[0]!)?.correlation ?? 0;
  const maxIO = pagesFetched(heapTuples, table.pages) * k.random;
  const minIO =
    heapTuples > 0
      ? k.random + Math.max(0, Math.ceil((heapTuples / table.rows) * table.pages) - 1) * k.seq
      : 0;
  const heapIO = maxIO + corr * corr * (minIO - maxIO);
  const cpu = x.tuples * (k.cpuIndexTuple + k.cpuOperator) + heapTuples * k.cpuTuple;
  return x.loops * descent + leafPages * k.random + heapIO + cpu;
}

interface Model {
  readonly costs: Costs;
  readonly tables: Map<number, TableStats>;
  /** Rows selected by a candidate's usable conditions, per candidate. */
  readonly rows: (c: Candidate) => Promise<number>;
}

/** Rows of a scan the candidate's leading equality/range columns select, from the planner. */
export function conditionRows(
  client: QueryClient,
  explainConditions: (sql: string) => Promise<ExplainResult | undefined>,
): (c: Candidate) => Promise<number> {
  const cache = new Map<string, number>();
  return async (c) => {
    const use = c.use;
    const usable: string[] = [];
    for (const column of c.shape.columns) {
      const conds = use.conditions.filter((x) => x.columns.includes(column));
      if (conds.length === 0) break;
      usable.push(...conds.map((x) => x.text));
      if (!use.equality.includes(column)) break; // after a range, later keys do not narrow
    }
    if (c.shape.predicate !== undefined)
      usable.push(`${quoteIdent(use.alias)}.${predicateSql(c.shape.predicate)}`);
    const tableRows = (
      await client.query(
        'SELECT GREATEST(reltuples, 1)::float8 AS n FROM pg_catalog.pg_class WHERE oid = $1::pg_catalog.oid',
        [c.tableOid],
      )
    ).rows;
    const all = num(asRow(tableRows[0]).n) ?? 1;
    if (usable.length === 0) return all;
    const sql = `SELECT 1 FROM ${qualified(use.schema, use.table)} AS ${quoteIdent(use.alias)} WHERE ${[...new Set(usable)].join(' AND ')}`;
    const hit = cache.get(sql);
    if (hit !== undefined) return hit;
    const plan = await explainConditions(sql);
    const n = plan === undefined ? planRows(use.scan) : Math.max(1, planRows(plan.Plan));
    cache.set(sql, n);
    return n;
  };
}

/** A candidate returns rows in the sort's order: equality keys, then the sort keys. */
function servesSort(c: Candidate): boolean {
  const sort = c.use.sort;
  if (sort === undefined) return false;
  const keys = c.shape.columns.filter(
    (col) => !c.use.equality.includes(col) || sort.columns.includes(col),
  );
  const lead = c.shape.columns.findIndex((col) => !c.use.equality.includes(col));
  if (lead === -1) return false;
  const tail = c.shape.columns.slice(lead);
  if (tail.length < sort.columns.length || keys.length === 0) return false;
  let flip: boolean | undefined;
  return sort.columns.every((col, i) => {
    if (tail[i] !== col) return false;
    const dir = c.shape.order?.[lead + i] ?? 'asc';
    const same = dir === sort.order[i];
    flip ??= !same;
    return flip === !same;
  });
}

function indexOnly(c: Candidate): boolean {
  if (c.use.heapNeeded) return false;
  const held = new Set([...c.shape.columns, ...(c.shape.include ?? [])]);
  return [...c.use.needed].every((col) => held.has(col));
}

export async function estimateWhatIf(
  client: QueryClient,
  plan: ExplainResult,
  explainConditions: (sql: string) => Promise<ExplainResult | undefined>,
): Promise<WhatIf> {
  const model: Model = {
    costs: await loadCosts(client),
    tables: new Map(),
    rows: conditionRows(client, explainConditions),
  };
  const baseline = totalCost(plan.Plan);
  return {
    method: 'estimate',
    baseline,
    async cost(candidates) {
      for (const c of candidates) {
        if (!model.tables.has(c.tableOid))
          model.tables.set(c.tableOid, await loadTable(client, c.tableOid));
      }
      const scanCost = new Map<PlanNode, number>();
      const limitCost = new Map<PlanNode, number>();
      const joinCost = new Map<PlanNode, (visit: (n: PlanNode) => number) => number>();
      for (const c of candidates) {
        const table = model.tables.get(c.tableOid)!;
        const tuples = await model.rows(c);
        const own = indexScanCost(model.costs, {
          candidate: c,
          table,
          tuples,
          loops: 1,
          indexOnly: indexOnly(c),
        });
        const usesIndexConds = tuples < table.rows * c.fraction || c.shape.predicate !== undefined;
        if (usesIndexConds) {
          const prev = scanCost.get(c.use.scan);
          if (prev === undefined || own < prev) scanCost.set(c.use.scan, own);
        }
        const sort = c.use.sort;
        if (sort !== undefined && servesSort(c)) {
          const wanted = planRows(sort.limit);
          // Read in order until `wanted` rows pass every condition of the scan.
          const passing = Math.max(1, planRows(c.use.scan));
          const ordered = own * Math.min(1, wanted / passing) + 0.01;
          const prev = limitCost.get(sort.limit);
          if (prev === undefined || ordered < prev) limitCost.set(sort.limit, ordered);
        }
        for (const inner of c.use.innerOf) {
          if (!inner.columns.includes(c.shape.columns[0]!)) continue;
          const outerRows = Math.max(1, planRows(inner.outer));
          const joinRows = planRows(inner.join);
          const distinct = table.columns.get(c.shape.columns[0]!)?.distinct ?? table.rows;
          const perKey = Math.max(1, table.rows / distinct);
          const lookup = (visit: (n: PlanNode) => number) =>
            visit(inner.outer) +
            indexScanCost(model.costs, {
              candidate: c,
              table,
              tuples: outerRows * perKey,
              loops: outerRows,
              indexOnly: indexOnly(c),
            }) +
            joinRows * model.costs.cpuTuple;
          const prev = joinCost.get(inner.join);
          joinCost.set(
            inner.join,
            prev === undefined ? lookup : (v) => Math.min(prev(v), lookup(v)),
          );
        }
      }
      const visit = (node: PlanNode): number => {
        const original = totalCost(node);
        const scan = scanCost.get(node);
        if (scan !== undefined) return Math.min(original, scan);
        const children = Array.isArray(node.Plans) ? (node.Plans as PlanNode[]) : [];
        let cost = original;
        for (const child of children) cost -= totalCost(child) - visit(child);
        const limit = limitCost.get(node);
        if (limit !== undefined) cost = Math.min(cost, limit);
        const join = joinCost.get(node);
        if (join !== undefined) cost = Math.min(cost, join(visit));
        return Math.max(0, cost);
      };
      return visit(plan.Plan);
    },
  };
}
