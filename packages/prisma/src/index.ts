/**
 * @pgpulse/prisma: Prisma 7 on a pgpulse cluster.
 *
 * `pgpulseAdapter(cluster)` is the driver adapter: `@prisma/adapter-pg` over the cluster's
 * routing pool, so every statement Prisma sends is routed by its SQL. `pgpulseExtension(cluster)`
 * (or `withPgPulse(cluster, client)`) adds `$primary()`, `$replica()`, `$consistency(level)` and
 * `$withConsistency(level, fn)`. No routing decision is made here: the adapter only enters
 * core's scopes (`cluster.primary()`, `cluster.replica()`, `cluster.withConsistency()`), at the
 * moment a query runs. `$cached(options)` enters `cluster.cached()`: the query result cache.
 *
 * @prisma/adapter-pg passes its own type parsers (`types`) with every statement, which the
 * cache refuses unless they are named: the pool the adapter is given names them after the
 * source of the adapter's parser function (CACHE_TYPES_ID), so cached rows are Prisma's rows.
 */
import {
  type CachedOptions,
  type Cluster,
  type ConsistencyLevel,
  cachedOptionsKey,
  type InScope,
  withNamedTypes,
} from '@pgpulse/core';
import { PrismaPg } from '@prisma/adapter-pg';
import { Prisma } from '@prisma/client/extension';
import type { Types } from '@prisma/client/runtime/client';

export type { CachedOptions, InScope };

/** Options handed to `PrismaPg` (schema, statement names, error callbacks...). */
export type PgPulseAdapterOptions = NonNullable<ConstructorParameters<typeof PrismaPg>[1]>;

/**
 * The driver adapter for `new PrismaClient({ adapter })`: `@prisma/adapter-pg` over
 * `cluster.pool`. Reads go to replicas, writes and transactions (interactive and batch) to the
 * primary, `$queryRaw`/`$executeRaw` by their SQL. `prisma.$disconnect()` leaves the cluster
 * open (close it with `cluster.close()`) unless `disposeExternalPool: true` is given.
 */
export function pgpulseAdapter(cluster: Cluster, options?: PgPulseAdapterOptions): PrismaPg {
  // adapter-pg sends its own type parsers with every query; named, its reads can be cached.
  const pool = cluster.config.cache.enabled ? withNamedTypes(cluster.pool, 'prisma') : cluster.pool;
  return new PrismaPg(pool, options);
}

/** The methods the extension adds to the client (and to every client derived from it). */
export type PgPulseClientMethods = {
  /**
   * The same client with every statement, reads included, on the primary. The scope is entered
   * when a query runs, so a query built from it may be awaited anywhere. Inside an interactive
   * transaction it returns the transaction client itself (already on the primary).
   */
  $primary<T extends object>(this: T): T;
  /**
   * The same client with reads on replicas even right after this context's own writes
   * (eventual consistency). Writes and transactions still go to the primary. Inside an
   * interactive transaction it returns the transaction client itself.
   */
  $replica<T extends object>(this: T): T;
  /**
   * The same client with its reads at `level`: `'eventual'`, `'read-your-writes'` or
   * `'strong'` (reads on the primary).
   */
  $consistency<T extends object>(this: T, level: ConsistencyLevel): T;
  /**
   * Runs `fn` with `level` for every statement it makes, through any client. A Prisma query
   * that `fn` returns without awaiting is started inside the scope, so
   * `await prisma.$withConsistency('strong', () => prisma.user.findMany())` reads the primary.
   */
  $withConsistency<R>(this: object, level: ConsistencyLevel, fn: () => R): InScope<R>;
  /**
   * The same client with its reads served from pgpulse's query result cache (the cluster's
   * `cache` section): `await prisma.$cached({ ttlMs: 30_000, tags: ['plans'] }).plan.findMany()`.
   * Only provably read-only statements outside a transaction are cached; a write through
   * pgpulse drops the entries of the tables it changed, and a context never gets an entry
   * older than its own writes. Throws a ConfigError when the cluster has no `cache`. Inside an
   * interactive transaction it returns the transaction client itself (nothing is cached there).
   */
  $cached<T extends object>(this: T, options?: CachedOptions): T;
};

