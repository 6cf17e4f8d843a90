import type pg from 'pg';

/** A physical connection's last reported transaction status ('I' idle, 'T' in a block, 'E' failed block). */
export type TransactionStatus = 'I' | 'T' | 'E';

const txStatus = new WeakMap<pg.Client, TransactionStatus>();

/**
 * Whether `client` carries pg's protocol stream (pg.Client's `connection`, an emitter of the
 * parsed server messages). A look-alike pool.Client may not: pgpulse then cannot follow its
 * transaction status or reported settings, and refuses it once it has connected.
 */
export function hasProtocolStream(client: pg.Client): boolean {
  const connection = (client as { connection?: { on?: unknown } }).connection;
  return typeof connection?.on === 'function';
}

/**
 * Follows the transaction status byte of every ReadyForQuery the server sends on `client`.
 * The server is the one authority on whether a connection is inside a transaction, whatever
 * SQL (multi-statement strings, COMMIT AND CHAIN, a failed COMMIT) got it there. This is the
 * only record of it in pgpulse: pg's own getTransactionStatus() exists only from pg 8.21, and
 * this works with every pg 8. Every pooled connection is tracked from its creation.
 */
export function trackTransactionStatus(client: pg.Client): void {
  txStatus.set(client, 'I');
  if (!hasProtocolStream(client)) return;
  client.connection.on('readyForQuery', (message: { status?: string }) => {
    const status = message.status;
    if (status === 'I' || status === 'T' || status === 'E') txStatus.set(client, status);
  });
}

/** The status the server last reported on `client` ('I' for a connection never tracked). */
export function transactionStatus(client: pg.Client): TransactionStatus {
  return txStatus.get(client) ?? 'I';
}
