import { type Cluster, ConfigError } from '@pgpulse/core';
import type pg from 'pg';
import type { QueryRunner } from 'typeorm';
import type { PostgresDataSourceOptions } from './options.js';

// TypeORM's `cache` option routed to pgpulse's query result cache.

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
export function cacheOption(
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
export function honourCacheRequests(cluster: Cluster, client: pg.PoolClient): void {
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
