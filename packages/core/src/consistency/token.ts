import { BadTokenError } from '../errors/index.js';
import { formatLsn, type Lsn } from '../health/index.js';

/**
 * What a consistency token carries: the WAL position a replica must have replayed to show the
 * context its own writes (`written`) and to show it nothing older than it already read
 * (`seen`, monotonic reads). `'primary'` stands for "whatever the primary has when the token is
 * imported": the exporter knew a write or a read happened but not its position (e.g. the
 * primary was crashing), and the primary's position at import is an upper bound of both.
 */
export interface TokenPositions {
  readonly written: Lsn | 'primary' | undefined;
  readonly seen: Lsn | 'primary' | undefined;
}

/** Version 2: `pgpulse:2:<written>:<seen>`, each `X/Y`, `*` (the primary's at import) or `-`. */
const V2 = 'pgpulse:2:';
/** Version 1 (written position only), still accepted: `pgpulse-lsn:X/Y`. */
const V1 = 'pgpulse-lsn:';
/** Longer than any token pgpulse makes (2 × 17 + 12); refuses arbitrary payloads cheaply. */
const MAX_LENGTH = 64;
const LSN_TEXT = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

export function encodeToken(positions: TokenPositions): string {
  if (positions.written === undefined && positions.seen === undefined) return '';
  return `${V2}${field(positions.written)}:${field(positions.seen)}`;
}

/** The positions in a token; '' is a token with none. Throws BadTokenError otherwise. */
export function decodeToken(token: string): TokenPositions {
  if (typeof token !== 'string') throw new BadTokenError(`expected a string, got ${typeof token}`);
  if (token === '') return { written: undefined, seen: undefined };
  if (token.length > MAX_LENGTH) throw new BadTokenError(`${token.length} characters is too long`);
  if (token.startsWith(V1)) {
    return { written: lsnField(token.slice(V1.length), 'the position'), seen: undefined };
  }
  const version = /^pgpulse:(\d+):/.exec(token)?.[1];
  if (version === undefined) throw new BadTokenError('it does not start with "pgpulse:"');
  if (version !== '2') {
    throw new BadTokenError(`version ${version} is not one this pgpulse reads (it reads 1 and 2)`);
  }
  const parts = token.slice(V2.length).split(':');
  if (parts.length !== 2) throw new BadTokenError('expected "pgpulse:2:<written>:<seen>"');
  const written = optionalField(parts[0] ?? '', 'the written position');
  const seen = optionalField(parts[1] ?? '', 'the seen position');
  if (written === undefined && seen === undefined) {
    throw new BadTokenError('it holds no position (an empty token is "")');
  }
  return { written, seen };
}

function field(value: Lsn | 'primary' | undefined): string {
  if (value === undefined) return '-';
  return value === 'primary' ? '*' : formatLsn(value);
}

function optionalField(text: string, what: string): Lsn | 'primary' | undefined {
  if (text === '-') return undefined;
  if (text === '*') return 'primary';
  return lsnField(text, what);
}

function lsnField(text: string, what: string): Lsn {
  if (!LSN_TEXT.test(text)) throw new BadTokenError(`${what} is not a WAL position like 0/16B3748`);
  const slash = text.indexOf('/');
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) | BigInt(`0x${text.slice(slash + 1)}`);
}
