import { parseSync } from 'libpg-query';
import { ConfigError } from '../errors/index.js';
import {
  type AstNode,
  type AstRecord,
  arrayField,
  constantBoolean,
  isParserLoaded,
  isRecord,
  isTempRangeVar,
  parserNotLoaded,
  shapeOf,
  splitStatements,
  stringField,
  stringList,
  unwrapNode,
} from '../sql/index.js';
import type {
  Classification,
  Classifier,
  ClassifierOptions,
  RouteReason,
  SessionEffect,
  StatementKind,
  TransactionControl,
} from './classification.js';
import { findHint, mayContainHint } from './hints.js';
import { hasNoSessionEffect, isPlainWrite } from './shortcuts.js';
import {
  beginsReadOnly,
  createsTempObject,
  explainAnalyzes,
  isDdl,
  NESTED_WRITE_NODES,
  readReason,
  TRANSACTION_BOUNDARIES,
  TRANSACTION_KINDS,
  type TreeFacts,
} from './statement-facts.js';
import {
  BUILTIN_VOLATILE_FUNCTIONS,
  builtinName,
  collectNames,
  FunctionMatcher,
  SESSION_ADVISORY_LOCK_FUNCTIONS,
} from './volatile-functions.js';

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
/** DECLARE ... WITH HOLD sets CURSOR_OPT_HOLD (0x0020) in DeclareCursorStmt.options. */
const CURSOR_OPT_HOLD = 0x20;

// ---------------------------------------------------------------------------------------------
// Results

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const NO_FUNCTIONS: readonly string[] = Object.freeze([]);
const sharedResults = new Map<string, Classification>();

interface Extras {
  readonly transaction?: TransactionControl | undefined;
  readonly session?: SessionEffect | undefined;
  readonly relations?: readonly string[] | undefined;
}

function result(
  kind: StatementKind,
  reason: RouteReason,
  functions: readonly string[] = NO_FUNCTIONS,
  extras?: Extras,
): Classification {
  const transaction = extras?.transaction;
  const session = extras?.session;
  const relations = kind === 'read' ? (extras?.relations ?? NO_FUNCTIONS) : NO_FUNCTIONS;
  // Results without per-statement data are shared, so most cache entries cost one pointer.
  const shareable = functions.length === 0 && relations.length === 0;
  const key = shareable ? `${kind}|${reason}|${transaction ?? ''}|${session ?? ''}` : '';
  if (shareable) {
    const shared = sharedResults.get(key);
    if (shared !== undefined) return shared;
  }
  const built: Mutable<Classification> = {
    kind,
    reason,
    functions: functions.length === 0 ? NO_FUNCTIONS : Object.freeze([...functions]),
    relations: relations.length === 0 ? NO_FUNCTIONS : Object.freeze([...relations]),
  };
  if (transaction !== undefined) built.transaction = transaction;
  if (session !== undefined) built.session = session;
  const frozen = Object.freeze(built);
  if (shareable) sharedResults.set(key, frozen);
  return frozen;
}

const write = (reason: RouteReason, extras?: Extras): Classification =>
  result('write', reason, NO_FUNCTIONS, extras);

const EMPTY = write('empty');
const UNPARSEABLE = write('unparseable');
const UTILITY = write('utility');
const WRITE = write('write');
const TOO_LARGE = write('too-large');

/**
 * `sql.trim() === ''` without trim's copy: trimming a 1.3 MB INSERT costs 4 ms, this stops at
 * the first character that is not JavaScript whitespace (the same set trim() removes).
 */
function isBlank(sql: string): boolean {
  return !/\S/.test(sql);
}

// ---------------------------------------------------------------------------------------------
// The classifier

