import { type QueryClient, quoteIdent, reindexSql } from '../sql/index.js';
import type { IndexInfo } from './catalog.js';
import { asRow, num, str } from './sql.js';

/**
 * Index bloat: space a REINDEX would give back.
 *
 * Exact, with pgstattuple's `pgstatindex()` (btree only; it reads the whole index):
 *   a freshly built btree packs its leaf pages to the index's fillfactor (90 by default), so
 *   the live entries would fit in `leaf_pages * avg_leaf_density / fillfactor` pages. The rest
 *   of the leaf pages, plus empty and deleted pages, is waste:
 *     wasted  = leaf_pages * (1 - density / fillfactor) + empty_pages + deleted_pages
 *     bloat % = wasted * block_size / index_size * 100
 *   `100 - density` alone would call every fresh index 10 % bloated; dividing by the
 *   fillfactor makes a fresh index 0 %, and a btree grown by random inserts (about 70 %
 *   dense) about 22 %, under the default 30 % threshold. Dead entries count as live until
 *   VACUUM removes them, so bloat shows after a vacuum.
 *
 * Estimated, from statistics (the approach of ioguix's and pghero's queries), marked
 *   `estimated: true`: entries = pg_class.reltuples of the index; each takes
 *   MAXALIGN(8-byte header, 16 with a null bitmap, + the columns' average widths from
 *   pg_stats weighted by their non-null fraction) + a 4-byte line pointer; leaf pages hold
 *   (block_size - 24 - 16) * fillfactor of them; one pivot per leaf page above, plus the
 *   metapage. Bloat = actual pages - expected pages. Deduplication (PostgreSQL 13+) makes
 *   indexes with repeated keys smaller than this model, so the estimate errs low, never high.
 */

export type BloatMethod = 'pgstattuple' | 'estimate';

/**
 * An index whose estimated wasted space is over the threshold, with the estimate and how it was
 * made.
 */
export interface BloatedIndex {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly definition: string;
  readonly sizeBytes: number;
  readonly bloatBytes: number;
  /** 0..100. */
  readonly bloatPercent: number;
  /** True when computed from statistics rather than by reading the index. */
  readonly estimated: boolean;
  readonly method: BloatMethod;
  readonly unique: boolean;
  readonly primary: boolean;
  /** `REINDEX INDEX CONCURRENTLY "schema"."name"` (see rebuildIndex). */
  readonly sql: string;
}

export interface BloatOptions {
  readonly thresholdPercent: number;
  readonly minSizeBytes: number;
  readonly method: 'auto' | BloatMethod;
  /** Larger indexes are estimated even when pgstattuple is there: it reads every page. */
  readonly exactMaxBytes: number;
}

const BTREE_DEFAULT_FILLFACTOR = 90;
const PAGE_HEADER = 24;
const BTREE_SPECIAL = 16;
const MAXALIGN = 8;
const LINE_POINTER = 4;

const align = (n: number): number => Math.ceil(n / MAXALIGN) * MAXALIGN;

/** The schema of an installed pgstattuple whose pgstatindex(regclass) this role may run. */
async function pgstattupleSchema(client: QueryClient): Promise<string | undefined> {
  const result = await client.query(
    `SELECT n.nspname AS schema
       FROM pg_catalog.pg_extension e
       JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
       JOIN pg_catalog.pg_proc p ON p.pronamespace = e.extnamespace AND p.proname = 'pgstatindex'
      WHERE e.extname = 'pgstattuple' AND p.pronargs = 1
        AND p.proargtypes[0] = 'pg_catalog.regclass'::pg_catalog.regtype
        AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
      LIMIT 1`,
  );
  return str(asRow(result.rows[0]).schema);
}

async function blockSize(client: QueryClient): Promise<number> {
  const result = await client.query(
    "SELECT pg_catalog.current_setting('block_size')::int AS block_size",
  );
  return num(asRow(result.rows[0]).block_size) ?? 8192;
}

interface Measured {
  readonly bloatBytes: number;
  readonly totalBytes: number;
}

/** pgstatindex of one index; undefined when the server refuses it (privileges, a race). */
async function exact(
  client: QueryClient,
  schema: string,
  index: IndexInfo,
  block: number,
): Promise<Measured | undefined> {
  let r: ReturnType<typeof asRow>;
  try {
    const result = await client.query(
      `SELECT s.index_size::float8 AS size, s.leaf_pages::float8 AS leaf,
              s.empty_pages::float8 AS empty, s.deleted_pages::float8 AS deleted,
              s.avg_leaf_density::float8 AS density
         FROM ${quoteIdent(schema)}.pgstatindex($1::pg_catalog.oid::pg_catalog.regclass) AS s`,
      [index.oid],
    );
    r = asRow(result.rows[0]);
  } catch {
    return undefined;
  }
  const size = num(r.size);
  const leaf = num(r.leaf) ?? 0;
  const density = num(r.density);
  if (size === undefined || size <= 0) return undefined;
  const fillfactor = index.fillfactor ?? BTREE_DEFAULT_FILLFACTOR;
  const leafWaste = density === undefined ? 0 : leaf * Math.max(0, 1 - density / fillfactor);
  const pages = leafWaste + (num(r.empty) ?? 0) + (num(r.deleted) ?? 0);
  return { bloatBytes: Math.min(size, pages * block), totalBytes: size };
}

interface ColumnWidth {
  readonly width: number;
  readonly nullFrac: number;
}

