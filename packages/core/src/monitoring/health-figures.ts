import type pg from 'pg';
import { fingerprintQuery } from '../analysis/index.js';

/**
 * The figures of a health report that come from PostgreSQL's statistics views, one function
 * per view family, each one round trip on a client the caller holds. Statement texts are
 * reported normalized (constants replaced by placeholders), never as sent.
 */

type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * One node's health figures: connections against max_connections, cache hit ratio and transaction
 * ID age.
 */
export interface NodeFigures {
  readonly node: string;
  /** Client backends now, against `max_connections`. */
  readonly connections: { readonly used: number; readonly max: number; readonly usage: number };
  /** blks_hit / (blks_hit + blks_read) over every database since the statistics reset; null before any read. */
  readonly cacheHitRatio: number | null;
  /** age(datfrozenxid) of the oldest database, and how far that is toward wraparound (2^31). */
  readonly xidAge: {
    readonly database: string;
    readonly age: number;
    readonly wraparoundFraction: number;
  };
}

/** A table's scan and tuple counters and its last vacuum and analyze. */
export interface TableStats {
  readonly schema: string;
  readonly table: string;
  readonly seqScans: number;
  readonly indexScans: number;
  /** Share of scans that used an index; null when never scanned. */
  readonly indexScanRatio: number | null;
  readonly liveTuples: number;
  readonly deadTuples: number;
  readonly deadRatio: number;
  readonly lastVacuum: string | null;
  readonly lastAnalyze: string | null;
  readonly bytes: number;
  /** heap_blks_hit / (hit + read) for this table; null before any read. */
  readonly cacheHitRatio: number | null;
}

/**
 * A server session as the health report shows it: pid, application, state and its statement
 * normalized (constants replaced, never its parameters).
 */
export interface SessionBrief {
  readonly pid: number;
  readonly applicationName: string;
  readonly state: string;
  /** The statement, normalized (constants replaced). */
  readonly query: string;
}

/** A session waiting for a lock, and the sessions it waits for. */
export interface LockWait {
  readonly waiting: SessionBrief & { readonly waitingMs: number; readonly lockType: string };
  /** The sessions it waits for (pg_blocking_pids), each with what it runs now. */
  readonly blockedBy: readonly SessionBrief[];
}

/** A transaction open longer than the threshold (it holds back vacuum). */
export interface LongTransaction extends SessionBrief {
  readonly transactionMs: number;
}

const NODE_SQL = `SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used,
  current_setting('max_connections')::int AS max,
  (SELECT sum(blks_hit)::float8 / NULLIF(sum(blks_hit) + sum(blks_read), 0) FROM pg_stat_database) AS hit_ratio,
  d.datname AS xid_db, age(d.datfrozenxid)::int8::text AS xid_age
  FROM pg_database d ORDER BY age(d.datfrozenxid) DESC LIMIT 1`;

export async function readNodeFigures(client: Queryable, node: string): Promise<NodeFigures> {
  const { rows } = await client.query<{
    used: number;
    max: number;
    hit_ratio: number | null;
    xid_db: string;
    xid_age: string;
  }>(NODE_SQL);
  const row = rows[0];
  if (!row) throw new Error(`no figures from ${node}`);
  const age = Number(row.xid_age);
  return {
    node,
    connections: { used: row.used, max: row.max, usage: row.max > 0 ? row.used / row.max : 0 },
    cacheHitRatio: row.hit_ratio,
    xidAge: { database: row.xid_db, age, wraparoundFraction: age / 2 ** 31 },
  };
}

const TABLES_SQL = `SELECT s.schemaname AS schema, s.relname AS "table",
  s.seq_scan::float8 AS seq, COALESCE(s.idx_scan, 0)::float8 AS idx,
  s.n_live_tup::float8 AS live, s.n_dead_tup::float8 AS dead,
  GREATEST(s.last_vacuum, s.last_autovacuum) AS vacuumed,
  GREATEST(s.last_analyze, s.last_autoanalyze) AS analyzed,
  pg_total_relation_size(s.relid)::float8 AS bytes,
  io.heap_blks_hit::float8 / NULLIF(io.heap_blks_hit + io.heap_blks_read, 0) AS hit_ratio
  FROM pg_stat_user_tables s JOIN pg_statio_user_tables io ON io.relid = s.relid
  ORDER BY pg_total_relation_size(s.relid) DESC, s.relname LIMIT $1`;