class SqlClassifier implements Classifier {
  readonly #cache = new Map<string, Classification>();
  readonly #maxEntries: number;
  readonly #maxParseLength: number;
  readonly #functions: FunctionMatcher;
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
    this.#functions = new FunctionMatcher(
      [
        ...BUILTIN_VOLATILE_FUNCTIONS,
        ...collectNames(options.volatileFunctions, 'volatileFunctions'),
      ],
      collectNames(options.allowFunctions, 'allowFunctions'),
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
      return node === undefined ? UTILITY : this.#classifyNode(node);
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
      if (node !== undefined) each.push(this.#classifyNode(node));
    }
    return combineStatements(each);
  }

  #classifyNode(node: AstNode): Classification {
    const body = node.body;
    switch (node.type) {
      case 'SelectStmt':
        return this.#classifySelect(body);
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return write('write', { session: this.#scan(body).session });
      case 'ExplainStmt':
        return this.#classifyExplain(body);
      case 'VariableShowStmt':
        return result('read', 'show');
      case 'VariableSetStmt':
        return classifySet(body);
      case 'TransactionStmt':
        return classifyTransaction(body);
      case 'ListenStmt':
        return write('session-state', { session: 'listen' });
      case 'UnlistenStmt':
        return write('session-state', { session: 'unlisten' });
      case 'DiscardStmt':
        return write('session-state', { session: 'discard' });
      case 'PrepareStmt':
        return write('session-state', { session: 'prepare' });
      case 'DeallocateStmt':
        return write('session-state', { session: 'deallocate' });
      case 'ConstraintsSetStmt':
        return write('session-state');
      case 'DeclareCursorStmt': {
        const options = body.options;
        const hold = typeof options === 'number' && (options & CURSOR_OPT_HOLD) !== 0;
        return hold ? write('session-state', { session: 'cursor-with-hold' }) : UTILITY;
      }
      case 'CopyStmt':
        return write(body.is_from === true ? 'write' : 'utility', {
          session: this.#scan(body.query).session,
        });
      case 'CallStmt':
        return write('call', { session: this.#scan(body).session });
      case 'CreateTableAsStmt':
        return write('ddl', {
          session: createsTempObject(node) ? 'temp-table' : this.#scan(body.query).session,
        });
      default:
        if (isDdl(node.type)) {
          return write('ddl', { session: createsTempObject(node) ? 'temp-table' : undefined });
        }
        return UTILITY;
    }
  }

  #classifySelect(select: AstRecord): Classification {
    const facts = this.#scan(select);
    const session = facts.session;
    if (facts.into) {
      return write('select-into', { session: facts.intoTemp ? 'temp-table' : session });
    }
    if (facts.nestedWrite) return write('writable-cte', { session });
    if (facts.locking) return write('locking-clause', { session });
    if (facts.volatile) return write('volatile-function', { session });
    return result('read', readReason(select), [...facts.functions], {
      session,
      relations: [...facts.relations],
    });
  }

  #classifyExplain(explain: AstRecord): Classification {
    const inner = unwrapNode(explain.query);
    if (inner === undefined) return UTILITY;
    if (!explainAnalyzes(arrayField(explain, 'options'))) {
      // Nothing runs, so even a plan of an UPDATE may come from a replica; but EXECUTE names
      // a prepared statement that exists only on the connection that prepared it.
      return inner.type === 'ExecuteStmt' ? UTILITY : result('read', 'explain');
    }
    const analyzed = this.#classifyNode(inner);
    if (analyzed.kind === 'read') {
      return result('read', 'explain', analyzed.functions, {
        session: analyzed.session,
        relations: analyzed.relations,
      });
    }
    return write('explain-analyze', { session: analyzed.session });
  }

  #scan(root: unknown): TreeFacts {
    const facts: TreeFacts = {
      locking: false,
      into: false,
      intoTemp: false,
      nestedWrite: false,
      volatile: false,
      functions: new Set(),
      relations: new Set(),
      session: undefined,
    };
    this.#walk(root, facts);
    return facts;
  }

  /**
   * Visits every node rather than following known fields, so a FuncCall, locking clause or
   * data-modifying CTE is found wherever the grammar allows it (sublinks, lateral joins,
   * nested CTEs, set-operation arms, VALUES lists, window and filter clauses).
   */
  #walk(value: unknown, facts: TreeFacts): void {
    if (Array.isArray(value)) {
      for (const item of value) {
        if (typeof item === 'object' && item !== null) this.#walk(item, facts);
      }
      return;
    }
    if (!isRecord(value)) return;
    for (const key of Object.keys(value)) {
      const child = value[key];
      if (typeof child !== 'object' || child === null) continue;
      if (key === 'FuncCall') this.#noteCall(child, facts);
      else if (key === 'RangeVar') noteRelation(child, facts);
      else if (key === 'lockingClause') facts.locking ||= Array.isArray(child) && child.length > 0;
      else if (key === 'intoClause') {
        facts.into = true;
        facts.intoTemp ||= isRecord(child) && isTempRangeVar(child.rel);
      } else if (NESTED_WRITE_NODES.has(key)) facts.nestedWrite = true;
      this.#walk(child, facts);
    }
  }

  #noteCall(call: unknown, facts: TreeFacts): void {
    const parts = isRecord(call) ? stringList(call.funcname) : undefined;
    if (parts === undefined) {
      // A call whose name cannot be read cannot be proven safe.
      facts.volatile = true;
      return;
    }
    const full = parts.join('.');
    facts.functions.add(full);
    if (this.#functions.isVolatile(parts, full)) facts.volatile = true;
    const builtin = builtinName(parts);
    if (builtin === undefined || facts.session !== undefined || !isRecord(call)) return;
    if (SESSION_ADVISORY_LOCK_FUNCTIONS.has(builtin)) facts.session = 'advisory-lock';
    else if (builtin === 'set_config' && !setsLocally(call)) facts.session = 'set';
    else if (builtin === 'nextval' || builtin === 'setval') facts.session = 'sequence';
  }
}

