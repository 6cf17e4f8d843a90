import type { ResolvedRoutingConfig } from '../config/index.js';
import { shapeOf } from '../sql/index.js';
import type { Classification } from './classification.js';
import { BUILTIN_VOLATILE_FUNCTIONS } from './volatile-functions.js';

export type PolicyReason = 'catalog-volatile' | 'force-primary-pattern' | 'learned-refusal';

/** Statements learned from replicas' refusals, each way; the oldest are forgotten past it. */
const MAX_LEARNED = 1000;
/** Texts up to this long remember whether their shape was learned, so a hit costs no lexing. */
const MAX_SHAPE_MEMO_TEXT = 2048;

/**
 * What only the database and the user know about a statement the parser called a read: user
 * functions the catalog marks VOLATILE (they may write), views whose definition calls one,
 * statements a replica refused as writes, and the user's force-primary patterns. The function
 * check is cached per classification object (one per text when it lists functions or
 * relations), so the hot path is one WeakMap lookup.
 */
export class StatementPolicy {
  private volatile: ReadonlySet<string> | undefined;
  private volatileBare: ReadonlySet<string> = new Set();
  /** View (schema-qualified, and bare) -> functions it calls, directly or through other views. */
  private views: ReadonlyMap<string, readonly string[]> = new Map();
  private cache = new WeakMap<Classification, PolicyReason | null>();
  private readonly allow: ReadonlySet<string>;
  private readonly learnedTexts = new Set<string>();
  private readonly learnedShapes = new Set<string>();
  private readonly shapeMemo = new Map<string, boolean>();
  /** DDL went through pgpulse and the catalog is being read again: any relation may be a view. */
  private viewsStale = false;
  /**
   * The catalog's first read has not finished (the cluster clears it once that read succeeded
   * or failed): meanwhile any relation may be a view that calls a volatile function.
   */
  firstReadPending = true;
  /** Every user view, schema-qualified and bare; undefined until the catalog has been read. */
  private viewNames: ReadonlySet<string> | undefined;

  constructor(private readonly config: ResolvedRoutingConfig) {
    this.allow = new Set(config.allowFunctions);
  }

  /** Until the catalog has been read, a read that calls any function is not trusted. */
  get catalogKnown(): boolean {
    return this.volatile !== undefined || !this.config.detectCatalogVolatile;
  }

  /** Statements learned from replicas' refusals and still sent to the primary. */
  get learnedCount(): number {
    return this.learnedTexts.size;
  }

  setCatalogVolatile(names: Iterable<string>): void {
    this.volatile = new Set([...names].filter((n) => !this.allow.has(n)));
    this.volatileBare = new Set([...this.volatile].map((n) => n.slice(n.lastIndexOf('.') + 1)));
    this.cache = new WeakMap();
  }

  /**
   * The functions each view calls (`schema.view` -> [`schema.function`, ...], already resolved
   * through views on views). A read of a view is checked as if it called them itself.
   */
  setViewFunctions(views: ReadonlyMap<string, readonly string[]>): void {
    const byName = new Map<string, string[]>();
    for (const [view, functions] of views) {
      byName.set(view, [...functions]);
      // search_path may resolve a bare name to this view: a bare reference gets every match.
      const bare = view.slice(view.lastIndexOf('.') + 1);
      byName.set(bare, [...(byName.get(bare) ?? []), ...functions]);
    }
    this.views = byName;
    this.viewsStale = false;
    this.cache = new WeakMap();
  }

  /** Every user view (`schema.view`) the catalog lists; a bare reference matches any of them. */
  setViews(names: Iterable<string>): void {
    const all = new Set<string>();
    for (const name of names) {
      all.add(name);
      all.add(name.slice(name.lastIndexOf('.') + 1));
    }
    this.viewNames = all;
  }

  /**
   * May `relation` (as the parser names it) be a view? True while the catalog is unknown or
   * being read again after DDL: the query result cache then treats it as reading any table.
   */
  mayBeView(relation: string): boolean {
    if (this.viewNames === undefined || this.viewsStale) return true;
    return this.viewNames.has(relation);
  }

