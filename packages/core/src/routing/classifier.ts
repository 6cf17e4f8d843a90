import { parseSync } from 'libpg-query';
import { ConfigError } from '../errors/index.js';
import {
  type AstNode,
  arrayField,
  isParserLoaded,
  isRecord,
  parserNotLoaded,
  shapeOf,
  splitStatements,
  unwrapNode,
} from '../sql/index.js';
import type { Classification, Classifier, ClassifierOptions } from './classification.js';
import {
  combineStatements,
  EMPTY,
  NO_FUNCTIONS,
  result,
  TOO_LARGE,
  UNPARSEABLE,
  UTILITY,
  WRITE,
} from './classification-results.js';
import { findHint, mayContainHint } from './hints.js';
import { hasNoSessionEffect, isPlainWrite } from './shortcuts.js';
import { StatementTreeClassifier } from './tree-classifier.js';
import { BUILTIN_VOLATILE_FUNCTIONS, collectNames, FunctionMatcher } from './volatile-functions.js';

// The classification types have their own file; they are named here too for the modules that
// import them with the classifier.
export { BUILTIN_VOLATILE_FUNCTIONS };

const DEFAULT_CACHE_SIZE = 5000;
const DEFAULT_MAX_PARSE_LENGTH = 16_384;
/**
 * Texts longer than this are classified but not cached: they are usually generated with inline
 * values (bulk INSERTs, long IN lists), so they rarely repeat, and 5000 of them would pin a
 * lot of memory. Their shape (lists cut) is cached instead when it is short.
 */
const MAX_CACHED_TEXT_LENGTH = 32_768;
/**
 * A text whose shape differs from it is cached under its own text too only up to this length:
 * every size of an IN list is a new text, and they would crowd out everything else.
 */
const MAX_CACHED_VARIANT_LENGTH = 1024;

/**
 * `sql.trim() === ''` without trim's copy: trimming a 1.3 MB INSERT costs 4 ms, this stops at
 * the first character that is not JavaScript whitespace (the same set trim() removes).
 */
function isBlank(sql: string): boolean {
  return !/\S/.test(sql);
}

function statementNode(raw: unknown): AstNode | undefined {
  return isRecord(raw) ? unwrapNode(raw.stmt) : undefined;
}

// ---------------------------------------------------------------------------------------------
// The classifier

class SqlClassifier implements Classifier {
  readonly #cache = new Map<string, Classification>();
  readonly #maxEntries: number;
  readonly #maxParseLength: number;
  readonly #tree: StatementTreeClassifier;
  #parses = 0;

