import {
  type AstNode,
  type AstRecord,
  arrayField,
  constantBoolean,
  constantString,
  isTempRangeVar,
  isTempSchema,
  recordField,
  stringField,
  stringList,
  unwrapNode,
} from '../sql/index.js';
import type { ClassificationReason, SessionEffect, TransactionControl } from './classification.js';

/**
 * Facts of a parsed statement that the classifier reads: DDL, temporary objects, EXPLAIN
 * ANALYZE, READ ONLY, the TABLE command, transaction statement kinds.
 */

/** What a generic walk over a statement's tree found. */
export interface TreeFacts {
  locking: boolean;
  into: boolean;
  intoTemp: boolean;
  nestedWrite: boolean;
  volatile: boolean;
  readonly functions: Set<string>;
  readonly relations: Set<string>;
  session: SessionEffect | undefined;
}

export const NESTED_WRITE_NODES: ReadonlySet<string> = new Set([
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
]);

const DDL_NODES: ReadonlySet<string> = new Set([
  'GrantStmt',
  'GrantRoleStmt',
  'CommentStmt',
  'SecLabelStmt',
  'TruncateStmt',
  'VacuumStmt',
  'ReindexStmt',
  'ClusterStmt',
  'RefreshMatViewStmt',
  'IndexStmt',
  'ViewStmt',
  'RuleStmt',
  'DefineStmt',
  'CompositeTypeStmt',
  'RenameStmt',
  'ReassignOwnedStmt',
  'ImportForeignSchemaStmt',
]);

export function isDdl(type: string): boolean {
  return (
    type.startsWith('Create') ||
    type.startsWith('Alter') ||
    type.startsWith('Drop') ||
    DDL_NODES.has(type)
  );
}

/** Object-creating DDL whose target lives only in this session (TEMP, or pg_temp schema). */
export function createsTempObject(node: AstNode): boolean {
  const body = node.body;
  switch (node.type) {
    case 'CreateStmt':
      return isTempRangeVar(body.relation);
    case 'CreateTableAsStmt':
      return isTempRangeVar(recordField(body, 'into')?.rel);
    case 'ViewStmt':
      return isTempRangeVar(body.view);
    case 'CreateSeqStmt':
      return isTempRangeVar(body.sequence);
    case 'CompositeTypeStmt':
      return isTempRangeVar(body.typevar);
    case 'CreateFunctionStmt':
      return isTempSchema(stringList(body.funcname)?.[0]);
    default:
      return false;
  }
}

/** True unless every ANALYZE option is clearly false; an odd spelling counts as ANALYZE. */
export function explainAnalyzes(options: readonly unknown[] | undefined): boolean {
  if (options === undefined) return false;
  for (const option of options) {
    const node = unwrapNode(option);
    if (node === undefined || node.type !== 'DefElem') continue;
    const name = stringField(node.body, 'defname');
    if (name !== 'analyze' && name !== 'analyse') continue;
    if (node.body.arg === undefined || constantBoolean(node.body.arg) !== false) return true;
  }
  return false;
}

/**
 * READ ONLY and not SERIALIZABLE: a hot standby refuses serializable transactions ("cannot use
 * serializable mode in a hot standby"), so only the primary can run `SERIALIZABLE READ ONLY`.
 */
export function beginsReadOnly(options: readonly unknown[] | undefined): boolean {
  let readOnly = false;
  let serializable = false;
  for (const option of options ?? []) {
    const node = unwrapNode(option);
    if (node?.type !== 'DefElem') continue;
    if (node.body.defname === 'transaction_read_only') {
      readOnly = constantBoolean(node.body.arg) === true;
    } else if (node.body.defname === 'transaction_isolation') {
      serializable = constantString(node.body.arg)?.toLowerCase() === 'serializable';
    }
  }
  return readOnly && !serializable;
}

/** `TABLE t` parses as `SELECT * FROM t` whose star has no source location. */
function isTableCommand(select: AstRecord): boolean {
  const targets = arrayField(select, 'targetList');
  if (targets?.length !== 1) return false;
  const target = unwrapNode(targets[0]);
  if (target?.type !== 'ResTarget' || target.body.location !== -1) return false;
  const column = unwrapNode(target.body.val);
  if (column?.type !== 'ColumnRef' || column.body.location !== -1) return false;
  const fields = arrayField(column.body, 'fields');
  return fields?.length === 1 && unwrapNode(fields[0])?.type === 'A_Star';
}

export function readReason(select: AstRecord): ClassificationReason {
  const op = select.op;
  if (op !== undefined && op !== 'SETOP_NONE') return 'select';
  if (arrayField(select, 'valuesLists') !== undefined) return 'values';
  return isTableCommand(select) ? 'table' : 'select';
}

export const TRANSACTION_KINDS: Readonly<Record<string, TransactionControl>> = {
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'release',
  TRANS_STMT_ROLLBACK_TO: 'rollback-to',
  TRANS_STMT_PREPARE: 'prepare-transaction',
};

/** Statements that open or close the transaction, as opposed to savepoints inside it. */
export const TRANSACTION_BOUNDARIES: ReadonlySet<TransactionControl> = new Set([
  'begin',
  'begin-read-only',
  'commit',
  'rollback',
  'prepare-transaction',
]);
