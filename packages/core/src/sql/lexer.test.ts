import fc from 'fast-check';
import { loadModule, scanSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { firstWord, hasSeveralStatements, Lexer, splitStatements, Token } from './lexer.js';
import { maskLiterals } from './mask.js';

beforeAll(async () => {
  await loadModule();
});

/** Per character: is it inside a literal, quoted identifier or comment (by our lexer)? */
function opaqueByLexer(sql: string): boolean[] | undefined {
  const inside = new Array<boolean>(sql.length).fill(false);
  const lexer = new Lexer(sql);
  for (;;) {
    const kind = lexer.next();
    if (kind === Token.End) return inside;
    if (kind === Token.Unterminated) return undefined;
    if (kind === Token.String || kind === Token.QuotedIdent || kind === Token.Comment) {
      for (let i = lexer.start; i < lexer.end; i++) inside[i] = true;
    }
  }
}

const OPAQUE_TEXT = /^(?:'|"|\/\*|--|\$[^0-9]|[eEbBxX]'|[uU]&['"])/;

/** The same, by PostgreSQL's own scanner (ASCII text, so byte offsets are indexes). */
function opaqueByPostgres(sql: string): boolean[] | undefined {
  let tokens: readonly { start: number; end: number; text: string }[];
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return undefined;
  }
  const last = tokens[tokens.length - 1];
  if (sql.trim() !== '' && (last === undefined || sql.slice(last.end).trim() !== '')) {
    return undefined; // the scanner stopped early: an error we do not compare
  }
  const inside = new Array<boolean>(sql.length).fill(false);
  for (const token of tokens) {
    if (!OPAQUE_TEXT.test(token.text)) continue;
    for (let i = token.start; i < token.end; i++) inside[i] = true;
  }
  return inside;
}

const fragment = fc.constantFrom(
  "'",
  "''",
  '"',
  '""',
  "E'",
  "e'",
  "B'",
  "X'",
  "N'",
  "U&'",
  'U&"',
  '\\',
  "\\'",
  '$$',
  '$a$',
  '$b$',
  '$1',
  '$',
  '/*',
  '*/',
  '--',
  '-',
  '/',
  '*',
  '\n',
  '\r',
  ' ',
  ';',
  ',',
  '(',
  ')',
  '1',
  '1e',
  '.5',
  'x',
  'in',
  'SELECT',
  'a$b',
  'tag',
);

describe('Lexer', () => {
  it('agrees with PostgreSQL on where every literal, quoted name and comment is (property)', () => {
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 30 }), (parts) => {
        const sql = parts.join('');
        const theirs = opaqueByPostgres(sql);
        if (theirs === undefined) return true;
        const ours = opaqueByLexer(sql);
        if (ours === undefined) return false;
        // Whitespace between two halves of a continued string ('a'\n'b') is theirs alone.
        for (let i = 0; i < sql.length; i++) {
          if (/\s/.test(sql[i]!)) continue;
          if (ours[i] !== theirs[i]) return false;
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });

  it('reads nested comments, escaped strings and dollar quotes whole', () => {
    const sql = "/* a /* b */ ; */ SELECT E'\\';', $t$ ; $x$ $t$, 'it''s;' -- ;\n";
    expect(hasSeveralStatements(sql)).toBe(false);
    expect(firstWord(sql)).toBe('select');
    expect(hasSeveralStatements(`${sql}; SELECT 2`)).toBe(true);
  });

  it('splits at top-level semicolons only', () => {
    expect(splitStatements("BEGIN; INSERT INTO t VALUES (';'); ; COMMIT;")).toEqual([
      'BEGIN',
      " INSERT INTO t VALUES (';')",
      ' COMMIT',
    ]);
    expect(hasSeveralStatements('SELECT 1; -- done')).toBe(false);
  });

  it('names no first word for text that starts with something else', () => {
    expect(firstWord('(SELECT 1)')).toBeUndefined();
    expect(firstWord(';SELECT 1')).toBeUndefined();
    expect(firstWord('  -- c\n /* d */ Insert INTO t')).toBe('insert');
  });
});

describe('maskLiterals', () => {
  it('replaces every literal and drops comments', () => {
    expect(
      maskLiterals("SELECT B'101', X'ff', E'a\\'b', 1e5, U&'x', $$d$$, $t$q$t$, $1 /* pw */ -- x"),
    ).toBe('SELECT ?, ?, ?, ?, ?, ?, ?, $1');
    expect(maskLiterals("SELECT 'a', 2", { numbered: true })).toBe('SELECT $1, $2');
  });

  it('cuts an unterminated literal instead of returning it', () => {
    expect(maskLiterals("SELECT * FROM t WHERE pw = 'hunter2")).toBe(
      'SELECT * FROM t WHERE pw = …',
    );
  });

  it('is bounded', () => {
    const long = `SELECT ${Array.from({ length: 10_000 }, (_, i) => `c${i}`).join(', ')}`;
    expect(maskLiterals(long, { maxLength: 100 }).length).toBeLessThanOrEqual(101);
  });
});