type NoArgs = Record<never, never>;

/** What the extension adds, in the form Prisma's `$extends` types read. */
export type PgPulseExtensionArgs = Types.Extensions.InternalArgs<
  NoArgs,
  NoArgs,
  NoArgs,
  PgPulseClientMethods
>;

/** The value `pgpulseExtension(cluster)` returns, for `prisma.$extends(...)`. */
export type PgPulseExtension = (client: unknown) => { $extends: { extArgs: PgPulseExtensionArgs } };

type Scope = <T>(fn: () => T) => InScope<T>;

interface QueryHookParams {
  operation: string;
  args: unknown;
  query: (args: unknown) => PromiseLike<unknown>;
}

type QueryHook = (params: QueryHookParams) => Promise<unknown>;

interface ExtendableClient {
  $extends(extension: { name: string; query: { $allOperations: QueryHook } }): object;
}

function isExtendable(client: object): client is ExtendableClient {
  return typeof (client as { $extends?: unknown }).$extends === 'function';
}

/** `$cached()` clients kept per distinct options (a tag per row must not grow this without end). */
const MAX_CACHED_CLIENTS = 256;

/** Checks `$cached()`'s options (a ConfigError that says what to do); returns their memo key. */
function cachedKey(cluster: Cluster, options: CachedOptions): string {
  return `cache:${cachedOptionsKey(cluster.cache.enabled, options, 'prisma.$cached()')}`;
}

/**
 * Prisma merges the `findUnique`/`findUniqueOrThrow` calls that reach it in the same tick into
 * one statement, sent from a `process.nextTick` callback scheduled by the first of them, so the
 * statement runs in the first caller's async context: a `$primary()` findUnique made in the same
 * tick as an unscoped one would ride along to a replica. Under a scope that must not read stale
 * data these two are sent from a `setImmediate` callback instead: by then every earlier batch
 * has been dispatched, and the request reaches Prisma's batcher synchronously from inside the
 * scope, opening a batch of its own (calls that join it run in that scope, which is safe).
 * Cost: one event-loop turn for these two operations under such a scope.
 */
const MERGED_BY_PRISMA = new Set(['findUnique', 'findUniqueOrThrow']);

/** A query hook that runs each query inside `scope`, when the query runs. */
function scopeHook(scope: Scope, unmerged: boolean): QueryHook {
  return ({ operation, args, query }) => {
    const run = () => scope(() => query(args));
    if (!unmerged || !MERGED_BY_PRISMA.has(operation)) return run();
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          run().then(resolve, reject);
        } catch (err) {
          reject(err);
        }
      });
    });
  };
}

/**
 * The client extension: `prisma.$extends(pgpulseExtension(cluster))`. Every model, its types
 * and the rest of Prisma's API stay as they are; `$primary()`, `$replica()`,
 * `$consistency(level)` and `$withConsistency(level, fn)` are added.
 */
