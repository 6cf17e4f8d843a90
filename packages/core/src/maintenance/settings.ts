import type { MaintenanceSession } from './session.js';

/**
 * Session settings for the time of a maintenance job (`lock_timeout`, `statement_timeout`): set
 * with `set_config(name, value, false)` (SET LOCAL needs a transaction block, and CREATE INDEX
 * CONCURRENTLY must run outside one), the previous values read first and put back afterwards.
 */

/** `[name, value]` pairs, values as `set_config` takes them (`'2000ms'`, `'0'`). */
export type SessionSettings = readonly (readonly [name: string, value: string])[];

const SET = `SELECT pg_catalog.set_config(s.name, s.value, false)
       FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS s(name, value)`;

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * Sets `settings` on the session while `body` runs and puts the previous values back after.
 * The putting back is skipped when the session is tainted (it is destroyed, not reused); when
 * it fails, the session is tainted. With no settings, `body` runs as is.
 */
export async function withSessionSettings<T>(
  session: MaintenanceSession,
  settings: SessionSettings,
  body: () => Promise<T>,
): Promise<T> {
  if (settings.length === 0) return body();
  const names = settings.map(([name]) => name);
  const saved = await session.client.query(
    `SELECT n.name, pg_catalog.current_setting(n.name) AS value
       FROM pg_catalog.unnest($1::text[]) AS n(name)`,
    [names],
  );
  const previous = saved.rows.map((raw) => {
    const r = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
    return [text(r.name), text(r.value)] as const;
  });
  await session.client.query(SET, [names, settings.map(([, value]) => value)]);
  try {
    return await body();
  } finally {
    if (!session.tainted) {
      try {
        await session.client.query(SET, [previous.map(([n]) => n), previous.map(([, v]) => v)]);
      } catch {
        // The session keeps our settings: never hand it back to a pool.
        session.taint();
      }
    }
  }
}