  /**
   * Forgets what the catalog said until it is read again (DDL went through pgpulse): reads that
   * call a function or name a relation go to the primary meanwhile.
   */
  invalidateCatalog(): void {
    if (!this.config.detectCatalogVolatile) return;
    this.volatile = undefined;
    this.viewsStale = true;
    this.cache = new WeakMap();
  }

  /**
   * A replica refused this statement as a write: send its text, and every text of the same
   * shape (lists of any length, any parameter numbers), to the primary from now on.
   */
  learnRefused(text: string): void {
    remember(this.learnedTexts, text);
    remember(this.learnedShapes, shapeOf(text, { renumberParams: true }).text);
    this.shapeMemo.clear();
  }

  /** The catalog changed: what refusals taught may no longer hold, the catalog decides again. */
  forgetLearned(): void {
    this.learnedTexts.clear();
    this.learnedShapes.clear();
    this.shapeMemo.clear();
  }

  /** Why this read must still go to the primary, or undefined when a replica may serve it. */
  forcesPrimary(cls: Classification, text: string): PolicyReason | undefined {
    for (const pattern of this.config.forcePrimaryPatterns) {
      if (pattern.test(text)) return 'force-primary-pattern';
    }
    const catalog = this.catalogReason(cls);
    if (catalog !== undefined) return catalog;
    return this.learnedTexts.size > 0 && this.wasRefused(text) ? 'learned-refusal' : undefined;
  }

  private catalogReason(cls: Classification): PolicyReason | undefined {
    if (!this.config.detectCatalogVolatile) return undefined;
    if (cls.functions.length === 0 && cls.relations.length === 0) return undefined;
    // A classification that lists functions or relations belongs to one shape: a cache key.
    const cached = this.cache.get(cls);
    if (cached !== undefined) return cached ?? undefined;
    const reason = this.callsVolatile(cls) ? 'catalog-volatile' : undefined;
    if (this.volatile !== undefined) this.cache.set(cls, reason ?? null);
    return reason;
  }

  private wasRefused(text: string): boolean {
    if (this.learnedTexts.has(text)) return true;
    const memo = this.shapeMemo.get(text);
    if (memo !== undefined) return memo;
    const refused = this.learnedShapes.has(shapeOf(text, { renumberParams: true }).text);
    if (text.length <= MAX_SHAPE_MEMO_TEXT) {
      if (this.shapeMemo.size >= MAX_LEARNED) this.shapeMemo.clear();
      this.shapeMemo.set(text, refused);
    }
    return refused;
  }

  private callsVolatile(cls: Classification): boolean {
    // Catalog being re-read after DDL, or its first read still under way (a cold start reads
    // it in the background, #22): a relation may be a view that calls anything.
    if ((this.viewsStale || this.firstReadPending) && cls.relations.length > 0) return true;
    if (this.anyVolatile(cls.functions)) return true;
    for (const relation of cls.relations) {
      const functions = this.views.get(relation);
      if (functions !== undefined && this.anyVolatile(functions)) return true;
    }
    return false;
  }

  private anyVolatile(functions: readonly string[]): boolean {
    const volatile = this.volatile;
    for (const fn of functions) {
      if (this.allow.has(fn)) continue;
      if (volatile === undefined) return true;
      if (volatile.has(fn)) return true;
      // A built-in that writes, as a view's dependency (the classifier checks those in the text).
      if (fn.startsWith('pg_catalog.') && BUILTIN_VOLATILE_FUNCTIONS.has(fn.slice(11))) return true;
      // An unqualified name may resolve to a volatile function in any schema on search_path.
      if (!fn.includes('.') && this.volatileBare.has(fn)) return true;
    }
    return false;
  }
}

function remember(set: Set<string>, value: string): void {
  if (set.has(value)) return;
  if (set.size >= MAX_LEARNED) set.delete(set.values().next().value as string);
  set.add(value);
}

/** Every user view, schema-qualified (the query result cache must know them: see mayBeView). */
export const CATALOG_VIEWS_SQL = `
  SELECT n.nspname AS schema, c.relname AS name
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'v'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')`;

/** User functions (outside pg_catalog) marked VOLATILE, bare and schema-qualified. */
export const CATALOG_VOLATILE_SQL = `
  SELECT n.nspname AS schema, p.proname AS name
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.provolatile = 'v'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%'`;
