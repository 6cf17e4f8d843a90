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
import type { Cluster } from '@pgpulse/core';
import { DataSource, type ObjectLiteral, type QueryRunner } from 'typeorm';
import {
  checkOptions,
  type PgPulseTypeOrmOptions,
  type PostgresDataSourceOptions,
} from './options.js';
import { PRIMARY_VIEW, pgDriverFor, ROUTED_VIEW } from './pool-view.js';
import { cacheOption } from './query-result-cache.js';

export type { PgPulseTypeOrmOptions, PostgresDataSourceOptions } from './options.js';
export { PgPulseQueryResultCache } from './query-result-cache.js';

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
