/**
 * @pgpulse/typeorm: TypeORM 1.x's postgres driver over a pgpulse cluster.
 *
 * TypeORM's own `replication` option is kept as the seam: its master pool becomes a view of the
 * cluster that runs every statement on the primary, its single slave pool the cluster's
 * SQL-routed pool. No routing logic lives here; the cluster decides where each statement runs.
 *
 * TypeORM's own `cache` option (`find({ cache: 30_000 })`, `qb.cache('id', ms)`) is routed to
 * pgpulse's query result cache: the DataSource's cache provider keeps no results of its own, it
 * marks the runner's connection, and the connection runs that one statement in
 * `cluster.cached()`.
 */
import { EventEmitter } from 'node:events';
import {
  type Cluster,
  ConfigError,
  type ConfigIssue,
  PG_CLIENT_SETTING_FIELDS,
  parseServerOptions,
} from '@pgpulse/core';
import pg from 'pg';
import {
  DataSource,
  type DataSourceOptions,
  type ObjectLiteral,
  type QueryRunner,
  type ReplicationMode,
} from 'typeorm';

/** TypeORM's options for its `postgres` driver. */
export type PostgresDataSourceOptions = Extract<DataSourceOptions, { type: 'postgres' }>;

/**
 * Settings that describe connections. The cluster owns connections (its nodes, pool sizes,
 * timeouts, TLS, application_name), so these are refused rather than silently ignored.
 */
const CONNECTION_FIELDS = [
  'url',
  'host',
  'port',
  'username',
  'password',
  'database',
  'ssl',
  'applicationName',
  'poolSize',
  'connectTimeoutMS',
  'extra',
  'driver',
  'nativeDriver',
] as const;
type ConnectionField = (typeof CONNECTION_FIELDS)[number];

/**
 * Your TypeORM postgres options without the connection settings (those come from the cluster).
 * `replication` only keeps `defaultMode`: 'slave' (TypeORM's default) sends query builders and
 * `find*` through the SQL-routed pool, 'master' sends them to the primary.
 */
export type PgPulseTypeOrmOptions = Omit<
  PostgresDataSourceOptions,
  ConnectionField | 'type' | 'replication'
> & {
  readonly type?: 'postgres';
  readonly replication?: { readonly defaultMode?: ReplicationMode };
  /**
   * Server settings as pg.Client takes them. They hold when every node of the cluster already
   * sends the same value (its `settings`); otherwise a ConfigError says where they go.
   */
  readonly extra?: {
    readonly statement_timeout?: number | string;
    readonly lock_timeout?: number | string;
    readonly idle_in_transaction_session_timeout?: number | string;
    readonly options?: string;
  };
};

/** TypeORM's `cache` option in its object form, and the provider interface it names. */
type TypeOrmCacheSettings = Exclude<PostgresDataSourceOptions['cache'], boolean | undefined>;
type QueryResultCache = ReturnType<NonNullable<TypeOrmCacheSettings['provider']>>;
type QueryResultCacheOptions = Parameters<QueryResultCache['getFromCache']>[0];

/** What a find or query builder asked for: its statement (TypeORM's query id), TTL and tag. */
interface CacheRequest {
  readonly queryId: string;
  readonly ttlMs: number;
  readonly tags: readonly string[];
}

/**
 * Requests by connection: set by the provider's `getFromCache`, which TypeORM calls right
 * before it runs the statement on the same runner; taken by that statement, dropped on release.
 */
const cacheRequests = new WeakMap<object, CacheRequest>();

/**
 * TypeORM's cache provider on a pgpulse DataSource: results stay in pgpulse's cache (keyed by
 * statement, invalidated by writes through pgpulse, never older than the request's own
 * writes). `getFromCache` never returns a result, so TypeORM always runs the statement; the
 * statement is then served from pgpulse's cache or stored there.
 */
export class PgPulseQueryResultCache implements QueryResultCache {
  constructor(private readonly cluster: Cluster) {}

  async connect(): Promise<void> {}

  async disconnect(): Promise<void> {}

  /** No table to create: nothing is stored in the database. */
  async synchronize(): Promise<void> {}

