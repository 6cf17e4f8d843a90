export {
  advisoryLockKey,
  MAX_IDENTIFIER_BYTES,
  qualified,
  quoteIdent,
  quoteLiteral,
  truncateBytes,
} from './identifiers.js';
