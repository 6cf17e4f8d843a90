import pg from 'pg';

/** The two pools of `zonedPools`. */
export interface ZonedPools {
  /** TimeZone UTC: the assertions read the catalog here. */
  readonly admin: pg.Pool;
  /** One connection in a zone with a half-hour offset and day-month-year dates. */
  readonly app: pg.Pool;
}

/**
 * Two pools on one server for tests of code that must not depend on its session's settings
 * (partition bounds, keyset copies): `admin` (`adminMax` connections, TimeZone UTC) and `app`
 * (one connection, Asia/Kolkata, DateStyle Postgres, DMY). Both ignore an idle client's error:
 * pool.end() resolves before the sockets close, and the server's shutdown notice must not
 * become an uncaught error.
 */
export function zonedPools(url: string, options: { readonly adminMax: number }): ZonedPools {
  const admin = new pg.Pool({
    connectionString: url,
    max: options.adminMax,
    options: '-c TimeZone=UTC',
  });
  const app = new pg.Pool({
    connectionString: url,
    max: 1,
    options: '-c TimeZone=Asia/Kolkata -c DateStyle=Postgres,DMY',
  });
  for (const pool of [admin, app]) pool.on('error', () => {});
  return { admin, app };
}
