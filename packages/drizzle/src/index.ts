/**
 * @pgpulse/drizzle: a drizzle-orm (node-postgres) database over a pgpulse cluster.
 *
 * The adapter holds no routing logic. The database is drizzle's own, built on `cluster.pool`,
 * which routes each statement by its SQL. `$primary`, `$replica` and `$consistency(level)` are
 * the same database built on a view of that pool that runs every statement inside a pgpulse
 * scope (`cluster.primary()`, `cluster.replica()`, `cluster.withConsistency()`). The scope is
 * entered where drizzle hands the SQL to the pool, so it holds even for a query builder that is
 * awaited long after it was made. `$cached(options)` is the same again with
 * `cluster.cached()` as the scope: the query result cache.
 *
 * drizzle's driver passes its own type parsers (`types`) with every statement, which the cache
 * refuses unless they are named: the pool drizzle is given names them after the source of
 * drizzle's parser function (CACHE_TYPES_ID), so cached rows are always drizzle's rows.
 */
import {
  type CachedOptions,
  type Cluster,
  type ConsistencyLevel,
  cachedOptionsKey,
  createCluster,
  type InScope,
  type PgPulseConfig,
  type RoutingPool,
  withNamedTypes,
} from '@pgpulse/core';

export type { CachedOptions, InScope };

import type { DrizzleConfig } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type pg from 'pg';

type AnySchema = Record<string, unknown>;

/** The same database as the one it came from, with every statement run under one scope. */
export type PgPulseScopedDatabase<TSchema extends AnySchema = Record<string, never>> =
  NodePgDatabase<TSchema> & {
    /** A view of the cluster's pool that applies this database's scope. */
    $client: pg.Pool;
  };

/** drizzle's `NodePgDatabase`, unchanged, plus pgpulse's overrides. */
export type PgPulseDatabase<TSchema extends AnySchema = Record<string, never>> =
  NodePgDatabase<TSchema> & {
    /** The cluster's routing pool (`db.$client.end()` closes the cluster). */
    $client: RoutingPool;
    /** The cluster: `stats()`, `close()`, `ready()` and the rest of pgpulse's API. */
    readonly $cluster: Cluster;
    /** Every statement, reads included, on the primary. */
    readonly $primary: PgPulseScopedDatabase<TSchema>;
    /**
     * Reads on replicas even right after this context's own writes (eventual consistency).
     * Writes still go to the primary.
     */
    readonly $replica: PgPulseScopedDatabase<TSchema>;
    /** Reads of this database follow `level` (`'strong'` reads from the primary). */
    $consistency(level: ConsistencyLevel): PgPulseScopedDatabase<TSchema>;
    /**
     * Runs `fn` with `level` for every statement it makes, through any database. When `fn`
     * returns a query builder (or any promise), it is started inside the scope, so
     * `await db.$withConsistency('strong', () => db.select().from(users))` reads from the primary.
     */
    $withConsistency<T>(level: ConsistencyLevel, fn: () => T): InScope<T>;
    /**
     * The same database with its reads served from pgpulse's query result cache (the cluster's
     * `cache` section): `await db.$cached({ ttlMs: 30_000, tags: ['plans'] }).select().from(plans)`.
     * Only provably read-only statements outside a transaction are cached; a write through
     * pgpulse drops the entries of the tables it changed, and a context never gets an entry
     * older than its own writes. Throws a ConfigError when the cluster has no `cache`.
     */
    $cached(options?: CachedOptions): PgPulseScopedDatabase<TSchema>;
  };

/** Runs a block inside a pgpulse scope: a thenable it returns (a lazy query builder) becomes a started promise. */
type Scope = <T>(fn: () => T) => InScope<T>;

/**
 * Builds a drizzle database (node-postgres driver) over a pgpulse cluster.
 *
 * ```ts
 * const db = withPgPulse({ primary: PRIMARY_URL, replicas: [REPLICA_URL] }, { schema });
 * // or, with a cluster you created: withPgPulse(cluster, { schema })
 * ```
 *
 * `config` is drizzle's own (`schema`, `logger`, `casing`, `cache`).
 */
