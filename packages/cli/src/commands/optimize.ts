/**
 * `pgpulse analyze`, `pgpulse indexes` and `pgpulse partitions`: the DatabaseOptimizationService
 * from the command line. The first URL is the primary, any others are replicas. Exit code 0 on
 * success, 1 when the database said no, 2 on bad input.
 */
import {
  DatabaseOptimizationService,
  type PgPulseConfig,
  PgPulseError,
  type DatabaseOptimizationService as Service,
} from '@pgpulse/core';
import type { Command } from 'commander';
import { percent, positiveNumber } from './options.js';

export interface Output {
  write(text: string): void;
}

interface CommonFlags {
  json: boolean;
}

function service(urls: readonly string[]): Service {
  const [primary, ...replicas] = urls;
  if (!primary)
    throw new PgPulseError('PGPULSE_USAGE', 'give the primary URL first, then any replicas');
  const config: PgPulseConfig = {
    primary,
    replicas,
    applicationName: 'pgpulse-cli',
    telemetry: { enabled: false },
    slowQuery: { explain: false },
  };
  return new DatabaseOptimizationService(config);
}

async function run(
  out: Output,
  urls: readonly string[],
  work: (s: Service) => Promise<string>,
): Promise<number> {
  let svc: Service;
  try {
    svc = service(urls);
  } catch (error) {
    out.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  try {
    await svc.initialize();
    out.write(await work(svc));
    return 0;
  } catch (error) {
    out.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await svc.close();
  }
}

export function analyzeCommand(
  out: Output,
  urls: readonly string[],
  sql: string,
  flags: CommonFlags,
): Promise<number> {
  return run(out, urls, async (svc) => {
    const analysis = await svc.analyzeQuery(sql);
    if (flags.json) return `${JSON.stringify(analysis, null, 2)}\n`;
    const lines = [`plan cost ${analysis.executionPlan.cost} (${analysis.executionPlan.mode})`];
    for (const f of analysis.findings) lines.push(`  ${f.severity.padEnd(8)} ${f.message}`);
    for (const s of analysis.suggestions) {
      lines.push(
        `  priority ${s.priority} ${s.kind}: ${s.description}${s.sql ? `\n    ${s.sql}` : ''}`,
      );
    }
    if (analysis.optimizedQuery) lines.push(`  rewrite: ${analysis.optimizedQuery}`);
    return `${lines.join('\n')}\n`;
  });
}

/** Flags of `pgpulse indexes`. */
export interface IndexesFlags extends CommonFlags {
  tables?: string;
  apply: boolean;
  priority: string;
  /** REINDEX CONCURRENTLY the bloated indexes (without it they are only reported). */
  rebuildBloated?: boolean;
  /** Percent; default 30 (adviseIndexes' default). */
  bloatThreshold?: number;
}

const mib = (bytes: number | undefined) =>
  bytes === undefined ? '?' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export function indexesCommand(
  out: Output,
  urls: readonly string[],
  flags: IndexesFlags,
): Promise<number> {
  return run(out, urls, async (svc) => {
    const tables = flags.tables
      ?.split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    const report = await svc.optimizeIndexes({
      ...(tables?.length ? { tables } : {}),
      apply: flags.apply,
      priorityThreshold: Number(flags.priority),
      rebuildBloated: flags.rebuildBloated === true,
      ...(flags.bloatThreshold === undefined
        ? {}
        : { bloatThresholdPercent: flags.bloatThreshold }),
    });
    if (flags.json) return `${JSON.stringify(report, null, 2)}\n`;
    const lines = [`${report.recommendations.length} recommendation(s)`];
    for (const r of report.recommendations)
      lines.push(`  priority ${r.priority} ${r.sql}\n    ${r.reason}`);
    for (const d of report.duplicates) lines.push(`  duplicate: ${d.sql}`);
    for (const u of report.unused) lines.push(`  unused: ${u.schema}.${u.name}`);
    for (const i of report.invalid) lines.push(`  invalid: ${i.schema}.${i.name}`);
    for (const b of report.bloated)
      lines.push(`  bloated: ${b.schema}.${b.name} ${b.bloatPercent.toFixed(0)} %`);
    for (const a of report.applied)
      lines.push(`  applied: ${a.status} ${a.indexName ?? ''} ${a.reason ?? ''}`.trimEnd());
    for (const r of report.rebuilt) {
      lines.push(
        `  rebuilt: ${r.status} ${r.index.schema}.${r.index.name} ` +
          `${mib(r.sizeBytesBefore)} -> ${mib(r.sizeBytesAfter)}${r.reason ? ` ${r.reason}` : ''}`,
      );
    }
    lines.push(`  (${report.note})`);
    return `${lines.join('\n')}\n`;
  });
}

/** Flags of `pgpulse partitions`. */
export interface PartitionsFlags extends CommonFlags {
  table: string;
  schema?: string;
  column: string;
  interval: string;
  premake: string;
  retentionDays?: string;
  /** Convert a plain table online (copy in batches, then a short swap). */
  migrate?: boolean;
  batchSize?: number;
  dropOld?: boolean;
}

export function partitionsCommand(
  out: Output,
  urls: readonly string[],
  flags: PartitionsFlags,
): Promise<number> {
  return run(out, urls, async (svc) => {
    const result = await svc.setupPartitioning(
      {
        table: flags.table,
        ...(flags.schema ? { schema: flags.schema } : {}),
        column: flags.column,
        type: 'range',
        interval: flags.interval as 'daily',
        premake: Number(flags.premake),
        ...(flags.retentionDays
          ? { retention: { olderThan: Number(flags.retentionDays), unit: 'days' as const } }
          : {}),
      },
      flags.migrate
        ? {
            migrate: {
              ...(flags.batchSize === undefined ? {} : { batchSize: flags.batchSize }),
              dropOld: flags.dropOld === true,
            },
          }
        : {},
    );
    const maintenance = await svc.maintainPartitions();
    if (flags.json) return `${JSON.stringify({ setup: result, maintenance }, null, 2)}\n`;
    const lines = [`${result.schema}.${result.table}: ${result.status}`];
    const m = result.migration;
    if (m !== undefined) {
      lines.push(
        `  migrated online in ${(m.durationMs / 1000).toFixed(1)} s: ${m.rowsRead} rows copied in ` +
          `${m.batches} batches, writers held ${m.triggerLockMs.toFixed(0)} ms (trigger) and ` +
          `${m.swapMs.toFixed(0)} ms (swap); ${m.oldTable === undefined ? 'old table dropped' : `old table kept as ${m.oldTable}`}`,
      );
      for (const p of m.partitions.partitions) {
        lines.push(
          `  ${p.name.padEnd(28)} ${String(p.rows ?? '?').padStart(10)} rows ${mib(p.bytes)}`,
        );
      }
    }
    for (const c of result.created) lines.push(`  created ${c.name} ${c.bound}`);
    for (const t of maintenance.tables) {
      for (const d of t.detached) lines.push(`  retired ${d.name} ${d.bound} (${d.method})`);
    }
    return `${lines.join('\n')}\n`;
  });
}

const stdout: Output = { write: (text) => process.stdout.write(text) };

export function registerOptimize(program: Command): void {
  program
    .command('analyze')
    .description('EXPLAIN a statement: findings, suggestions, a safe rewrite when one is cheaper')
    .argument('<sql>', 'the statement')
    .argument('<url...>', 'postgres:// URLs: the primary first, then the replicas')
    .option('--json', 'print JSON', false)
    .action(async (sql: string, urls: string[], flags: CommonFlags) => {
      process.exitCode = await analyzeCommand(stdout, urls, sql, flags);
    });
  program
    .command('indexes')
    .description(
      'index advice: missing, duplicate, unused, invalid, bloated; --apply builds priority 4-5, --rebuild-bloated rebuilds the bloated',
    )
    .argument('<url...>', 'postgres:// URLs: the primary first, then the replicas')
    .option('--tables <list>', 'comma-separated table names')
    .option('--apply', 'build the recommendations (CREATE INDEX CONCURRENTLY)', false)
    .option('--priority <n>', 'lowest priority to build with --apply', '4')
    .option(
      '--rebuild-bloated',
      'rebuild the bloated indexes (REINDEX INDEX CONCURRENTLY, one at a time)',
      false,
    )
    .option(
      '--bloat-threshold <percent>',
      'report (and with --rebuild-bloated rebuild) indexes at least this bloated (default 30)',
      percent('--bloat-threshold'),
    )
    .option('--json', 'print JSON', false)
    .action(async (urls: string[], flags: IndexesFlags) => {
      process.exitCode = await indexesCommand(stdout, urls, flags);
    });
  program
    .command('partitions')
    .description(
      'premake range partitions of a partitioned table and retire old ones; --migrate converts a plain table online',
    )
    .argument('<url...>', 'postgres:// URLs: the primary first, then the replicas')
    .requiredOption('--table <name>', 'the partitioned table (PARTITION BY RANGE)')
    .option('--schema <name>', 'its schema', 'public')
    .requiredOption('--column <name>', 'its partition key column')
    .option('--interval <interval>', 'hourly | daily | weekly | monthly | yearly', 'daily')
    .option('--premake <n>', 'partitions to create ahead', '4')
    .option('--retention-days <n>', 'detach and drop partitions older than this')
    .option(
      '--migrate',
      'when the table is a plain table, convert it online: changes mirrored, rows copied in batches, a short swap',
      false,
    )
    .option(
      '--batch-size <n>',
      'rows per copy batch with --migrate (default 5000)',
      positiveNumber('--batch-size', { integer: true }),
    )
    .option(
      '--drop-old',
      'with --migrate, drop <table>_old after the swap (default: keep it)',
      false,
    )
    .option('--json', 'print JSON', false)
    .action(async (urls: string[], flags: PartitionsFlags) => {
      process.exitCode = await partitionsCommand(stdout, urls, flags);
    });
}