  constructor(options: ClassifierOptions) {
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    if (!Number.isInteger(size) || size < 0) {
      throw new ConfigError([
        {
          field: 'cacheSize',
          message: `must be a non-negative integer (got ${String(size)}); use 0 to disable the cache`,
        },
      ]);
    }
    const parseLength = options.maxParseLength ?? DEFAULT_MAX_PARSE_LENGTH;
    if (!Number.isInteger(parseLength) || parseLength < 1) {
      throw new ConfigError([
        {
          field: 'maxParseLength',
          message: `must be a positive integer number of characters (got ${String(parseLength)}), e.g. 16384`,
        },
      ]);
    }
    this.#maxEntries = size;
    this.#maxParseLength = parseLength;
    this.#tree = new StatementTreeClassifier(
      new FunctionMatcher(
        [
          ...BUILTIN_VOLATILE_FUNCTIONS,
          ...collectNames(options.volatileFunctions, 'volatileFunctions'),
        ],
        collectNames(options.allowFunctions, 'allowFunctions'),
      ),
    );
  }

  get cacheSize(): number {
    return this.#cache.size;
  }

  get parseCount(): number {
    return this.#parses;
  }

  classify(sql: string): Classification {
    const hit = this.#cache.get(sql);
    if (hit !== undefined) return hit;
    if (!isParserLoaded()) throw parserNotLoaded();
    // Callers in plain JavaScript may pass a query config object; never cache on object keys.
    if (typeof sql !== 'string') return UNPARSEABLE;
    if (isBlank(sql)) return this.#remember(sql, EMPTY);
    // The parser reads a C string and would stop at NUL, hiding whatever follows it.
    if (sql.includes('\0')) return this.#remember(sql, UNPARSEABLE);
    if (isPlainWrite(sql)) return this.#remember(sql, WRITE);
    // Every size of a constant list shares one shape, one parse and one cache entry.
    const shape = shapeOf(sql, { renumberParams: true }).text;
    if (shape === sql) return this.#remember(sql, this.#classifyShape(sql));
    let classification = this.#cache.get(shape);
    if (classification === undefined) {
      classification = this.#classifyShape(shape);
      this.#remember(shape, classification);
    }
    if (sql.length <= MAX_CACHED_VARIANT_LENGTH) this.#remember(sql, classification);
    return classification;
  }

  #remember(sql: string, classification: Classification): Classification {
    if (this.#maxEntries === 0 || sql.length > MAX_CACHED_TEXT_LENGTH) return classification;
    if (this.#cache.size >= this.#maxEntries) {
      // Insertion order: evicting the oldest keeps a hit free of any bookkeeping.
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
    this.#cache.set(sql, classification);
    return classification;
  }

  /** The parser's answer for exactly this text: no shortcut, no shape, no cache. */
  classifyByParse(sql: string): Classification {
    if (!isParserLoaded()) throw parserNotLoaded();
    if (typeof sql !== 'string' || sql.includes('\0')) return UNPARSEABLE;
    return isBlank(sql) ? EMPTY : this.#classifyText(sql);
  }

  /** A shape too long to parse on the event loop goes to the primary when that is provably enough. */
  #classifyShape(shape: string): Classification {
    if (shape.length <= this.#maxParseLength) return this.#classifyText(shape);
    const statements = splitStatements(shape);
    if (statements.length <= 1)
      return hasNoSessionEffect(shape) ? TOO_LARGE : this.#classifyText(shape);
    // Several statements always go to the primary; only their effect on the connection needs
    // the parser, and only for the statements that could have one.
    const each: Classification[] = [];
    for (const statement of statements) {
      if (hasNoSessionEffect(statement)) continue;
      const one = this.#classifyText(statement);
      if (one.reason === 'unparseable') return UNPARSEABLE;
      each.push(one);
    }
    return combineStatements(each);
  }

  #classifyText(sql: string): Classification {
    let base: Classification;
    this.#parses++;
    try {
      const parsed: unknown = parseSync(sql);
      const stmts = isRecord(parsed) ? arrayField(parsed, 'stmts') : undefined;
      if (stmts === undefined) return UNPARSEABLE;
      base = this.#classifyStatements(stmts);
    } catch {
      return UNPARSEABLE;
    }
    if (base.kind !== 'read' || !mayContainHint(sql)) return base;
    // A hint can only move a read: a write, lock or multi-statement text never reaches here.
    const hint = findHint(sql);
    if (hint === 'primary') return result('write', 'hint-primary', NO_FUNCTIONS, base);
    if (hint === 'replica') return result('read', 'hint-replica', base.functions, base);
    return base;
  }

  #classifyStatements(stmts: readonly unknown[]): Classification {
    if (stmts.length === 0) return EMPTY;
    if (stmts.length === 1) {
      const node = statementNode(stmts[0]);
      return node === undefined ? UTILITY : this.#tree.classifyNode(node);
    }
    return this.#classifyMulti(stmts);
  }

  /**
   * A multi-statement string always goes to the primary, but its net effect on the
   * connection still matters: `BEGIN; ...` leaves a transaction open and `SET ...; ...`
   * changes the session, so the router must pin just as for the single statement.
   */
  #classifyMulti(stmts: readonly unknown[]): Classification {
    const each: Classification[] = [];
    for (const stmt of stmts) {
      const node = statementNode(stmt);
      if (node !== undefined) each.push(this.#tree.classifyNode(node));
    }
    return combineStatements(each);
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

/**
 * A classifier with its own cache size and volatile-function lists (the cluster builds one
 * from its `routing` options); `classifier.classify(sql)` answers read or write, and why.
 */
export function createClassifier(options: ClassifierOptions = {}): Classifier {
  return new SqlClassifier(options);
}

/**
 * The reference the fast paths are checked against: the full parse of the text exactly as
 * given (no shortcut for writes, no list collapsing, no size bound, no cache). Slow on big
 * statements by design; for tests and benchmarks.
 */
export function classifyByParse(sql: string, options: ClassifierOptions = {}): Classification {
  return new SqlClassifier({ ...options, cacheSize: 0 }).classifyByParse(sql);
}

let defaultClassifier: Classifier | undefined;

/** Classifies with a shared default classifier; throws if loadParser() has not resolved. */
export function classify(sql: string): Classification {
  if (!isParserLoaded()) throw parserNotLoaded();
  defaultClassifier ??= createClassifier();
  return defaultClassifier.classify(sql);
}
