import type { PartitionInterval, PartitionRetention } from './strategy.js';

/**
 * Calendar arithmetic for range partitions, all in UTC: a partition covers
 * [periodStart, next periodStart) whatever the server's or the process's time zone.
 * Weeks start on Monday (ISO 8601).
 */

/** The start of the period containing `instant`. */
export function periodStart(instant: Date, interval: PartitionInterval): Date {
  const t = checked(instant);
  const y = t.getUTCFullYear();
  const m = t.getUTCMonth();
  const d = t.getUTCDate();
  switch (interval) {
    case 'hourly':
      return utc(y, m, d, t.getUTCHours());
    case 'daily':
      return utc(y, m, d);
    case 'weekly':
      return utc(y, m, d - ((t.getUTCDay() + 6) % 7));
    case 'monthly':
      return utc(y, m, 1);
    case 'yearly':
      return utc(y, 0, 1);
  }
}

/** `start` moved by `n` whole periods (`start` is a period start). */
export function addPeriods(start: Date, interval: PartitionInterval, n: number): Date {
  const t = checked(start);
  const y = t.getUTCFullYear();
  const m = t.getUTCMonth();
  const d = t.getUTCDate();
  switch (interval) {
    case 'hourly':
      return utc(y, m, d, t.getUTCHours() + n);
    case 'daily':
      return utc(y, m, d + n);
    case 'weekly':
      return utc(y, m, d + 7 * n);
    case 'monthly':
      return utc(y, m + n, 1);
    case 'yearly':
      return utc(y + n, 0, 1);
  }
}

/**
 * The partition name suffix for the period starting at `start`: `p2024031015` hourly,
 * `p20240310` daily and weekly (the Monday), `p202403` monthly, `p2024` yearly.
 */
export function periodSuffix(start: Date, interval: PartitionInterval): string {
  const t = checked(start);
  const yyyy = pad(t.getUTCFullYear(), 4);
  const mm = pad(t.getUTCMonth() + 1, 2);
  const dd = pad(t.getUTCDate(), 2);
  switch (interval) {
    case 'hourly':
      return `p${yyyy}${mm}${dd}${pad(t.getUTCHours(), 2)}`;
    case 'daily':
    case 'weekly':
      return `p${yyyy}${mm}${dd}`;
    case 'monthly':
      return `p${yyyy}${mm}`;
    case 'yearly':
      return `p${yyyy}`;
  }
}

/** The key types a time-range strategy can manage. */
export type TimeKeyType = 'timestamptz' | 'timestamp' | 'date';

/**
 * The SQL literal of a bound, formatted here from a Date (never from user text): an explicit
 * `+00` offset for timestamptz (so the session TimeZone cannot shift it), UTC wall time for
 * timestamp, the UTC calendar day for date.
 */
export function boundLiteral(instant: Date, keyType: TimeKeyType): string {
  const t = checked(instant);
  const day = `${pad(t.getUTCFullYear(), 4)}-${pad(t.getUTCMonth() + 1, 2)}-${pad(t.getUTCDate(), 2)}`;
  if (keyType === 'date') return `'${day}'`;
  const time = `${pad(t.getUTCHours(), 2)}:${pad(t.getUTCMinutes(), 2)}:${pad(t.getUTCSeconds(), 2)}`;
  return keyType === 'timestamptz' ? `'${day} ${time}+00'` : `'${day} ${time}'`;
}

/** `now - olderThan`; months are calendar months, the day clamped (31 March - 1 month = 29 Feb). */
export function retentionCutoff(now: Date, retention: PartitionRetention): Date {
  const t = checked(now);
  switch (retention.unit) {
    case 'hours':
      return new Date(t.getTime() - retention.olderThan * 3_600_000);
    case 'days':
      return new Date(t.getTime() - retention.olderThan * 86_400_000);
    case 'months': {
      const first = utc(t.getUTCFullYear(), t.getUTCMonth() - retention.olderThan, 1);
      const lastDay = utc(first.getUTCFullYear(), first.getUTCMonth() + 1, 0).getUTCDate();
      const cutoff = new Date(0);
      cutoff.setUTCFullYear(
        first.getUTCFullYear(),
        first.getUTCMonth(),
        Math.min(t.getUTCDate(), lastDay),
      );
      cutoff.setUTCHours(
        t.getUTCHours(),
        t.getUTCMinutes(),
        t.getUTCSeconds(),
        t.getUTCMilliseconds(),
      );
      return cutoff;
    }
  }
}

function utc(y: number, m: number, d: number, h = 0): Date {
  // setUTCFullYear rolls month and day overflow over in year `y` itself (Date.UTC would map
  // years 0-99 to 1900-1999).
  const date = new Date(0);
  date.setUTCFullYear(y, m, d);
  date.setUTCHours(h, 0, 0, 0);
  return checked(date);
}

function checked(date: Date): Date {
  const year = date.getUTCFullYear();
  if (Number.isNaN(date.getTime()) || year < 1 || year > 9999) {
    throw new RangeError(`partition bounds need a date between years 1 and 9999 (got ${date})`);
  }
  return date;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}
