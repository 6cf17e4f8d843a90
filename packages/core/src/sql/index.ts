export {
  type AstNode,
  type AstRecord,
  arrayField,
  constantBoolean,
  constantString,
  isRecord,
  isTempRangeVar,
  isTempSchema,
  recordField,
  stringField,
  stringList,
  unwrapNode,
} from './ast.js';
export type { ConnectionLease, QueryClient } from './client.js';
export {
  advisoryLockKey,
  MAX_IDENTIFIER_BYTES,
  qualified,
  quoteIdent,
  quoteLiteral,
  truncateBytes,
} from './identifiers.js';
export {
  columnListSql,
  createIndexSql,
  dropIndexSql,
  type IndexShape,
  includeSql,
  indexLockKey,
  indexNames,
  type PartialPredicate,
  predicateSql,
  reindexSql,
  type SortDirection,
  shortHash,
} from './index-ddl.js';
export {
  firstWord,
  hasSeveralStatements,
  Lexer,
  splitStatements,
  Token,
  type TokenKind,
} from './lexer.js';
export { maskLiterals } from './mask.js';
export { isParserLoaded, loadParser, parserNotLoaded } from './parser.js';
export { type ShapeOptions, type SqlShape, shapeOf } from './shape.js';
export { errorCode, sqlStateOf } from './sql-state.js';