/** User tables, largest first: scans, tuples, vacuum/analyze times, size, cache hit ratio. */
export async function readTableStats(client: Queryable, limit = 50): Promise<TableStats[]> {
  const { rows } = await client.query<{
    schema: string;
    table: string;
    seq: number;
    idx: number;
    live: number;
    dead: number;
    vacuumed: Date | null;
    analyzed: Date | null;
    bytes: number;
    hit_ratio: number | null;
  }>(TABLES_SQL, [limit]);
  return rows.map((r) => ({
    schema: r.schema,
    table: r.table,
    seqScans: r.seq,
    indexScans: r.idx,
    indexScanRatio: r.seq + r.idx > 0 ? r.idx / (r.seq + r.idx) : null,
    liveTuples: r.live,
    deadTuples: r.dead,
    deadRatio: r.live + r.dead > 0 ? r.dead / (r.live + r.dead) : 0,
    lastVacuum: r.vacuumed?.toISOString() ?? null,
    lastAnalyze: r.analyzed?.toISOString() ?? null,
    bytes: r.bytes,
    cacheHitRatio: r.hit_ratio,
  }));
}

const LOCKS_SQL = `SELECT w.pid, w.application_name AS app, w.state, w.query,
  w.wait_event AS lock_type,
  (extract(epoch FROM now() - w.query_start) * 1000)::float8 AS waiting_ms,
  COALESCE((SELECT json_agg(json_build_object('pid', b.pid, 'app', b.application_name,
     'state', b.state, 'query', b.query))
     FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(w.pid))), '[]'::json) AS blockers
  FROM pg_stat_activity w
  WHERE w.wait_event_type = 'Lock' AND cardinality(pg_blocking_pids(w.pid)) > 0
  ORDER BY w.query_start`;

/** Who blocks whom now: every session waiting on a lock, with the sessions it waits for. */
export async function readLockContention(client: Queryable): Promise<LockWait[]> {
  const { rows } = await client.query<{
    pid: number;
    app: string;
    state: string;
    query: string;
    lock_type: string;
    waiting_ms: number;
    blockers: { pid: number; app: string; state: string; query: string }[];
  }>(LOCKS_SQL);
  return rows.map((r) => ({
    waiting: {
      ...brief(r.pid, r.app, r.state, r.query),
      waitingMs: Math.round(r.waiting_ms),
      lockType: r.lock_type,
    },
    blockedBy: r.blockers.map((b) => brief(b.pid, b.app, b.state, b.query)),
  }));
}

const LONG_SQL = `SELECT pid, application_name AS app, state, query,
  (extract(epoch FROM now() - xact_start) * 1000)::float8 AS xact_ms
  FROM pg_stat_activity
  WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid()
    AND now() - xact_start >= make_interval(secs => $1::float8 / 1000)
  ORDER BY xact_start`;

/** Transactions open at least `minMs` (active or idle in transaction), oldest first. */
export async function readLongTransactions(
  client: Queryable,
  minMs: number,
): Promise<LongTransaction[]> {
  const { rows } = await client.query<{
    pid: number;
    app: string;
    state: string;
    query: string;
    xact_ms: number;
  }>(LONG_SQL, [minMs]);
  return rows.map((r) => ({
    ...brief(r.pid, r.app, r.state, r.query),
    transactionMs: Math.round(r.xact_ms),
  }));
}

/** Every top-level partitioned table, as schema and name. */
export async function listPartitionedTables(
  client: Queryable,
): Promise<{ schema: string; table: string }[]> {
  const { rows } = await client.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, c.relname AS "table" FROM pg_partitioned_table p
       JOIN pg_class c ON c.oid = p.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT c.relispartition ORDER BY 1, 2`,
  );
  return rows;
}

function brief(pid: number, app: string, state: string | null, query: string | null): SessionBrief {
  return {
    pid,
    applicationName: app ?? '',
    state: state ?? '',
    query: query ? fingerprintQuery(query, 500).normalized : '',
  };
}
