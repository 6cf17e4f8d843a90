import { PartitioningError } from '../errors/index.js';
import { quoteIdent } from '../sql/index.js';
import {
  createPartition,
  type DdlSession,
  describeFailure,
  detachPartition,
  dropTable,
  type ParentRef,
} from './ddl.js';
import { type ParentInfo, readChildren, readParent, requirePartitionedParent } from './inspect.js';
import { type MigrationOptions, migrateToPartitions } from './migration/migrate.js';
import { DEFAULT_SUFFIX, type Plan, planHash, planList, planRange } from './plan.js';
import {
  type DetachedPartition,
  emptyResult,
  type PartitionChange,
  type TableMaintenance,
} from './results.js';
import { partitionName, qualified } from './sql.js';
import type { PartitionType, ResolvedPartitionStrategy } from './strategy.js';

/**
 * One table's run, under its advisory lock (taken by PartitionManager): check the catalog
 * against the strategy, then create, detach and drop what the plan says; on `setup` with
 * `migrate`, first convert a plain table (migration/).
 */

export type Mode = 'setup' | 'maintain';

/** The online migration, when the table is still a plain one; undefined when it is not. */
export async function migrateIfPlain(
  session: DdlSession,
  strategy: ResolvedPartitionStrategy,
  at: Date,
  options: MigrationOptions,
) {
  const existing = await readParent(session.client, strategy.schema, strategy.table);
  if (existing === undefined || existing.kind !== 'r') return undefined;
  if (strategy.type !== 'range') {
    throw new PartitioningError(
      'strategy-mismatch',
      qualified(strategy.schema, strategy.table),
      `Migrating a plain table is for range strategies (type 'range' with an interval); ` +
        `this one is '${strategy.type}'.`,
    );
  }
  return migrateToPartitions(session, strategy, at, options);
}

export async function workOnTable(
  session: DdlSession,
  strategy: ResolvedPartitionStrategy,
  mode: Mode,
  at: Date,
): Promise<TableMaintenance> {
  const tableName = qualified(strategy.schema, strategy.table);
  const parent = await requirePartitionedParent(
    session.client,
    strategy.schema,
    strategy.table,
    `PARTITION BY ${strategy.type.toUpperCase()} (${quoteIdent(strategy.column)})`,
  );
  const timeKey = verify(parent, strategy, tableName);
  const children = await readChildren(session.client, parent);
  let plan: Plan;
  switch (strategy.type) {
    case 'range':
      if (timeKey === undefined) throw new Error('unreachable: verify() checked the key type');
      plan = planRange(strategy, timeKey, children, at, { retention: mode === 'maintain' });
      break;
    case 'list':
      plan = planList(strategy, children);
      break;
    case 'hash':
      plan = planHash(strategy, children);
      break;
  }

  const created: PartitionChange[] = [];
  const detached: DetachedPartition[] = [];
  const dropped: string[] = [];
  const errors: PartitioningError[] = [];
  const ref: ParentRef = parent;
  let defaultPartition = parent.defaultPartition;
  const child = (partition: string) => qualified(strategy.schema, partition);

  if (plan.mismatches.length > 0 && strategy.type === 'hash') {
    errors.push(
      new PartitioningError(
        'strategy-mismatch',
        tableName,
        `${tableName} has hash partitions of another modulus than the strategy's ${strategy.modulus} (${plan.mismatches.map(child).join(', ')}); set modulus to match the table.`,
      ),
    );
  }
  for (const conflict of plan.conflicts) {
    errors.push(
      new PartitioningError(
        'overlap',
        tableName,
        `Partition ${child(conflict.name)} (${conflict.clause}) was not created: it overlaps ${conflict.overlaps.map((o) => child(o)).join(', ')}, which pgpulse did not make. Align or remove those partitions.`,
        { partition: child(conflict.name) },
      ),
    );
  }
  for (const wanted of plan.create) {
    try {
      await createPartition(session, ref, wanted.name, wanted.clause);
      created.push({ name: wanted.name, bound: wanted.clause });
    } catch (cause) {
      errors.push(
        describeFailure(
          cause,
          tableName,
          child(wanted.name),
          'create partition',
          session,
          defaultPartition,
        ),
      );
    }
  }
  if (strategy.default && defaultPartition === undefined) {
    const name = partitionName(strategy.table, DEFAULT_SUFFIX);
    try {
      await createPartition(session, ref, name, 'DEFAULT');
      created.push({ name, bound: 'DEFAULT' });
      defaultPartition = name;
    } catch (cause) {
      errors.push(
        describeFailure(
          cause,
          tableName,
          child(name),
          'create the DEFAULT partition',
          session,
          undefined,
        ),
      );
    }
  }
  for (const old of plan.retire) {
    try {
      const method = await detachPartition(session, ref, old, defaultPartition !== undefined);
      detached.push({ name: old.name, bound: old.bound, method });
    } catch (cause) {
      errors.push(
        describeFailure(
          cause,
          tableName,
          child(old.name),
          'detach partition',
          session,
          defaultPartition,
        ),
      );
      continue;
    }
    if (strategy.type !== 'range' || strategy.retentionMode !== 'drop') continue;
    try {
      await dropTable(session, old.schema, old.name);
      dropped.push(old.name);
    } catch (cause) {
      errors.push(
        describeFailure(
          cause,
          tableName,
          child(old.name),
          'drop the detached partition (it is detached, drop it by hand)',
          session,
          undefined,
        ),
      );
    }
  }
  return {
    ...emptyResult(strategy),
    status: errors.length > 0 ? 'failed' : 'done',
    created,
    detached,
    dropped,
    errors,
  };
}

/** Checks the catalog's partitioning against the strategy; returns the time key of a range. */
function verify(
  parent: ParentInfo & { readonly strategy: PartitionType },
  strategy: ResolvedPartitionStrategy,
  table: string,
) {
  const mismatch = (message: string) => new PartitioningError('strategy-mismatch', table, message);
  if (parent.strategy !== strategy.type) {
    throw mismatch(
      `${table} is partitioned by ${parent.strategy.toUpperCase()}, but the strategy says type '${strategy.type}'; make them agree.`,
    );
  }
  if (parent.keyCount !== 1) {
    throw mismatch(
      `${table} is partitioned by ${parent.keyCount} columns; pgpulse manages single-column partition keys only.`,
    );
  }
  if (parent.keyColumn === undefined) {
    throw mismatch(
      `${table} is partitioned by an expression; pgpulse manages partition keys that are a plain column.`,
    );
  }
  if (parent.keyColumn !== strategy.column) {
    throw mismatch(
      `${table} is partitioned by column ${quoteIdent(parent.keyColumn)}, but the strategy says column ${quoteIdent(strategy.column)}.`,
    );
  }
  if (strategy.type !== 'range') return undefined;
  if (parent.timeKey === undefined) {
    throw mismatch(
      `Range partitioning by interval needs a timestamptz, timestamp or date key; ${quoteIdent(parent.keyColumn)} of ${table} is ${parent.keyType ?? 'of another type'}.`,
    );
  }
  if (strategy.interval === 'hourly' && parent.timeKey === 'date') {
    throw mismatch(
      `Hourly partitions need a timestamptz or timestamp key; ${quoteIdent(parent.keyColumn)} of ${table} is a date. Use interval 'daily' or longer.`,
    );
  }
  return parent.timeKey;
}
