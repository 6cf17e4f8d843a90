// Every export of every package entry point carries a doc comment (issue #10): read from the
// declarations by the TypeScript compiler, following re-exports to the symbol they name (so a
// type an adapter re-exports from @pgpulse/core is documented where core declares it).
import { readdirSync, readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;

/**
 * The entry points users import: each package.json `exports` subpath, by its source. `moreThan`
 * keeps a test from passing on an entry the compiler read as empty.
 */
const ENTRIES = [
  { name: '@pgpulse/core', source: 'packages/core/src/index.ts', moreThan: 100 },
  { name: '@pgpulse/drizzle', source: 'packages/drizzle/src/index.ts', moreThan: 0 },
  { name: '@pgpulse/prisma', source: 'packages/prisma/src/index.ts', moreThan: 0 },
  { name: '@pgpulse/typeorm', source: 'packages/typeorm/src/index.ts', moreThan: 0 },
  { name: '@pgpulse/sandbox', source: 'packages/sandbox/src/index.ts', moreThan: 0 },
  {
    name: '@pgpulse/sandbox/testing',
    source: 'packages/sandbox/src/testing/index.ts',
    moreThan: 0,
  },
  { name: '@pgpulse/web', source: 'packages/web/src/index.ts', moreThan: 0 },
  { name: '@pgpulse/web/express', source: 'packages/web/src/express.ts', moreThan: 0 },
  { name: '@pgpulse/web/fastify', source: 'packages/web/src/fastify.ts', moreThan: 0 },
  { name: '@pgpulse/web/hono', source: 'packages/web/src/hono.ts', moreThan: 0 },
  { name: '@pgpulse/web/nestjs', source: 'packages/web/src/nestjs.ts', moreThan: 0 },
];

/** The entry points the packages' package.json files declare, as `name: source`. */
function declaredEntries(): string[] {
  const entries: string[] = [];
  for (const dir of readdirSync(`${ROOT}packages`)) {
    const pkg = JSON.parse(readFileSync(`${ROOT}packages/${dir}/package.json`, 'utf8')) as {
      name: string;
      exports?: Record<string, { types: string }>;
    };
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      const name = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
      const source = target.types.replace(/^\.\/dist\//, 'src/').replace(/\.d\.ts$/, '.ts');
      entries.push(`${name}: packages/${dir}/${source}`);
    }
  }
  return entries.sort();
}

let program: ts.Program | undefined;

/** One program for every entry, with the workspace's options (`@pgpulse/*` resolve to sources). */
function compile(): ts.Program {
  if (program) return program;
  const config = ts.getParsedCommandLineOfConfigFile(
    `${ROOT}tsconfig.json`,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  );
  if (!config) throw new Error('cannot read tsconfig.json');
  program = ts.createProgram(
    ENTRIES.map((entry) => `${ROOT}${entry.source}`),
    config.options,
  );
  return program;
}

describe('the public API', () => {
  it('covers every entry point the packages export', () => {
    expect(ENTRIES.map((entry) => `${entry.name}: ${entry.source}`).sort()).toEqual(
      declaredEntries(),
    );
  });

  for (const { name, source, moreThan } of ENTRIES) {
    it(`of ${name} has a doc comment on every export`, { timeout: 120_000 }, () => {
      const checker = compile().getTypeChecker();
      const entry = compile().getSourceFile(`${ROOT}${source}`);
      const module = entry && checker.getSymbolAtLocation(entry);
      if (!module) throw new Error(`cannot read the exports of ${source}`);
      const exports = checker.getExportsOfModule(module);
      const undocumented = exports
        .filter((symbol) => {
          const target =
            symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
          return ts.displayPartsToString(target.getDocumentationComment(checker)).trim() === '';
        })
        .map((symbol) => symbol.name);
      expect(exports.length).toBeGreaterThan(moreThan);
      expect(undocumented).toEqual([]);
    });
  }
});