/**
 * The classification of several statements sent as one text: the primary, with the net
 * effect on the connection (the last transaction boundary, the first session change).
 */
function combineStatements(each: readonly Classification[]): Classification {
  let transaction: TransactionControl | undefined;
  let session: SessionEffect | undefined;
  for (const one of each) {
    session ??= one.session;
    const control = one.transaction;
    if (control === undefined) continue;
    if (TRANSACTION_BOUNDARIES.has(control) || transaction === undefined) transaction = control;
  }
  // It ran on the primary, so a read-only BEGIN in it must not invite a replica.
  if (transaction === 'begin-read-only') transaction = 'begin';
  return write('multi-statement', { transaction, session });
}

/** A RangeVar's name, schema-qualified when it was written so. */
function noteRelation(rangeVar: unknown, facts: TreeFacts): void {
  if (!isRecord(rangeVar)) return;
  const name = stringField(rangeVar, 'relname');
  if (name === undefined) return;
  const schema = stringField(rangeVar, 'schemaname');
  facts.relations.add(schema === undefined ? name : `${schema}.${name}`);
}

/** set_config(name, value, is_local): only a literal `true` keeps the change transaction-local. */
function setsLocally(call: AstRecord): boolean {
  const args = arrayField(call, 'args');
  return args !== undefined && args.length === 3 && constantBoolean(args[2]) === true;
}

function statementNode(raw: unknown): AstNode | undefined {
  return isRecord(raw) ? unwrapNode(raw.stmt) : undefined;
}

function classifySet(set: AstRecord): Classification {
  const kind = stringField(set, 'kind');
  if (set.name === 'TRANSACTION') return write('transaction-control');
  if (kind === 'VAR_RESET' || kind === 'VAR_RESET_ALL') {
    return write('session-state', { session: 'reset' });
  }
  // SET LOCAL ends with the transaction, which already pins the connection.
  if (set.is_local === true) return write('session-state');
  return write('session-state', { session: 'set' });
}

function classifyTransaction(statement: AstRecord): Classification {
  const kind = stringField(statement, 'kind');
  switch (kind) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START':
      return write('transaction-control', {
        transaction: beginsReadOnly(arrayField(statement, 'options')) ? 'begin-read-only' : 'begin',
      });
    case 'TRANS_STMT_COMMIT_PREPARED':
    case 'TRANS_STMT_ROLLBACK_PREPARED':
      // Acts on a transaction already detached by PREPARE TRANSACTION, not this session's.
      return UTILITY;
    default: {
      const transaction = kind === undefined ? undefined : TRANSACTION_KINDS[kind];
      // AND CHAIN starts a new transaction at once; reporting an end would unpin too early.
      const chained = statement.chain === true;
      return write('transaction-control', { transaction: chained ? undefined : transaction });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

/**
 * A classifier with its own cache size and volatile-function list; `classify` uses a shared default
 * one.
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
