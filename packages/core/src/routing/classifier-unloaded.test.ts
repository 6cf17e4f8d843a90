import { describe, expect, it } from 'vitest';
import { isParserLoaded, loadParser } from '../sql/index.js';
import { classify, createClassifier } from './classifier.js';

// A separate file gets a fresh module graph, so the parser really is not loaded yet.
describe('before loadParser()', () => {
  it('throws a clear error instead of misclassifying', async () => {
    expect(isParserLoaded()).toBe(false);
    expect(() => classify('SELECT 1')).toThrow(/loadParser\(\)/);
    const c = createClassifier();
    expect(() => c.classify('SELECT 1')).toThrow(/loadParser\(\)/);
    expect(c.cacheSize).toBe(0);
    await loadParser();
    expect(c.classify('SELECT 1').kind).toBe('read');
  });
});
