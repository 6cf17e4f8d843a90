/** What the classifier decides about a statement, and the classifier's interface. */

export type StatementKind = 'read' | 'write';
/**
 * Why the classifier called a statement a read ('select', 'show', ...) or a write ('write',
 * 'unparseable', 'too-large', a hint, ...). Where a statement then went, and why, is a
 * `RoutingReason` (these reasons and the router's own).
 */
export type ClassificationReason =
  | 'select'
  | 'show'
  | 'values'
  | 'explain'
  | 'table'
  | 'hint-primary'
  | 'hint-replica'
  | 'write'
  | 'ddl'
  | 'locking-clause'
  | 'writable-cte'
  | 'select-into'
  | 'volatile-function'
  | 'multi-statement'
  | 'unparseable'
  | 'empty'
  | 'transaction-control'
  | 'session-state'
  | 'utility'
  | 'explain-analyze'
  | 'call'
  | 'too-large';
export type TransactionControl =
  | 'begin'
  | 'begin-read-only'
  | 'commit'
  | 'rollback'
  | 'savepoint'
  | 'release'
  | 'rollback-to'
  | 'prepare-transaction';
export type SessionEffect =
  | 'set'
  | 'reset'
  | 'listen'
  | 'unlisten'
  | 'temp-table'
  | 'advisory-lock'
  | 'prepare'
  | 'cursor-with-hold'
  | 'discard'
  /** DEALLOCATE: pg's client still believes its named statements exist on that connection. */
  | 'deallocate'
  /**
   * nextval/setval: currval and lastval now answer on this connection only. A client keeps
   * the connection until release; a one-off statement's connection may be reused.
   */
  | 'sequence';

/**
 * What the classifier decided about a statement: read or write, why, the functions it calls and the
 * session state it changes.
 */
export interface Classification {
  readonly kind: StatementKind;
  readonly reason: ClassificationReason;
  /**
   * Function names a read calls, as the parser resolved them: unquoted identifiers are
   * lower-case, quoted ones keep their case, schema-qualified when written so (`public.f`;
   * SQL-syntax forms such as EXTRACT appear as `pg_catalog.extract`). A caller checks them
   * against the catalog's volatile set. Empty when kind is 'write'.
   */
  readonly functions: readonly string[];
  /**
   * Relations a read names (tables, views, CTE names), as the parser resolved them, schema-
   * qualified when written so. A caller checks views against the catalog: a view's definition
   * may call a function that writes. Empty when kind is 'write'.
   */
  readonly relations: readonly string[];
  /**
   * Present for BEGIN/START TRANSACTION/COMMIT/END/ROLLBACK/ABORT/SAVEPOINT/RELEASE/
   * ROLLBACK TO/PREPARE TRANSACTION. Absent for COMMIT/ROLLBACK AND CHAIN, which leave a
   * transaction open on the same connection.
   */
  readonly transaction?: TransactionControl;
  /** Present when the statement changes session state, so the connection must be pinned. */
  readonly session?: SessionEffect;
}

export interface ClassifierOptions {
  /** Extra function names treated as volatile (forces primary). Lower-case, optionally schema-qualified. */
  readonly volatileFunctions?: Iterable<string>;
  /** Function names the user declares safe on replicas even if volatile (allow list wins over built-in list). */
  readonly allowFunctions?: Iterable<string>;
  /** Max cached texts (LRU-ish bounded Map, default 5000). */
  readonly cacheSize?: number;
  /**
   * Longest shape (the text after long constant lists are cut) the parser is given, default
   * 16,384 characters: parsing costs about 1–2 ms per KB on the event loop. A longer statement
   * goes to the primary as 'too-large' without a parse unless something in it could change the
   * connection's state, which only the parser can tell.
   */
  readonly maxParseLength?: number;
}

/**
 * Classifies SQL text as provably read-only or not; anything it cannot prove read-only is a write.
 */
export interface Classifier {
  /** Synchronous; requires loadParser() to have resolved. Never throws for any SQL text. */
  classify(sql: string): Classification;
  /** Current number of cached entries. */
  readonly cacheSize: number;
  /** Texts handed to the parser so far (cache misses that needed a parse). */
  readonly parseCount: number;
}
