import { createHash } from 'node:crypto';
import type pg from 'pg';
import { poolView } from '../routing/index.js';
import { CACHE_TYPES_ID } from './key.js';

type TypesConfig = NonNullable<pg.QueryConfig['types']>;
type NamedTypes = TypesConfig & { readonly [CACHE_TYPES_ID]: string };

/** A parser function to its name: drivers that reuse one function pay one lookup. */
const byFunction = new WeakMap<object, string>();
/** Parser source text to its name: a handful of entries (one per driver version loaded). */
const bySource = new Map<string, string>();

/**
 * `pool` with its `query` naming the type parsers a driver sends with each statement, so that
 * the query result cache may key (and so cache) those reads: a statement config whose `types`
 * has a `getTypeParser` function gets the same parsers under `<prefix>:` and a hash of that
 * function's source. That is sound for a driver whose parsers are that function (a fixed table
 * plus pg's global parsers), as drizzle's node-postgres driver and @prisma/adapter-pg are.
 * Everything else is the pool itself (methods bound, since it keeps its state in private
 * fields); it stays `instanceof pg.Pool`. Use it only with a cache configured: without one the
 * naming is work for nothing.
 */
export function withNamedTypes<P extends pg.Pool>(pool: P, prefix: string): P {
  const query = (...args: unknown[]): unknown =>
    Reflect.apply(pool.query, pool, nameTypes(args, prefix));
  return poolView(pool, { query });
}

function nameTypes(args: unknown[], prefix: string): unknown[] {
  const first = args[0];
  if (first === null || typeof first !== 'object') return args;
  const types = (first as pg.QueryConfig).types;
  if (types === undefined || CACHE_TYPES_ID in types) return args;
  const parse = types.getTypeParser;
  if (typeof parse !== 'function') return args;
  let name = byFunction.get(parse);
  if (name === undefined) {
    const source = `${prefix}\0${Function.prototype.toString.call(parse)}`;
    name = bySource.get(source);
    if (name === undefined) {
      name = `${prefix}:${createHash('sha256').update(source).digest('base64url').slice(0, 22)}`;
      if (bySource.size > 64) bySource.clear();
      bySource.set(source, name);
    }
    byFunction.set(parse, name);
  }
  const named: NamedTypes = { getTypeParser: parse, [CACHE_TYPES_ID]: name };
  return [{ ...(first as pg.QueryConfig), types: named }, ...args.slice(1)];
}