export function pgpulseExtension(cluster: Cluster): PgPulseExtension {
  // Derived clients are built once per (client, scope). Each remembers the client it was
  // derived from, so `prisma.$replica().$primary()` is `prisma.$primary()`: the last call wins.
  const derived = new Map<string, WeakMap<object, object>>();
  const roots = new WeakMap<object, object>();
  let cachedKeys = 0;

  function scoped<T extends object>(self: T, key: string, hook: () => QueryHook): T {
    const context: object = Prisma.getExtensionContext(self);
    const root = roots.get(context) ?? context;
    // A transaction client cannot be extended; its statements all run on the transaction's
    // primary connection anyway.
    if (!isExtendable(root)) return self;
    let byRoot = derived.get(key);
    if (!byRoot) {
      if (key.startsWith('cache:') && ++cachedKeys > MAX_CACHED_CLIENTS) {
        for (const k of derived.keys()) if (k.startsWith('cache:')) derived.delete(k);
        cachedKeys = 1;
      }
      byRoot = new WeakMap();
      derived.set(key, byRoot);
    }
    let client = byRoot.get(root);
    if (!client) {
      client = root.$extends({ name: `pgpulse:${key}`, query: { $allOperations: hook() } });
      byRoot.set(root, client);
      roots.set(client, root);
    }
    return client as T;
  }

  const methods: PgPulseClientMethods = {
    $primary<T extends object>(this: T): T {
      return scoped(this, 'primary', () => scopeHook((fn) => cluster.primary(fn), true));
    },
    $replica<T extends object>(this: T): T {
      return scoped(this, 'replica', () => scopeHook((fn) => cluster.replica(fn), false));
    },
    $consistency<T extends object>(this: T, level: ConsistencyLevel): T {
      return scoped(this, level, () =>
        scopeHook((fn) => cluster.withConsistency(level, fn), level !== 'eventual'),
      );
    },
    $withConsistency<R>(level: ConsistencyLevel, fn: () => R): InScope<R> {
      return cluster.withConsistency(level, fn);
    },
    $cached<T extends object>(this: T, options: CachedOptions = {}): T {
      const key = cachedKey(cluster, options);
      const frozen: CachedOptions = { ttlMs: options.ttlMs, tags: [...(options.tags ?? [])] };
      // Unmerged, as under $primary(): a cached findUnique must not ride in (or carry) another
      // request's batch.
      return scoped(this, key, () => scopeHook((fn) => cluster.cached(fn, frozen), true));
    },
  };

  // Plain requests too: a findUnique right after this context's own write must not be merged
  // into another request's batch (which runs in that request's context and may read a replica
  // that lacks the write). Such a read is sent on its own, on the primary, one turn later.
  const readYourWrites = scopeHook((fn) => cluster.primary(fn), true);

  return Prisma.defineExtension((client) =>
    client
      .$extends({
        name: 'pgpulse:read-your-writes',
        query: {
          $allOperations: ({ operation, args, query }) =>
            MERGED_BY_PRISMA.has(operation) && cluster.hasUnreplicatedWrites()
              ? readYourWrites({ operation, args, query: (a) => query(a as typeof args) })
              : query(args),
        },
      })
      .$extends({ name: 'pgpulse', client: methods }),
  ) as PgPulseExtension;
}

/** A generated PrismaClient (or an extended one): anything with Prisma's `$extends` hook. */
export interface PrismaClientLike {
  $extends: { extArgs: Types.Extensions.InternalArgs };
}

/**
 * The client `withPgPulse(cluster, client)` returns: exactly the type of
 * `client.$extends(pgpulseExtension(cluster))`.
 */
export type PgPulseClient<C> = C extends {
  $extends: Types.Extensions.ExtendsHook<
    'extends',
    infer TypeMapCb extends Types.Extensions.TypeMapCbDef,
    infer ExtArgs extends Types.Extensions.InternalArgs,
    infer TypeMap extends Types.Extensions.TypeMapDef
  >;
}
  ? Types.Extensions.DynamicClientExtensionThis<
      Types.Utils.Call<
        TypeMapCb,
        { extArgs: Types.Extensions.MergeExtArgs<TypeMap, ExtArgs, PgPulseExtensionArgs> }
      >,
      TypeMapCb,
      Types.Extensions.MergeExtArgs<TypeMap, ExtArgs, PgPulseExtensionArgs>
    >
  : never;

/**
 * One call on a client built with `pgpulseAdapter(cluster)`:
 * `const prisma = withPgPulse(cluster, new PrismaClient({ adapter: pgpulseAdapter(cluster) }))`.
 * The same as `client.$extends(pgpulseExtension(cluster))`.
 */
export function withPgPulse<C extends PrismaClientLike>(
  cluster: Cluster,
  client: C,
): PgPulseClient<C> {
  // The cluster comes first, as in every adapter (drizzle's withPgPulse, TypeORM's
  // createPgPulseDataSource); an earlier release took (client, cluster).
  if (typeof (cluster as Partial<Cluster>).primary !== 'function' || !('pool' in cluster)) {
    throw new TypeError(
      'pgpulse: withPgPulse(cluster, client) takes the cluster first: swap the arguments',
    );
  }
  const extend = client.$extends as unknown as (extension: PgPulseExtension) => PgPulseClient<C>;
  return extend.call(client, pgpulseExtension(cluster));
}
