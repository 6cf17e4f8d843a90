import { normalizeSync } from 'libpg-query';
import { firstWord, maskLiterals, shapeOf } from '../sql/index.js';

/** Where elements of a long constant list were cut, as pg_stat_statements (18) shows it. */
export const LIST_MARKER = ' /*, ... */';
/** Shapes longer than this are masked by the lexer instead of normalized by the parser. */
const MAX_NORMALIZED_LENGTH = 16_384;
/** A masked (unparsed) text is cut here: a span attribute need not hold a 1 MB statement. */
const MAX_MASKED_LENGTH = 4096;
/** Texts longer than this are cached by their shape only. */
const MAX_CACHED_TEXT_LENGTH = 4096;
const CACHE_LIMIT = 2000;

/**
 * `db.query.text` for a statement: its literals replaced by `$n` (libpg-query's normalize,
 * as pg_stat_statements does), worked out on the statement's shape (long constant lists cut to
 * their first element, marked `/*, ... *\/`), so a 30,000-row INSERT costs one lexer pass and a
 * parse of one row. A shape still too long for the parser is masked by the lexer and cut;
 * text the lexer finds unterminated gets no text at all (it could be a literal). Cached by text
 * and by shape, both bounded.
 */
export class QueryTexts {
  readonly #byText = new Map<string, string | null>();
  readonly #byShape = new Map<string, string | null>();

  /** `parsed` false when the classifier could not parse the text: then there is no text. */
  sanitized(text: string, parsed: boolean): string | null {
    if (!parsed) return null;
    const hit = this.#byText.get(text);
    if (hit !== undefined) return hit;
    const shape = shapeOf(text, { marker: LIST_MARKER });
    let result: string | null;
    if (shape.unterminated) result = null;
    else {
      const cached = this.#byShape.get(shape.text);
      result = cached !== undefined ? cached : this.#normalize(shape.text);
      if (cached === undefined && shape.text.length <= MAX_NORMALIZED_LENGTH * 2) {
        remember(this.#byShape, shape.text, result);
      }
    }
    if (text.length <= MAX_CACHED_TEXT_LENGTH) remember(this.#byText, text, result);
    return result;
  }

  #normalize(shape: string): string | null {
    if (shape.length > MAX_NORMALIZED_LENGTH) {
      return maskLiterals(shape, { numbered: true, maxLength: MAX_MASKED_LENGTH });
    }
    let normalized: string;
    try {
      normalized = normalizeSync(shape);
    } catch {
      return null;
    }
    // libpg-query returns (not throws) the scanner's error message, which may quote a literal,
    // for text it cannot scan. Normalizing keeps everything before the first constant, so a
    // real result starts with the statement's own first word.
    return firstWord(normalized) === firstWord(shape) ? normalized : null;
  }
}

function remember(cache: Map<string, string | null>, key: string, value: string | null): void {
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, value);
}
