import {
  SessionBehindPoolerError,
  SessionOnPoolError,
  TransactionOnPoolError,
} from '../errors/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Classification, SessionEffect, TransactionControl } from './classification.js';

/** Transaction statements that leave a transaction open, or only make sense inside one. */
const OPENS_OR_NEEDS_TRANSACTION: ReadonlySet<TransactionControl> = new Set([
  'begin',
  'begin-read-only',
  'savepoint',
  'release',
  'rollback-to',
]);

const TRANSACTION_WORDS: Readonly<Record<TransactionControl, string>> = {
  begin: 'BEGIN',
  'begin-read-only': 'BEGIN READ ONLY',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',
  savepoint: 'SAVEPOINT',
  release: 'RELEASE SAVEPOINT',
  'rollback-to': 'ROLLBACK TO SAVEPOINT',
  'prepare-transaction': 'PREPARE TRANSACTION',
};

/** Session effects a transaction-mode pooler cannot keep outside a transaction, as words. */
const POOLER_REFUSED: Partial<Record<SessionEffect, string>> = {
  set: 'A session setting (SET or set_config without LOCAL) was sent',
  listen: 'LISTEN was sent',
  'advisory-lock': 'A session advisory lock (pg_advisory_lock and the like) was sent',
  'temp-table': 'A temporary table was created',
  prepare: 'SQL PREPARE was sent',
  'cursor-with-hold': 'DECLARE ... WITH HOLD was sent',
};

/**
 * Throws when `pool.query()` cannot run the statement: it opens, continues or ends a
 * transaction, or changes a session setting (each pool statement may get another connection).
 * A text that is a whole transaction (`BEGIN; ...; COMMIT`), or a SET followed by what it is
 * for, runs as usual.
 */
export function refuseOnPool(cls: Classification, nodes: readonly ClusterNode[]): void {
  // A text that holds its own transaction (`BEGIN; SET ...; COMMIT`) runs as usual.
  if (cls.transaction === undefined) refuseSessionBehindPooler(cls, nodes);
  const control = cls.transaction;
  if (
    control !== undefined &&
    (OPENS_OR_NEEDS_TRANSACTION.has(control) || cls.reason === 'transaction-control')
  ) {
    throw new TransactionOnPoolError(`${TRANSACTION_WORDS[control]} was sent`);
  }
  // Several statements in one text run on one connection: a SET there is for the rest.
  if ((cls.session === 'set' || cls.session === 'reset') && cls.reason !== 'multi-statement') {
    throw new SessionOnPoolError(
      cls.session === 'set' ? 'A session setting (SET or set_config) was sent' : 'RESET was sent',
    );
  }
}

/**
 * Behind a transaction-mode pooler (any node with `pooler: 'transaction'`: after a failover
 * the primary may be any of them), a statement that leaves session state on its server
 * connection is refused; the caller checks that it runs outside a transaction.
 */
export function refuseSessionBehindPooler(
  cls: Classification,
  nodes: readonly ClusterNode[],
): void {
  const what = cls.session === undefined ? undefined : POOLER_REFUSED[cls.session];
  if (what === undefined) return;
  if (!nodes.some((node) => node.config.pooler === 'transaction')) return;
  throw new SessionBehindPoolerError(what);
}
