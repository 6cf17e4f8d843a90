/**
 * Server settings sent with every new connection, the way libpq does it: the start-up packet's
 * `options` parameter, `-c name=value` per setting. `statement_timeout`, `lock_timeout`,
 * `idle_in_transaction_session_timeout`, `search_path`, `TimeZone`, ... then hold for every
 * statement on that connection from its first one, through any pooler, with no extra round
 * trip.
 */
export type ServerSettingValue = string | number | boolean;
export type ServerSettings = Readonly<Record<string, ServerSettingValue>>;

/** A GUC name: letters, digits, `_`, and `.` for extension settings (`pg_stat_statements.track`). */
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

/** Why `name` cannot be a setting, or undefined when it can. */
export function settingNameProblem(name: string): string | undefined {
  return SETTING_NAME.test(name)
    ? undefined
    : `'${name}' is not a server setting name (letters, digits and _, optionally one '.')`;
}

/** Why `value` cannot be sent, or undefined when it can. */
export function settingValueProblem(value: unknown): string | undefined {
  if (typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'a finite number';
  if (typeof value !== 'string') return 'a string, number or boolean';
  // The start-up packet is NUL-terminated text.
  return value.includes('\0') ? 'a string without NUL characters' : undefined;
}

/** `-c a=1 -c b=x\ y`: the `options` value for pg, or undefined when there is nothing to send. */
export function formatOptions(settings: ServerSettings): string | undefined {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(settings)) {
    // The server splits options at unescaped whitespace and drops one backslash before any
    // character: escape both, so that `search_path = 'a, b'` arrives whole.
    parts.push(`-c ${name}=${String(value).replace(/[\\\s]/g, (c) => `\\${c}`)}`);
  }
  return parts.length === 0 ? undefined : parts.join(' ');
}

/**
 * pg.Client config fields that are server settings: pg sends them at connect, in
 * milliseconds (`statement_timeout`, `lock_timeout`, `idle_in_transaction_session_timeout`).
 */
export const PG_CLIENT_SETTING_FIELDS = [
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
] as const;

/**
 * Parses a libpq `options` value (`-c name=value`, `-cname=value` or `--name=value`, separated
 * by whitespace, `\` escaping the next character). Only settings are accepted: other server
 * switches have no meaning per connection.
 */
export function parseOptions(
  text: string,
): { ok: true; settings: Record<string, string> } | { ok: false; reason: string } {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  const settings: Record<string, string> = {};
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let assignment: string | undefined;
    if (w === '-c') assignment = words[++i];
    else if (w.startsWith('-c')) assignment = w.slice(2);
    else if (w.startsWith('--')) assignment = w.slice(2);
    if (assignment === undefined) {
      return { ok: false, reason: `options: expected '-c name=value', got '${w}'` };
    }
    const eq = assignment.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `options: expected name=value, got '${assignment}'` };
    const name = assignment.slice(0, eq);
    const problem = settingNameProblem(name);
    if (problem !== undefined) return { ok: false, reason: `options: ${problem}` };
    settings[name] = assignment.slice(eq + 1);
  }
  return { ok: true, settings };
}
