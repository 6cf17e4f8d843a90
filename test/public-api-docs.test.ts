// Every export of @pgpulse/core carries a doc comment (issue #10): read from the declarations
// by the TypeScript compiler, following re-exports to the symbol they name.
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ENTRY = new URL('../packages/core/src/index.ts', import.meta.url).pathname;

describe('the public API of @pgpulse/core', () => {
  it('has a doc comment on every export', { timeout: 60_000 }, () => {
    const program = ts.createProgram([ENTRY], {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      noEmit: true,
    });
    const checker = program.getTypeChecker();
    const entry = program.getSourceFile(ENTRY);
    const module = entry && checker.getSymbolAtLocation(entry);
    if (!module) throw new Error(`cannot read the exports of ${ENTRY}`);
    const exports = checker.getExportsOfModule(module);
    const undocumented = exports
      .filter((symbol) => {
        const target =
          symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
        return ts.displayPartsToString(target.getDocumentationComment(checker)).trim() === '';
      })
      .map((symbol) => symbol.name);
    expect(exports.length).toBeGreaterThan(100);
    expect(undocumented).toEqual([]);
  });
});
