import { ConfigError } from '../errors/index.js';

/**
 * Built-in functions that must never run on a replica: they write (sequences, large objects,
 * WAL, statistics), assign a transaction id, signal other backends, or take locks. Most of
 * them fail on a hot standby ("cannot execute nextval() in a read-only transaction"); the rest
 * would act on the wrong server. Bare names match calls written bare or `pg_catalog.`-qualified.
 */
export const BUILTIN_VOLATILE_FUNCTIONS: ReadonlySet<string> = new Set([
  // sequences
  'nextval',
  'setval',
  'currval',
  'lastval',
  // advisory locks (session and transaction level)
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_advisory_xact_lock',
  'pg_advisory_xact_lock_shared',
  'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared',
  'pg_advisory_unlock',
  'pg_advisory_unlock_shared',
  'pg_advisory_unlock_all',
  // transaction ids and WAL positions (error on a standby, or answer for the wrong node)
  'txid_current',
  'txid_current_if_assigned',
  'pg_current_xact_id',
  'pg_current_xact_id_if_assigned',
  'pg_current_wal_lsn',
  'pg_current_wal_insert_lsn',
  'pg_current_wal_flush_lsn',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_logical_emit_message',
  // settings and server control
  'set_config',
  'setseed',
  'pg_notify',
  'pg_cancel_backend',
  'pg_terminate_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_wal_replay_pause',
  'pg_wal_replay_resume',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_import_system_collations',
  // statistics resets
  'pg_stat_reset',
  'pg_stat_reset_shared',
  'pg_stat_reset_single_table_counters',
  'pg_stat_reset_single_function_counters',
  'pg_stat_reset_slru',
  'pg_stat_reset_replication_slot',
  'pg_stat_reset_subscription_stats',
  'pg_stat_reset_backend_stats',
  'pg_stat_statements_reset',
  // replication slots and origins
  'pg_create_physical_replication_slot',
  'pg_create_logical_replication_slot',
  'pg_copy_physical_replication_slot',
  'pg_copy_logical_replication_slot',
  'pg_drop_replication_slot',
  'pg_replication_slot_advance',
  'pg_logical_slot_get_changes',
  'pg_logical_slot_get_binary_changes',
  'pg_replication_origin_create',
  'pg_replication_origin_drop',
  'pg_replication_origin_advance',
  'pg_replication_origin_session_setup',
  'pg_replication_origin_session_reset',
  'pg_replication_origin_xact_setup',
  'pg_replication_origin_xact_reset',
  // large objects
  'lo_create',
  'lo_creat',
  'lo_import',
  'lo_export',
  'lo_unlink',
  'lo_open',
  'lo_write',
  'lowrite',
  'lo_put',
  'lo_from_bytea',
  'lo_truncate',
  'lo_truncate64',
  // extensions that write
  'dblink_exec',
]);

/**
 * Advisory locks held by the session (not released at commit), so the connection that took one
 * must stay pinned until it is unlocked.
 */
export const SESSION_ADVISORY_LOCK_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
]);

// ---------------------------------------------------------------------------------------------
// Function matching

/**
 * Decides whether a call is volatile. Unknown schema resolution is settled on the safe side:
 * a bare volatile name matches that function in any schema, and a bare call matches a
 * schema-qualified volatile entry (search_path may resolve to it). The allow list is exact,
 * except that `pg_catalog.f` and bare `f` name the same built-in.
 */
export class FunctionMatcher {
  readonly #exact = new Set<string>();
  readonly #bare = new Set<string>();
  readonly #lastPart = new Set<string>();
  readonly #allow = new Set<string>();

  constructor(volatile: Iterable<string>, allow: Iterable<string>) {
    for (const name of volatile) {
      // Users may pass a quoted identifier's exact case or a lower-cased one; honour both.
      this.#addVolatile(name);
      this.#addVolatile(name.toLowerCase());
    }
    for (const name of allow) this.#allow.add(name);
  }

  #addVolatile(name: string): void {
    this.#exact.add(name);
    const dot = name.lastIndexOf('.');
    if (dot === -1) this.#bare.add(name);
    this.#lastPart.add(name.slice(dot + 1));
  }

  isVolatile(parts: readonly string[], full: string): boolean {
    const last = parts[parts.length - 1]!;
    if (this.#isAllowed(parts, full, last)) return false;
    if (this.#exact.has(full)) return true;
    return parts.length === 1 ? this.#lastPart.has(last) : this.#bare.has(last);
  }

  #isAllowed(parts: readonly string[], full: string, last: string): boolean {
    if (this.#allow.has(full)) return true;
    if (parts.length === 1) return this.#allow.has(`pg_catalog.${last}`);
    return parts.length === 2 && parts[0] === 'pg_catalog' && this.#allow.has(last);
  }
}

/** The built-in a call names, if it is written bare or `pg_catalog.`-qualified. */
export function builtinName(parts: readonly string[]): string | undefined {
  if (parts.length === 1) return parts[0];
  if (parts.length === 2 && parts[0] === 'pg_catalog') return parts[1];
  return undefined;
}

export function collectNames(source: Iterable<string> | undefined, field: string): string[] {
  if (source === undefined) return [];
  const names: string[] = [];
  for (const name of source) {
    if (typeof name !== 'string' || name.trim() === '') {
      throw new ConfigError([
        {
          field,
          message: `expected non-empty function names (e.g. 'nextval' or 'public.f'), got ${JSON.stringify(name)}`,
        },
      ]);
    }
    names.push(name.trim());
  }
  return names;
}
