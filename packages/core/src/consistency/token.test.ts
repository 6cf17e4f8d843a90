import { describe, expect, it } from 'vitest';
import { BadTokenError } from '../errors/index.js';
import { decodeToken, encodeToken } from './token.js';

describe('consistency tokens', () => {
  it('round-trips written and seen positions, "*" and absent ones', () => {
    const cases = [
      { written: 0x16b3748n, seen: 0x16b3800n },
      { written: (0x1an << 32n) | 0xffn, seen: undefined },
      { written: undefined, seen: 0x10n },
      { written: 'primary' as const, seen: 0x10n },
      { written: 0xffffffffffffffffn, seen: 'primary' as const },
    ];
    for (const positions of cases) {
      const token = encodeToken(positions);
      expect(token).toMatch(/^pgpulse:2:[0-9A-F/*-]+:[0-9A-F/*-]+$/);
      expect(token.length).toBeLessThanOrEqual(46);
      expect(decodeToken(token)).toEqual(positions);
    }
    expect(encodeToken({ written: 0x16b3748n, seen: 0x16b3800n })).toBe(
      'pgpulse:2:0/16B3748:0/16B3800',
    );
  });

  it('"" is the empty token both ways; version 1 tokens are still read', () => {
    expect(encodeToken({ written: undefined, seen: undefined })).toBe('');
    expect(decodeToken('')).toEqual({ written: undefined, seen: undefined });
    expect(decodeToken('pgpulse-lsn:0/84C768')).toEqual({ written: 0x84c768n, seen: undefined });
  });

  it.each([
    'pgpulse-lsn:0/84C768x',
    'pgpulse-lsn:',
    'pgpulse-lsn:84C768',
    'pgpulse-lsn:123456789/0',
    'pgpulse:2:0/1',
    'pgpulse:2:0/1:0/2:0/3',
    'pgpulse:2:-:-',
    'pgpulse:2:0/1:zz',
    'pgpulse:3:0/1:0/2',
    'pgpulse:x:0/1:0/2',
    'not-a-token',
    `pgpulse:2:0/1:${'0'.repeat(100)}`,
  ])('%s is a BadTokenError (PGPULSE_BAD_TOKEN), not a raw SyntaxError', (token) => {
    let caught: unknown;
    try {
      decodeToken(token);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BadTokenError);
    expect((caught as BadTokenError).code).toBe('PGPULSE_BAD_TOKEN');
    expect((caught as BadTokenError).retriable).toBe(false);
  });

  it('a non-string is refused with the same error', () => {
    expect(() => decodeToken(42 as unknown as string)).toThrow(BadTokenError);
  });
});
