export {
  advisoryLockKey,
  MAX_IDENTIFIER_BYTES,
  qualified,
  quoteIdent,
  quoteLiteral,
  truncateBytes,
} from './identifiers.js';
export {
  firstWord,
  hasSeveralStatements,
  Lexer,
  splitStatements,
  Token,
  type TokenKind,
} from './lexer.js';
export { maskLiterals } from './mask.js';
export { type ShapeOptions, type SqlShape, shapeOf } from './shape.js';
