import net from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  NoHealthyReplicaError,
  PoolTimeoutError,
  PrimaryUnavailableError,
} from '../errors/index.js';
import { isAvailabilityError, isReadOnlyError } from './index.js';

/** Shaped as pg-protocol's parser builds it from an ErrorResponse message. */
function databaseError(code: string, message: string, severity = 'ERROR'): pg.DatabaseError {
  const err = new pg.DatabaseError(message, 100, 'error');
  err.severity = severity;
  err.code = code;
  err.file = 'postgres.c';
  err.line = '3000';
  err.routine = 'ProcessInterrupts';
  return err;
}

function errno(code: string, syscall = 'connect'): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${syscall} ${code} 10.0.0.1:5432`);
  err.code = code;
  err.errno = -1;
  err.syscall = syscall;
  return err;
}

describe('isAvailabilityError', () => {
  const availability: Array<[string, unknown]> = [
    ['ECONNREFUSED', errno('ECONNREFUSED')],
    ['ECONNRESET', errno('ECONNRESET', 'read')],
    ['ETIMEDOUT', errno('ETIMEDOUT')],
    ['EPIPE', errno('EPIPE', 'write')],
    ['EHOSTUNREACH', errno('EHOSTUNREACH')],
    ['ENETUNREACH', errno('ENETUNREACH')],
    ['ENOTFOUND (dns)', errno('ENOTFOUND', 'getaddrinfo')],
    ['EAI_AGAIN (dns)', errno('EAI_AGAIN', 'getaddrinfo')],
    ['ENOENT from connect() (missing unix socket)', errno('ENOENT', 'connect')],
    ['Connection terminated unexpectedly', new Error('Connection terminated unexpectedly')],
    ['Connection terminated', new Error('Connection terminated')],
    [
      'pg-pool connect timeout',
      new Error('Connection terminated due to connection timeout', {
        cause: new Error('Connection terminated unexpectedly'),
      }),
    ],
    ['pg client connect timeout', new Error('timeout expired')],
    [
      'client after a connection error',
      new Error('Client has encountered a connection error and is not queryable'),
    ],
    ['08006 connection_failure', databaseError('08006', 'connection failure')],
    ['08001 unable to connect', databaseError('08001', 'could not connect')],
    ['08P01 protocol_violation', databaseError('08P01', 'protocol violation')],
    [
      '57P01 admin_shutdown',
      databaseError('57P01', 'terminating connection due to administrator command', 'FATAL'),
    ],
    ['57P02 crash_shutdown', databaseError('57P02', 'terminating connection', 'FATAL')],
    [
      '57P03 cannot_connect_now',
      databaseError('57P03', 'the database system is starting up', 'FATAL'),
    ],
    [
      '53300 too_many_connections',
      databaseError('53300', 'sorry, too many clients already', 'FATAL'),
    ],
    [
      'AggregateError from happy eyeballs',
      new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')], 'connect failed'),
    ],
    ['wrapped in a cause', new Error('query failed', { cause: errno('ECONNRESET', 'read') })],
    [
      'PrimaryUnavailableError caused by a refused connection',
      new PrimaryUnavailableError('primary down', { cause: errno('ECONNREFUSED') }),
    ],
    ['plain object with a network code', { code: 'ECONNRESET', message: 'socket hang up' }],
  ];

  const notAvailability: Array<[string, unknown]> = [
    [
      '42P01 undefined_table (real pg DatabaseError)',
      databaseError('42P01', 'relation "nope" does not exist'),
    ],
    ['42601 syntax_error', databaseError('42601', 'syntax error at or near "SELEC"')],
    ['42501 insufficient_privilege', databaseError('42501', 'permission denied for table t')],
    [
      '23505 unique_violation',
      databaseError('23505', 'duplicate key value violates unique constraint'),
    ],
    [
      '23503 foreign_key_violation',
      databaseError('23503', 'insert or update violates foreign key'),
    ],
    ['22012 division_by_zero', databaseError('22012', 'division by zero')],
    [
      '22P02 invalid_text_representation',
      databaseError('22P02', 'invalid input syntax for type integer'),
    ],
    ['40001 serialization_failure', databaseError('40001', 'could not serialize access')],
    ['40P01 deadlock_detected', databaseError('40P01', 'deadlock detected')],
    [
      '57014 query_canceled (statement_timeout)',
      databaseError('57014', 'canceling statement due to statement timeout'),
    ],
    [
      '57P05 idle_session_timeout',
      databaseError('57P05', 'terminating connection due to idle-session timeout', 'FATAL'),
    ],
    [
      '25006 read_only_sql_transaction',
      databaseError('25006', 'cannot execute INSERT in a read-only transaction'),
    ],
    [
      '28P01 invalid_password',
      databaseError('28P01', 'password authentication failed for user "app"', 'FATAL'),
    ],
    [
      '3D000 invalid_catalog_name',
      databaseError('3D000', 'database "nope" does not exist', 'FATAL'),
    ],
    [
      'user RAISE whose text mimics a connection message',
      databaseError('P0001', 'Connection terminated unexpectedly'),
    ],
    ['P0001 raise_exception', databaseError('P0001', 'custom failure')],
    [
      'PoolTimeoutError (local exhaustion)',
      new PoolTimeoutError(
        { name: 'replica-1', role: 'replica', host: 'r1', port: 5432 },
        { total: 10, idle: 0, inUse: 10, waiting: 3, max: 10 },
        1000,
      ),
    ],
    [
      'pg-pool waiting for a free client (local exhaustion)',
      new Error('timeout exceeded when trying to connect'),
    ],
    ['NoHealthyReplicaError', new NoHealthyReplicaError({ 'replica-1': 'lagging' })],
    ['pg query read timeout', new Error('Query read timeout')],
    ['ENOENT from a file read', errno('ENOENT', 'open')],
    ['TypeError', new TypeError('Cannot read properties of undefined')],
    ['a message containing "timeout"', new Error('connection timeout while parsing your config')],
    ['undefined', undefined],
    ['null', null],
    ['a string', 'ECONNREFUSED'],
    ['a number', 8006],
  ];

  it.each(availability)('true for %s', (_label, err) => {
    expect(isAvailabilityError(err)).toBe(true);
  });

  it.each(notAvailability)('false for %s', (_label, err) => {
    expect(isAvailabilityError(err)).toBe(false);
  });

  it('terminates on a cause cycle', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isAvailabilityError(a)).toBe(false);
  });

  it('does not treat a SQLSTATE error as availability because of its cause', () => {
    const err = databaseError('42P01', 'relation does not exist') as Error & { cause?: unknown };
    err.cause = errno('ECONNRESET');
    expect(isAvailabilityError(err)).toBe(false);
  });
});

describe('isReadOnlyError', () => {
  it('is true for 25006 and nothing else', () => {
    expect(
      isReadOnlyError(databaseError('25006', 'cannot execute UPDATE in a read-only transaction')),
    ).toBe(true);
    expect(
      isReadOnlyError(new Error('wrapped', { cause: databaseError('25006', 'read-only') })),
    ).toBe(true);
    expect(isReadOnlyError(databaseError('42P01', 'nope'))).toBe(false);
    expect(isReadOnlyError(errno('ECONNREFUSED'))).toBe(false);
    expect(isReadOnlyError(undefined)).toBe(false);
  });
});

describe('errors raised by the real pg driver', () => {
  const servers: net.Server[] = [];
  const pools: pg.Pool[] = [];

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.end().catch(() => undefined)));
    await Promise.all(
      servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
  });

  async function listen(onConnection: (socket: net.Socket) => void): Promise<number> {
    const server = net.createServer(onConnection);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  async function closedPort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  async function connectError(config: pg.ClientConfig): Promise<unknown> {
    const client = new pg.Client(config);
    client.on('error', () => {}); // the server may end it first (sandbox stop, terminate)
    try {
      await client.connect();
    } catch (err) {
      return err;
    } finally {
      await client.end().catch(() => undefined);
    }
    throw new Error('expected the connection to fail');
  }

  it('connection refused', async () => {
    const port = await closedPort();
    const err = await connectError({ host: '127.0.0.1', port, user: 'u', password: 'p' });
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(isAvailabilityError(err)).toBe(true);
  });

  it('server closes the socket during start-up', async () => {
    const port = await listen((socket) => socket.destroy());
    const err = await connectError({ host: '127.0.0.1', port, user: 'u', password: 'p' });
    expect(isAvailabilityError(err)).toBe(true);
  });

  it('client connect timeout against a blackholed server', async () => {
    const sockets: net.Socket[] = [];
    const port = await listen((socket) => sockets.push(socket));
    const err = await connectError({
      host: '127.0.0.1',
      port,
      user: 'u',
      password: 'p',
      connectionTimeoutMillis: 100,
    });
    for (const socket of sockets) socket.destroy();
    expect(isAvailabilityError(err)).toBe(true);
  });

  it('pool: a connect timeout counts', async () => {
    const sockets: net.Socket[] = [];
    const port = await listen((socket) => sockets.push(socket));
    const pool = new pg.Pool({
      host: '127.0.0.1',
      port,
      user: 'u',
      password: 'p',
      max: 1,
      connectionTimeoutMillis: 150,
    });
    pools.push(pool);
    pool.on('error', () => undefined);
    const err = await pool.connect().then(
      () => undefined,
      (e: Error) => e,
    );
    for (const socket of sockets) socket.destroy();
    expect(err?.message).toBe('Connection terminated due to connection timeout');
    expect(isAvailabilityError(err)).toBe(true);
  });

  it("pool: waiting for a full pool does not count (pg-pool's own wait-timeout message)", () => {
    // Racing a second connect against a connect that times out made pg-pool hang now and then
    // (a pg-pool race, not ours), so the wait timeout is checked by its message, which is what
    // isAvailabilityError sees; pgpulse's own pools raise PoolTimeoutError instead.
    expect(isAvailabilityError(new Error('timeout exceeded when trying to connect'))).toBe(false);
  });
});
