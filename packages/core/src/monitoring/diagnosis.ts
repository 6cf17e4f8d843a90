import { NodeConnectionError } from '../errors/index.js';

/** Why a node cannot be used, as far as a connection attempt tells. */
export type DownReason =
  | 'auth-failed'
  | 'refused'
  | 'timeout'
  | 'dns'
  | 'unknown-database'
  | 'too-many-connections'
  | 'starting-up'
  | 'tls'
  | 'other';

/** Why a node cannot be reached, in plain words, with what to check or change. */
export interface Diagnosis {
  readonly reason: DownReason;
  /** The server's or the system's own words (never a password: neither puts one there). */
  readonly detail: string;
  /** What to check or change. */
  readonly fix: string;
}

const FIX: Record<DownReason, string> = {
  'auth-failed':
    'check the user and password in the URL, and that pg_hba.conf allows this user from this host',
  refused: 'nothing listens there: check host and port, and that PostgreSQL is running',
  timeout:
    'no answer in time: check firewalls and security groups, or raise --timeout on a slow link',
  dns: 'the host name does not resolve: check its spelling and your DNS',
  'unknown-database': 'the database in the URL does not exist on that server: check its name',
  'too-many-connections':
    'the server is at max_connections: close idle sessions, lower pool sizes or raise the limit',
  'starting-up': 'the server is starting, shutting down or in recovery: retry in a moment',
  tls: 'the TLS handshake failed: check sslmode and the server certificate settings',
  other: 'see the detail',
};

/**
 * Names the reason behind a failed connection or probe: PostgreSQL's SQLSTATE first (28P01,
 * 28000, 3D000, 53300, 57P03), then the system's error code (ECONNREFUSED, ENOTFOUND, ...),
 * then the wording of pg's and pgpulse's own timeouts.
 */
export function diagnoseConnectionError(failure: unknown): Diagnosis {
  // A pool's connect failure is a NodeConnectionError around the driver's own error.
  const err = failure instanceof NodeConnectionError ? failure.cause : failure;
  const detail = err instanceof Error ? err.message : String(err);
  const code =
    typeof err === 'object' && err !== null && 'code' in err
      ? String((err as { code: unknown }).code)
      : '';
  const reason = reasonOf(code, detail);
  return { reason, detail, fix: FIX[reason] };
}

function reasonOf(code: string, message: string): DownReason {
  switch (code) {
    case '28P01':
    case '28000':
      return 'auth-failed';
    case '3D000':
      return 'unknown-database';
    case '53300':
      return 'too-many-connections';
    case '57P03':
      return 'starting-up';
    case 'ECONNREFUSED':
      return 'refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return 'dns';
    case 'ETIMEDOUT':
    case 'ECONNRESET':
      return 'timeout';
  }
  const m = message.toLowerCase();
  if (/password authentication failed|no pg_hba\.conf entry|sasl|scram/.test(m))
    return 'auth-failed';
  if (/database ".*" does not exist/.test(m)) return 'unknown-database';
  if (/econnrefused|connection refused/.test(m)) return 'refused';
  if (/enotfound|eai_again|getaddrinfo/.test(m)) return 'dns';
  if (/timeout|timed out|terminated unexpectedly/.test(m)) return 'timeout';
  if (/ssl|tls|certificate/.test(m)) return 'tls';
  if (/too many clients|remaining connection slots/.test(m)) return 'too-many-connections';
  if (/starting up|shutting down|recovery/.test(m)) return 'starting-up';
  return 'other';
}
