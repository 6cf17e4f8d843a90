import { firstWord, hasSeveralStatements } from '../sql/index.js';

/**
 * Lexical decisions that spare the parser: routing to the primary is always safe, so a
 * statement that cannot be a read needs no parse as long as nothing about the connection
 * (a transaction opened, session state changed) could hide in it.
 */

/** First words of statements that are writes whatever follows them. */
const WRITE_WORDS: ReadonlySet<string> = new Set(['insert', 'update', 'delete', 'merge']);

/**
 * What could give a DML statement a session effect: a session advisory lock, a non-local
 * set_config() call or nextval/setval (the classifier pins the connection for each). `U&` because a Unicode-
 * escaped identifier (`U&"pg\0061dvisory_lock"`) spells a name no text search would see.
 * Matching more than needed only costs a parse.
 */
const DML_SESSION_TEXT = /advisory_lock|set_config|nextval|setval|u&/i;

/**
 * What could give any statement a session effect besides its first word: the above, and a
 * temporary object (SELECT INTO TEMP, EXPLAIN ANALYZE CREATE TEMP TABLE ..., pg_temp).
 */
const SESSION_TEXT = /advisory_lock|set_config|nextval|setval|u&|\btemp|pg_temp/i;

/** First words of statements that can open or close a transaction or change the session. */
const SESSION_WORDS: ReadonlySet<string> = new Set([
  'begin',
  'start',
  'commit',
  'end',
  'rollback',
  'abort',
  'savepoint',
  'release',
  'prepare',
  'set',
  'reset',
  'listen',
  'unlisten',
  'discard',
  'declare',
  'create',
]);

/**
 * True when `sql` is a single INSERT/UPDATE/DELETE/MERGE with no possible session effect:
 * a write to the primary, decided without parsing (a 1 MB bulk INSERT costs a text search).
 * Text that would not parse is then a write rather than 'unparseable': it goes to the primary
 * either way, where the server rejects it.
 */
export function isPlainWrite(sql: string): boolean {
  const word = firstWord(sql);
  if (word === undefined || !WRITE_WORDS.has(word)) return false;
  if (DML_SESSION_TEXT.test(sql)) return false;
  return !hasSeveralStatements(sql);
}

/**
 * True when a statement (or one statement of several) goes to the primary with no transaction
 * or session effect whatever it says, judged from its first word and a text search; false when
 * only the parser can tell.
 */
export function hasNoSessionEffect(sql: string): boolean {
  const word = firstWord(sql);
  if (word !== undefined && SESSION_WORDS.has(word)) return false;
  return !SESSION_TEXT.test(sql);
}