  async getFromCache(
    options: QueryResultCacheOptions,
    queryRunner?: QueryRunner,
  ): Promise<QueryResultCacheOptions | undefined> {
    if (!this.cluster.cache.enabled) {
      throw new ConfigError([
        {
          field: 'cache',
          message:
            "a find or query builder asked for TypeORM's cache, which a pgpulse DataSource serves from the cluster's query result cache, and this cluster has none: add a cache section, e.g. createCluster({ ..., cache: { maxBytes: 64 * 1024 * 1024 } }), or drop the cache option of the query",
        },
      ]);
    }
    if (queryRunner === undefined || options.query === undefined) return undefined;
    const connection: unknown = await queryRunner.connect();
    if (connection !== null && typeof connection === 'object') {
      cacheRequests.set(connection, {
        queryId: options.query,
        ttlMs: options.duration,
        tags: options.identifier === undefined ? [] : [options.identifier],
      });
    }
    return undefined;
  }

  async storeInCache(): Promise<void> {}

  /** Always: a result is never handed to TypeORM from here (see getFromCache). */
  isExpired(): boolean {
    return true;
  }

  /** Drops every entry of this instance's cache. */
  async clear(): Promise<void> {
    this.cluster.cache.clear();
  }

  /** `dataSource.queryResultCache.remove(['users'])`: drops the entries of these cache ids, on every instance. */
  async remove(identifiers: string[]): Promise<void> {
    this.cluster.cache.invalidate({ tags: identifiers });
  }
}

/**
 * `cache` for the DataSource: TypeORM's option routed to pgpulse's cache unless it names a
 * cache of its own (`type` or `provider`) or is false. A `duration` left out is the cluster's
 * `cache.defaultTtlMs` (TypeORM's own default is 1 s).
 */
function cacheOption(
  cluster: Cluster,
  given: PostgresDataSourceOptions['cache'],
): PostgresDataSourceOptions['cache'] {
  if (given === false) return false;
  const settings: TypeOrmCacheSettings = typeof given === 'object' ? given : {};
  if (settings.type !== undefined || settings.provider !== undefined) return given;
  return {
    duration: cluster.config.cache.defaultTtlMs,
    ...settings,
    provider: () => new PgPulseQueryResultCache(cluster),
  };
}

/**
 * Runs the statement a find or query builder asked to cache (see PgPulseQueryResultCache)
 * inside `cluster.cached()`. Transactions and session state pin the connection in core, where
 * nothing is cached.
 */
function honourCacheRequests(cluster: Cluster, client: pg.PoolClient): void {
  const query = client.query;
  const release = client.release;
  client.query = function (this: unknown, ...args: unknown[]) {
    const asked = cacheRequests.get(client);
    if (asked !== undefined) {
      cacheRequests.delete(client);
      const text = args[0];
      if (typeof text === 'string' && asked.queryId.startsWith(`${text} -- PARAMETERS: `)) {
        return cluster.cached(() => Reflect.apply(query, client, args), {
          ttlMs: asked.ttlMs,
          tags: asked.tags,
        });
      }
    }
    return Reflect.apply(query, client, args);
  } as pg.PoolClient['query'];
  client.release = function (this: unknown, ...args: unknown[]) {
    cacheRequests.delete(client);
    client.query = query;
    client.release = release;
    return Reflect.apply(release, client, args);
  } as pg.PoolClient['release'];
}

/** Host markers TypeORM hands back to `new Pool(...)`, telling the two views apart. */
const PRIMARY_VIEW = 'pgpulse.primary';
const ROUTED_VIEW = 'pgpulse.routed';

type Release = (err?: Error | boolean) => void;
type ConnectCallback = (
  err: Error | undefined,
  client: pg.PoolClient | undefined,
  release: Release,
) => void;

/**
 * What TypeORM's postgres driver uses of a pg Pool: `connect` (both forms), `on('error')` and
 * `end`. `end` does not close the cluster: it belongs to whoever created it and may serve
 * other code; close it with `cluster.close()`.
 */
