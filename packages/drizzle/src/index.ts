/**
 * @pgpulse/drizzle: a drizzle-orm (node-postgres) database over a pgpulse cluster.
 *
 * The adapter holds no routing logic. The database is drizzle's own, built on `cluster.pool`,
 * which routes each statement by its SQL. `$primary`, `$replica` and `$consistency(level)` are
 * the same database built on a view of that pool that runs every statement inside a pgpulse
 * scope (`cluster.primary()`, `cluster.replica()`, `cluster.withConsistency()`). The scope is
 * entered where drizzle hands the SQL to the pool, so it holds even for a query builder that is
 * awaited long after it was made.
 */
import {
  type Cluster,
  type ConsistencyLevel,
  createCluster,
  type InScope,
  type PgPulseConfig,
  type RoutingPool,
} from '@pgpulse/core';

export type { InScope };

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
  };

/** What a scoped block returns: a thenable (such as a lazy query builder) becomes a started promise. */

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
  const db = drizzle<TSchema, RoutingPool>({ ...config, client: pool });
  const scoped = (scope: Scope): PgPulseScopedDatabase<TSchema> =>
    drizzle<TSchema, pg.Pool>({ ...config, client: scopedPool(pool, scope) });

  let primary: PgPulseScopedDatabase<TSchema> | undefined;
  let replica: PgPulseScopedDatabase<TSchema> | undefined;
  const byLevel = new Map<ConsistencyLevel, PgPulseScopedDatabase<TSchema>>();
  const extras = {
    $cluster: { value: target },
    $primary: { get: () => (primary ??= scoped((fn) => target.primary(fn))) },
    $replica: { get: () => (replica ??= scoped((fn) => target.replica(fn))) },
    $consistency: {
      value: (level: ConsistencyLevel): PgPulseScopedDatabase<TSchema> => {
        let found = byLevel.get(level);
        if (!found) {
          found = scoped((fn) => target.withConsistency(level, fn));
          byLevel.set(level, found);
        }
        return found;
      },
    },
    $withConsistency: {
      value: <T>(level: ConsistencyLevel, fn: () => T): InScope<T> =>
        target.withConsistency(level, fn),
    },
  } satisfies PropertyDescriptorMap;
  return Object.defineProperties(db, extras) as PgPulseDatabase<TSchema>;
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
