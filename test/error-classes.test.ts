// Every error class has one home and one base (issue #10): core's errors live in
// packages/core/src/errors/ and are exported from core's index.ts; every package's errors extend
// PgPulseError (a stable `code`, `retriable`), the one class that extends Error itself. Read from
// the sources with the TypeScript parser, so a new `class X extends Error` anywhere fails here.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const PACKAGES = join(ROOT, 'packages');
const CORE_ERRORS = 'packages/core/src/errors/';
const BUILTIN_ERRORS = new Set([
  'Error',
  'TypeError',
  'RangeError',
  'SyntaxError',
  'ReferenceError',
  'EvalError',
  'URIError',
  'AggregateError',
]);

interface ClassFound {
  readonly name: string;
  readonly base: string | undefined;
  readonly file: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'generated' || entry.name === 'dist') {
      continue;
    }
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(entry.name) && !/\.(test|test-d)\.tsx?$/.test(entry.name)) {
      out.push(path);
    }
  }
  return out;
}

function classesOf(path: string): ClassFound[] {
  const file = relative(ROOT, path);
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.ES2022);
  const found: ClassFound[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isClassDeclaration(node) || ts.isClassExpression(node)) && node.name !== undefined) {
      const heritage = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword);
      const base = heritage?.types[0]?.expression.getText(source);
      found.push({ name: node.name.text, base, file });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const classes = readdirSync(PACKAGES)
  .flatMap((name) => {
    try {
      return sourceFiles(join(PACKAGES, name, 'src'));
    } catch {
      return [];
    }
  })
  .flatMap(classesOf);
const byName = new Map(classes.map((found) => [found.name, found]));

/** The class's chain of bases by name, ending at the first one not declared in the sources. */
function chain(found: ClassFound): string[] {
  const names: string[] = [];
  let base = found.base;
  while (base !== undefined && !names.includes(base)) {
    names.push(base);
    base = byName.get(base)?.base;
  }
  return names;
}

const errorClasses = classes.filter((found) => {
  const bases = chain(found);
  return /Error$/.test(found.name) || bases.some((base) => BUILTIN_ERRORS.has(base));
});

describe('error classes', () => {
  it('finds the error classes it checks', () => {
    expect(errorClasses.map((found) => found.name)).toEqual(
      expect.arrayContaining(['PgPulseError', 'ConfigError', 'PartitioningError']),
    );
    expect(errorClasses.length).toBeGreaterThan(20);
  });

  it('extend Error only through PgPulseError', () => {
    const direct = errorClasses
      .filter((found) => found.base !== undefined && BUILTIN_ERRORS.has(found.base))
      .map((found) => `${found.file}: ${found.name} extends ${found.base}`);
    expect(direct).toEqual([`${CORE_ERRORS}pgpulse-error.ts: PgPulseError extends Error`]);
    const outside = errorClasses
      .filter((found) => found.name !== 'PgPulseError' && !chain(found).includes('PgPulseError'))
      .map((found) => `${found.file}: ${found.name} extends ${found.base ?? 'nothing'}`);
    expect(outside).toEqual([]);
  });

  it("of core live in errors/ and are exported from core's index.ts", () => {
    const misplaced = errorClasses
      .filter(
        (found) => found.file.startsWith('packages/core/') && !found.file.startsWith(CORE_ERRORS),
      )
      .map((found) => `${found.file}: ${found.name}`);
    expect(misplaced).toEqual([]);
    const index = readFileSync(join(ROOT, 'packages/core/src/index.ts'), 'utf8');
    const unexported = errorClasses
      .filter((found) => found.file.startsWith(CORE_ERRORS))
      .filter((found) => !new RegExp(`\\b${found.name}\\b`).test(index))
      .map((found) => found.name);
    expect(unexported).toEqual([]);
  });
});
