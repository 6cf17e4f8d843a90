import {
  type AstNode,
  type AstRecord,
  arrayField,
  constantBoolean,
  isRecord,
  isTempRangeVar,
  stringField,
  stringList,
  unwrapNode,
} from '../sql/index.js';
import type { Classification } from './classification.js';
import { result, UTILITY, write } from './classification-results.js';
import {
  beginsReadOnly,
  createsTempObject,
  explainAnalyzes,
  isDdl,
  NESTED_WRITE_NODES,
  readReason,
  TRANSACTION_KINDS,
  type TreeFacts,
} from './statement-facts.js';
import {
  builtinName,
  type FunctionMatcher,
  SESSION_ADVISORY_LOCK_FUNCTIONS,
} from './volatile-functions.js';

/** DECLARE ... WITH HOLD sets CURSOR_OPT_HOLD (0x0020) in DeclareCursorStmt.options. */
const CURSOR_OPT_HOLD = 0x20;

/**
 * Classifies one parsed statement from its tree: which statements may read on a replica, and
 * what each leaves on the connection. The text side (cache, shapes, size limits, hints, several
 * statements in one text) is the classifier's.
 */
export class StatementTreeClassifier {
  readonly #functions: FunctionMatcher;

  constructor(functions: FunctionMatcher) {
    this.#functions = functions;
  }

  /** The classification of one parsed statement. */
  classifyNode(node: AstNode): Classification {
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
    const analyzed = this.classifyNode(inner);
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