class ClusterPoolView extends EventEmitter {
  /**
   * Where checkouts come from. The primary view runs every statement of a master query runner
   * on the primary: transactions and session state already pin it in core; this adds the reads
   * such a runner makes outside one (TypeORM's own pre-save lookups, schema and migration
   * reads, your own).
   */
  readonly #pool: pg.Pool;

  constructor(
    readonly cluster: Cluster,
    /** `primary`: every statement on the primary; `routed`: each statement routed by its SQL. */
    readonly target: 'primary' | 'routed',
  ) {
    super();
    this.#pool = target === 'primary' ? cluster.pool.scoped({ target: 'primary' }) : cluster.pool;
  }

  connect(): Promise<pg.PoolClient>;
  connect(callback: ConnectCallback): void;
  connect(callback?: ConnectCallback): Promise<pg.PoolClient> | undefined {
    const acquired = this.acquire();
    if (!callback) return acquired;
    acquired.then(
      (client) => callback(undefined, client, (err) => client.release(err)),
      (err: Error) => callback(err, undefined, () => {}),
    );
    return undefined;
  }

  end(callback?: (err?: Error) => void): Promise<void> {
    callback?.();
    return Promise.resolve();
  }

  private async acquire(): Promise<pg.PoolClient> {
    const client = await this.#pool.connect();
    honourCacheRequests(this.cluster, client);
    return client;
  }
}

/** The part of the `pg` module TypeORM's postgres driver uses, as given by `options.driver`. */
interface PgDriverModule {
  readonly Pool: new (options: { readonly host?: string }) => ClusterPoolView;
  readonly defaults: typeof pg.defaults;
}

function pgDriverFor(cluster: Cluster): PgDriverModule {
  class Pool extends ClusterPoolView {
    constructor(options: { readonly host?: string }) {
      if (options.host !== PRIMARY_VIEW && options.host !== ROUTED_VIEW) {
        throw new Error(
          'pgpulse: this driver only serves the DataSource options built by pgpulseDataSourceOptions()',
        );
      }
      super(cluster, options.host === PRIMARY_VIEW ? 'primary' : 'routed');
    }
  }
  // TypeORM sets `parseInt8` through `defaults`; pg's own object keeps that behaviour.
  return { Pool, defaults: pg.defaults };
}

function serverSettingsOnly(extra: unknown): boolean {
  if (extra === null || typeof extra !== 'object') return false;
  return Object.keys(extra).every(
    (key) => (PG_CLIENT_SETTING_FIELDS as readonly string[]).includes(key) || key === 'options',
  );
}

/**
 * `extra: { statement_timeout }` (and the other server settings, or `options`) holds when
 * every node of the cluster already sends that value at connect: the cluster's connections are
 * shared, so the DataSource cannot give them settings of its own. Otherwise the issue says
 * where the setting goes.
 */
function extraSettingsIssues(
  cluster: Cluster,
  extra: Readonly<Record<string, unknown>>,
): ConfigIssue[] {
  const wanted: Record<string, string> = {};
  for (const key of PG_CLIENT_SETTING_FIELDS) {
    if (extra[key] !== undefined) wanted[key] = String(extra[key]);
  }
  const issues: ConfigIssue[] = [];
  if (extra.options !== undefined) {
    const parsed =
      typeof extra.options === 'string' ? parseServerOptions(extra.options) : undefined;
    if (parsed?.ok === true) Object.assign(wanted, parsed.settings);
    else {
      issues.push({
        field: 'typeorm.extra.options',
        message: parsed?.reason ?? "must be a string like '-c statement_timeout=5s'",
      });
    }
  }
  const nodes = [cluster.config.primary, ...cluster.config.replicas];
  for (const [name, value] of Object.entries(wanted)) {
    const missing = nodes.filter((node) => String(node.settings[name] ?? '') !== value);
    if (missing.length === 0) continue;
    issues.push({
      field: `typeorm.extra.${name}`,
      message: `the cluster's connections are shared and ${missing.map((n) => n.name).join(', ')} do not send ${name}=${value}: set it where the connections are made, createCluster({ settings: { ${name}: ${JSON.stringify(value)} } }) (or a node's own settings, or ?options=-c%20${name}%3D${encodeURIComponent(value)} in its URL); extra may then repeat it`,
    });
  }
  return issues;
}

