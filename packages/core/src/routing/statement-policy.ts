import type { ResolvedRoutingConfig } from '../config/index.js';
import type { Classification } from './classifier.js';

export type PolicyReason = 'catalog-volatile' | 'force-primary-pattern';

/**
 * What only the database and the user know about a statement the parser called a read: user
 * functions the catalog marks VOLATILE (they may write), and the user's force-primary
 * patterns. The function check is cached per classification object (one per text when it lists
 * functions), so the hot path is one WeakMap lookup.
 */
export class StatementPolicy {
  private volatile: ReadonlySet<string> | undefined;
  private volatileBare: ReadonlySet<string> = new Set();
  private cache = new WeakMap<Classification, PolicyReason | null>();
  private readonly allow: ReadonlySet<string>;

  constructor(private readonly config: ResolvedRoutingConfig) {
    this.allow = new Set(config.allowFunctions);
  }

  /** Until the catalog has been read, a read that calls any function is not trusted. */
  get catalogKnown(): boolean {
    return this.volatile !== undefined || !this.config.detectCatalogVolatile;
  }

  setCatalogVolatile(names: Iterable<string>): void {
    this.volatile = new Set([...names].filter((n) => !this.allow.has(n)));
    this.volatileBare = new Set([...this.volatile].map((n) => n.slice(n.lastIndexOf('.') + 1)));
    this.cache = new WeakMap();
  }

  /** Why this read must still go to the primary, or undefined when a replica may serve it. */
  forcesPrimary(cls: Classification, text: string): PolicyReason | undefined {
    for (const pattern of this.config.forcePrimaryPatterns) {
      if (pattern.test(text)) return 'force-primary-pattern';
    }
    if (cls.functions.length === 0 || !this.config.detectCatalogVolatile) return undefined;
    // A classification that lists functions belongs to one text, so it can key the cache.
    const cached = this.cache.get(cls);
    if (cached !== undefined) return cached ?? undefined;
    const reason = this.callsVolatile(cls.functions) ? 'catalog-volatile' : undefined;
    if (this.volatile !== undefined) this.cache.set(cls, reason ?? null);
    return reason;
  }

  private callsVolatile(functions: readonly string[]): boolean {
    const volatile = this.volatile;
    for (const fn of functions) {
      if (this.allow.has(fn)) continue;
      if (volatile === undefined) return true;
      if (volatile.has(fn)) return true;
      // An unqualified name may resolve to a volatile function in any schema on search_path.
      if (!fn.includes('.') && this.volatileBare.has(fn)) return true;
    }
    return false;
  }
}

/** User functions (outside pg_catalog) marked VOLATILE, bare and schema-qualified. */
export const CATALOG_VOLATILE_SQL = `
  SELECT n.nspname AS schema, p.proname AS name
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.provolatile = 'v'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%'`;
