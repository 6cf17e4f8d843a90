import type {
  Classification,
  ClassificationReason,
  SessionEffect,
  StatementKind,
  TransactionControl,
} from './classification.js';
import { TRANSACTION_BOUNDARIES } from './statement-facts.js';

// Classification results, frozen, and shared when they carry no per-statement data.

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The empty function and relation list every result without one shares. */
export const NO_FUNCTIONS: readonly string[] = Object.freeze([]);
const sharedResults = new Map<string, Classification>();

/** What a result may carry beyond its kind, reason and functions. */
export interface Extras {
  readonly transaction?: TransactionControl | undefined;
  readonly session?: SessionEffect | undefined;
  readonly relations?: readonly string[] | undefined;
}

/** A frozen result; one shared object for every result without functions or relations. */
export function result(
  kind: StatementKind,
  reason: ClassificationReason,
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

/** A result that sends the statement to the primary. */
export const write = (reason: ClassificationReason, extras?: Extras): Classification =>
  result('write', reason, NO_FUNCTIONS, extras);

export const EMPTY = write('empty');
export const UNPARSEABLE = write('unparseable');
export const UTILITY = write('utility');
export const WRITE = write('write');
export const TOO_LARGE = write('too-large');

/**
 * The classification of several statements sent as one text: the primary, with the net
 * effect on the connection (the last transaction boundary, the first session change).
 */
export function combineStatements(each: readonly Classification[]): Classification {
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