const WIDTHS_SQL = `
SELECT i.indexrelid::int8 AS oid, k.n AS position,
       COALESCE(ts.avg_width, xs.avg_width)::float8 AS width,
       COALESCE(ts.null_frac, xs.null_frac)::float8 AS null_frac
  FROM pg_catalog.pg_index i
  CROSS JOIN LATERAL pg_catalog.generate_series(1, i.indnatts) AS k(n)
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_catalog.pg_namespace ins ON ins.oid = ic.relnamespace
  JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
  JOIN pg_catalog.pg_namespace tns ON tns.oid = tc.relnamespace
  LEFT JOIN pg_catalog.pg_attribute ta
    ON ta.attrelid = i.indrelid AND ta.attnum = i.indkey[k.n - 1] AND ta.attnum > 0
  LEFT JOIN pg_catalog.pg_stats ts
    ON ts.schemaname = tns.nspname AND ts.tablename = tc.relname AND ts.attname = ta.attname
   AND ts.inherited = (tc.relkind = 'p')
  LEFT JOIN pg_catalog.pg_attribute ia ON ia.attrelid = i.indexrelid AND ia.attnum = k.n
  LEFT JOIN pg_catalog.pg_stats xs
    ON i.indkey[k.n - 1] = 0 AND xs.schemaname = ins.nspname AND xs.tablename = ic.relname
   AND xs.attname = ia.attname
 WHERE i.indexrelid = ANY ($1::pg_catalog.oid[])`;

async function columnWidths(
  client: QueryClient,
  oids: readonly number[],
): Promise<Map<number, (ColumnWidth | undefined)[]>> {
  const out = new Map<number, (ColumnWidth | undefined)[]>();
  if (oids.length === 0) return out;
  const result = await client.query(WIDTHS_SQL, [[...oids]]);
  for (const raw of result.rows) {
    const r = asRow(raw);
    const oid = num(r.oid);
    const position = num(r.position);
    if (oid === undefined || position === undefined) continue;
    const list = out.get(oid) ?? [];
    const width = num(r.width);
    list[position - 1] =
      width === undefined ? undefined : { width, nullFrac: num(r.null_frac) ?? 0 };
    out.set(oid, list);
  }
  return out;
}

/** The statistics-based estimate described above; undefined without statistics. */
export function estimateBloat(
  index: Pick<IndexInfo, 'relpages' | 'reltuples' | 'fillfactor'>,
  widths: readonly (ColumnWidth | undefined)[],
  block: number,
): Measured | undefined {
  if (index.reltuples < 0 || index.relpages <= 1 || widths.length === 0) return undefined;
  if (widths.some((w) => w === undefined)) return undefined;
  const cols = widths as readonly ColumnWidth[];
  const data = cols.reduce((sum, c) => sum + (1 - c.nullFrac) * c.width, 0);
  const header = cols.some((c) => c.nullFrac > 0) ? 16 : 8;
  const entry = align(header + data) + LINE_POINTER;
  const usable = block - PAGE_HEADER - BTREE_SPECIAL;
  const fillfactor = index.fillfactor ?? BTREE_DEFAULT_FILLFACTOR;
  const leaf = Math.ceil((index.reltuples * entry) / ((usable * fillfactor) / 100));
  const upper = Math.ceil((leaf * entry) / usable);
  const expected = leaf + upper + 1;
  const totalBytes = index.relpages * block;
  return { bloatBytes: Math.max(0, index.relpages - expected) * block, totalBytes };
}

/** Btree indexes whose bloat reaches the threshold, the most wasted space first. */
export async function findBloat(
  client: QueryClient,
  indexes: readonly IndexInfo[],
  options: BloatOptions,
): Promise<{ bloated: BloatedIndex[]; method: BloatMethod }> {
  const candidates = indexes.filter(
    (i) =>
      i.method === 'btree' &&
      i.kind === 'i' &&
      i.valid &&
      !i.temporary &&
      !i.building &&
      i.sizeBytes >= options.minSizeBytes,
  );
  const schema = options.method === 'estimate' ? undefined : await pgstattupleSchema(client);
  const method: BloatMethod = schema === undefined ? 'estimate' : 'pgstattuple';
  const block = await blockSize(client);
  const measured = new Map<number, Measured & { readonly method: BloatMethod }>();
  if (schema !== undefined) {
    for (const index of candidates) {
      if (index.sizeBytes > options.exactMaxBytes) continue;
      const m = await exact(client, schema, index, block);
      if (m !== undefined) measured.set(index.oid, { ...m, method: 'pgstattuple' });
    }
  }
  const rest = candidates.filter((i) => !measured.has(i.oid));
  const widths = await columnWidths(
    client,
    rest.map((i) => i.oid),
  );
  for (const index of rest) {
    const m = estimateBloat(index, widths.get(index.oid) ?? [], block);
    if (m !== undefined) measured.set(index.oid, { ...m, method: 'estimate' });
  }
  const bloated: BloatedIndex[] = [];
  for (const index of candidates) {
    const m = measured.get(index.oid);
    if (m === undefined || m.totalBytes <= 0) continue;
    const bloatPercent = Math.round((m.bloatBytes / m.totalBytes) * 10_000) / 100;
    if (bloatPercent < options.thresholdPercent) continue;
    bloated.push({
      schema: index.schema,
      table: index.table,
      name: index.name,
      definition: index.definition,
      sizeBytes: index.sizeBytes,
      bloatBytes: Math.round(m.bloatBytes),
      bloatPercent,
      estimated: m.method === 'estimate',
      method: m.method,
      unique: index.unique,
      primary: index.primary,
      sql: reindexSql(index.schema, index.name),
    });
  }
  bloated.sort((a, b) => b.bloatBytes - a.bloatBytes || a.name.localeCompare(b.name));
  return { bloated, method };
}