export function withPgPulse<TSchema extends AnySchema = Record<string, never>>(
  cluster: Cluster | PgPulseConfig,
  config: DrizzleConfig<TSchema> = {},
): PgPulseDatabase<TSchema> {
  const target = isCluster(cluster) ? cluster : createCluster(cluster);
  const pool = target.pool;
  // drizzle's session gets the pool with its parsers named; `db.$client` stays the pool itself.
  // The naming matters to the cache only: without one, drizzle gets the pool itself.
  const naming = target.config.cache.enabled;
  const db = drizzle<TSchema, RoutingPool>({
    ...config,
    client: naming ? withNamedTypes(pool, 'drizzle') : pool,
  });
  const scoped = (view: pg.Pool): PgPulseScopedDatabase<TSchema> =>
    drizzle<TSchema, pg.Pool>({
      ...config,
      client: naming ? withNamedTypes(view, 'drizzle') : view,
    });
  const inScope = (scope: Scope): PgPulseScopedDatabase<TSchema> => scoped(scopedPool(pool, scope));
  const byCache = new Map<string, PgPulseScopedDatabase<TSchema>>();

  let primary: PgPulseScopedDatabase<TSchema> | undefined;
  let replica: PgPulseScopedDatabase<TSchema> | undefined;
  const byLevel = new Map<ConsistencyLevel, PgPulseScopedDatabase<TSchema>>();
  const extras = {
    $client: { value: pool, writable: true, configurable: true, enumerable: true },
    $cluster: { value: target },
    $primary: { get: () => (primary ??= scoped(pool.scoped({ target: 'primary' }))) },
    $replica: { get: () => (replica ??= scoped(pool.scoped({ target: 'replica' }))) },
    $consistency: {
      value: (level: ConsistencyLevel): PgPulseScopedDatabase<TSchema> => {
        let found = byLevel.get(level);
        if (!found) {
          found = scoped(pool.scoped({ consistency: level }));
          byLevel.set(level, found);
        }
        return found;
      },
    },
    $withConsistency: {
      value: <T>(level: ConsistencyLevel, fn: () => T): InScope<T> =>
        target.withConsistency(level, fn),
    },
    $cached: {
      value: (options: CachedOptions = {}): PgPulseScopedDatabase<TSchema> => {
        const key = cachedKey(target, options);
        let found = byCache.get(key);
        if (!found) {
          const frozen: CachedOptions = { ttlMs: options.ttlMs, tags: [...(options.tags ?? [])] };
          found = inScope((fn) => target.cached(fn, frozen));
          // Bounded: a tag per row (`user:${id}`) must not grow this without end.
          if (byCache.size >= MAX_CACHED_DATABASES) byCache.clear();
          byCache.set(key, found);
        }
        return found;
      },
    },
  } satisfies PropertyDescriptorMap;
  return Object.defineProperties(db, extras) as PgPulseDatabase<TSchema>;
}

/** `$cached()` databases kept for reuse (building one re-reads the schema's relations). */
const MAX_CACHED_DATABASES = 256;

/** Checks the options (a ConfigError that says what to do) and returns their memo key. */
function cachedKey(cluster: Cluster, options: CachedOptions): string {
  return cachedOptionsKey(cluster.cache.enabled, options, 'db.$cached()');
}

function isCluster(value: Cluster | PgPulseConfig): value is Cluster {
  // Duck-typed rather than `instanceof`, so two copies of @pgpulse/core still work together.
  return typeof value.primary === 'function' && 'pool' in value;
}

/**
 * The cluster's pool seen through `scope`: `query` and `connect` (and the client it returns)
 * run inside the scope; everything else is the pool itself. It stays `instanceof pg.Pool`, so
 * drizzle's transactions still check out one client.
 */
function scopedPool(pool: RoutingPool, scope: Scope): pg.Pool {
  const query = (...args: unknown[]): unknown => scope(() => Reflect.apply(pool.query, pool, args));
  const connect = (...args: unknown[]): unknown => {
    const callback = args[0];
    if (typeof callback === 'function') {
      return scope(() =>
        pool.connect((err, client, done) =>
          Reflect.apply(callback, undefined, [err, client && scopedClient(client, scope), done]),
        ),
      );
    }
    return scope(() => pool.connect()).then((client) => scopedClient(client, scope));
  };
  return passThrough(pool, { query, connect });
}

function scopedClient(client: pg.PoolClient, scope: Scope): pg.PoolClient {
  const query = (...args: unknown[]): unknown =>
    scope(() => Reflect.apply(client.query, client, args));
  return passThrough(client, { query });
}

/**
 * A proxy of `target` with `overrides` in place of some methods. Other methods are bound to the
 * target, since pgpulse's pool and client keep their state in private fields.
 */
function passThrough<T extends object>(target: T, overrides: Record<string, unknown>): T {
  const bound = new WeakMap<object, unknown>();
  return new Proxy(target, {
    get(object, property) {
      if (typeof property === 'string' && Object.hasOwn(overrides, property)) {
        return overrides[property];
      }
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      let fn = bound.get(value);
      if (fn === undefined) {
        fn = value.bind(object);
        bound.set(value, fn);
      }
      return fn;
    },
  });
}
