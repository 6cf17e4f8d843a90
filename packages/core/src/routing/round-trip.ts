import type pg from 'pg';
import { StatementTimeoutError } from '../errors/index.js';
import type { PooledConnection } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Classification } from './classification.js';
import type { PreparedStatementHook, PreparedUse } from './executor-hooks.js';
import type { QueryRequest } from './query-args.js';

/**
 * Sends one statement on its connection: by an automatic prepared name when the hook takes it,
 * else as the application gave it. A transaction-mode pooler may run each statement on another
 * server connection, where a prepared name does not exist (PgBouncer < 1.21: 42P05 / 26000):
 * there no automatic names, and the application's own are sent unnamed. A pipelined
 * connection gets no automatic names either: statements in flight together would race to
 * prepare and deallocate on it.
 */
export function send(
  client: pg.Client,
  request: QueryRequest,
  cls: Classification,
  node: ClusterNode,
  event: { prepared?: PreparedUse },
  prepared: PreparedStatementHook | undefined,
): Promise<pg.QueryResult> {
  return (
    (node.config.pooler === 'transaction'
      ? request.config.name === undefined
        ? undefined
        : client.query(unnamed(request.config))
      : client.pipeline
        ? undefined
        : prepared?.run(client, request, cls, node, event)) ??
    (request.plain
      ? client.query(request.text, request.config.values)
      : client.query(request.config))
  );
}

/**
 * pg's query_timeout, enforced here: past the deadline the socket is cut (a node that went
 * silent never answers a cancel), the statement fails with StatementTimeoutError whose cause
 * is the connection failure, so a read counts as an availability error and is retried once
 * elsewhere, and the connection is discarded on release. `timeoutMs` 0: no deadline.
 */
export function withStatementDeadline<T>(
  node: ClusterNode,
  connection: PooledConnection,
  timeoutMs: number,
  run: () => Promise<T>,
): Promise<T> {
  return timeoutMs > 0 ? withTimer(node, connection, run, timeoutMs) : run();
}

async function withTimer<T>(
  node: ClusterNode,
  connection: PooledConnection,
  run: () => Promise<T>,
  timeoutMs: number,
): Promise<T> {
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    connection.client.connection.stream.destroy();
  }, timeoutMs);
  try {
    return await run();
  } catch (err) {
    if (expired) throw new StatementTimeoutError(node, timeoutMs, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The statement without pg's `name`: the same text, values and options sent with the unnamed
 * statement, which the server parses each time (behind a transaction-mode pooler that does not
 * follow prepared statements).
 */
function unnamed(config: QueryRequest['config']): QueryRequest['config'] {
  const { name: _name, ...rest } = config;
  return rest;
}