function checkOptions(cluster: Cluster, options: PgPulseTypeOrmOptions): void {
  const given = options as Readonly<Record<string, unknown>>;
  const issues: ConfigIssue[] = [];
  for (const field of CONNECTION_FIELDS) {
    if (field === 'extra' && given.extra !== undefined && serverSettingsOnly(given.extra)) {
      issues.push(
        ...extraSettingsIssues(cluster, given.extra as Readonly<Record<string, unknown>>),
      );
      continue;
    }
    if (given[field] !== undefined) {
      issues.push({
        field: `typeorm.${field}`,
        message:
          field === 'extra'
            ? "connections come from the cluster: server settings such as statement_timeout go in createCluster({ settings: { statement_timeout: '5s' } }) (or a node's own settings), pool sizes in createCluster({ pool }); remove extra from the TypeORM options"
            : 'connections come from the cluster (createCluster({ primary, replicas, pool })); remove it from the TypeORM options',
      });
    }
  }
  if (given.type !== undefined && given.type !== 'postgres') {
    issues.push({ field: 'typeorm.type', message: "must be 'postgres' (or left out)" });
  }
  const replication = given.replication as Readonly<Record<string, unknown>> | undefined;
  for (const field of ['master', 'slaves'] as const) {
    if (replication?.[field] !== undefined) {
      issues.push({
        field: `typeorm.replication.${field}`,
        message:
          'the primary and replicas are the cluster’s nodes; keep only replication.defaultMode',
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}

/**
 * TypeORM DataSource options whose postgres driver runs on the cluster: query builders and
 * `find*` go through the SQL-routed pool (reads to replicas), `save`/`insert`/`update`/`delete`,
 * transactions and `createQueryRunner('master')` run on the primary,
 * `createQueryRunner('slave')` is SQL-routed.
 *
 * With a plain `new DataSource(options)`, `dataSource.query(sql)` uses TypeORM's default master
 * runner and so runs on the primary; `createPgPulseDataSource` routes it by its SQL instead.
 */
export function pgpulseDataSourceOptions(
  cluster: Cluster,
  options: PgPulseTypeOrmOptions,
): PostgresDataSourceOptions {
  checkOptions(cluster, options);
  const defaultMode = options.replication?.defaultMode;
  return {
    ...options,
    type: 'postgres',
    cache: cacheOption(cluster, options.cache),
    driver: pgDriverFor(cluster),
    replication: {
      master: { host: PRIMARY_VIEW },
      slaves: [{ host: ROUTED_VIEW }],
      ...(defaultMode ? { defaultMode } : {}),
    },
  };
}

/**
 * A TypeORM DataSource on the cluster. Everything is TypeORM's, except that `query(sql)`
 * without a query runner is routed by its SQL (a SELECT to a replica, an UPDATE or a writable
 * CTE to the primary) instead of always taking a master connection.
 */
export class PgPulseDataSource extends DataSource {
  readonly cluster: Cluster;

  constructor(cluster: Cluster, options: PgPulseTypeOrmOptions) {
    super(pgpulseDataSourceOptions(cluster, options));
    this.cluster = cluster;
  }
}

// Keeps TypeORM's exact signature (and its `T = any` default) for users' code.
PgPulseDataSource.prototype.query = async function query(
  this: PgPulseDataSource,
  sql: string,
  parameters?: unknown[] | ObjectLiteral,
  queryRunner?: QueryRunner,
): Promise<unknown> {
  if (queryRunner) return DataSource.prototype.query.call(this, sql, parameters, queryRunner);
  const routed = this.createQueryRunner('slave');
  try {
    return await DataSource.prototype.query.call(this, sql, parameters, routed);
  } finally {
    await routed.release();
  }
} as DataSource['query'];

/** The one call: a TypeORM DataSource (not yet initialized) whose driver uses the cluster. */
export function createPgPulseDataSource(
  cluster: Cluster,
  options: PgPulseTypeOrmOptions,
): PgPulseDataSource {
  return new PgPulseDataSource(cluster, options);
}
