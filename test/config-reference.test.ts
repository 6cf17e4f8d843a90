import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { acceptedOptionKeys } from '../packages/core/src/config/schema.js';
import { collectOptions, README, renderReference } from '../scripts/config-reference.js';

// The configuration reference in @pgpulse/core's README is generated from config/types.ts;
// these checks keep the types, the schema and the published text in step.
describe('the configuration reference', () => {
  const options = collectOptions();
  const documented = new Set(options.map((o) => o.path));

  it('documents every option the schema accepts, at the same path', () => {
    const missing: string[] = [];
    for (const [pattern, keys] of acceptedOptionKeys()) {
      // The primary's object form is the replica's without `weight`: one table for both.
      const prefix =
        pattern === ''
          ? ''
          : pattern === 'primary' || pattern === 'replicas.*'
            ? 'replicas[].'
            : `${pattern}.`;
      for (const key of keys)
        if (!documented.has(`${prefix}${key}`)) missing.push(`${prefix}${key}`);
    }
    expect(missing).toEqual([]);
  });

  it('documents nothing the schema refuses', () => {
    const accepted = new Set<string>();
    for (const [pattern, keys] of acceptedOptionKeys()) {
      const prefix =
        pattern === ''
          ? ''
          : pattern === 'primary' || pattern === 'replicas.*'
            ? 'replicas[].'
            : `${pattern}.`;
      for (const key of keys) accepted.add(`${prefix}${key}`);
      if (pattern !== '')
        accepted.add(
          pattern === 'replicas.*' || pattern === 'primary' ? pattern.replace('.*', '') : pattern,
        );
    }
    expect([...documented].filter((path) => !accepted.has(path) && path !== 'replicas[]')).toEqual(
      [],
    );
  });

  it('says what every option does', () => {
    expect(options.filter((o) => o.doc === '').map((o) => o.path)).toEqual([]);
  });

  it('is the text in the README (pnpm generate writes it)', () => {
    expect(readFileSync(README, 'utf8')).toContain(renderReference(options));
  });
});
