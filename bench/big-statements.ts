// Big statements (issue 23): how long classifying a bulk INSERT or a long IN list takes on its
// first call, against a full parse of the same text (what every call cost before), and the
// event-loop delay (p99, perf_hooks.monitorEventLoopDelay) while a bulk-insert workload runs
// through cluster.pool against the same workload on a raw pg.Pool, interleaved A B B A.
// Run: pnpm bench:big-statements
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createClassifier, createCluster, loadParser } from '@pgpulse/core';
import { withPgPulse } from '@pgpulse/drizzle';
import { pgpulseAdapter } from '@pgpulse/prisma';
import { startCluster } from '@pgpulse/sandbox';
import { createPgPulseDataSource } from '@pgpulse/typeorm';
import pg from 'pg';
import { fingerprintQuery } from '../packages/core/src/analysis/fingerprint.js';
import { classifyByParse } from '../packages/core/src/routing/classifier.js';
import { QueryTexts } from '../packages/core/src/telemetry/query-text.js';
import { DDL as DRIZZLE_DDL, schema, users } from '../packages/drizzle/src/testing/schema.js';
import { SCHEMA_SQL as PRISMA_DDL } from '../packages/prisma/test/fixtures.js';
import { PrismaClient } from '../packages/prisma/test/generated/client.js';
import {
  ENTITIES,
  SCHEMA_SQL as TYPEORM_DDL,
  UserAccount,
} from '../packages/typeorm/src/test-support/entities.js';
import { median } from './lib/measure.js';

const PAIRS = Number(process.env.PAIRS ?? 6);
const SECONDS = Number(process.env.SECONDS ?? 3);
const WORKERS = 4;

const params = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');
const bulkInsert = (rows: number) =>
  `insert into "bench_bulk" ("a", "b", "c", "d", "e") values ${Array.from(
    { length: rows },
    (_, r) => `(${params(r * 5 + 1, 5)})`,
  ).join(', ')}`;
const inRead = (n: number) =>
  `select "id", "a" from "bench_bulk" where "bench_bulk"."id" in (${params(1, n)})`;
/** Flattens a joined string, as pg's wire buffer would, so no side pays for it. */
const flat = (s: string) => {
  void Number(s);
  return s;
};

const ms = (x: number) => (x < 10 ? x.toFixed(3) : x.toFixed(1));
const time = (run: () => unknown): number => {
  const t = performance.now();
  run();
  return performance.now() - t;
};

await loadParser();
// A running application has lexed and parsed many statements: warm the JIT on other texts.
{
  const warm = createClassifier();
  for (let i = 0; i < 300; i++) {
    warm.classify(flat(inRead(2 + (i % 50))).replace('"a"', `"a${i}"`));
    warm.classify(flat(bulkInsert(1 + (i % 20))));
    fingerprintQuery(flat(inRead(2 + (i % 50))).replace('"a"', `"b${i}"`));
  }
}

interface Row {
  readonly statement: string;
  readonly text: string;
}

function report(title: string, rows: readonly Row[]): void {
  console.log(`\n${title}`);
  console.log(
    'statement'.padEnd(38),
    'text'.padStart(8),
    'classify'.padStart(10),
    'full parse'.padStart(11),
    'fingerprint'.padStart(12),
    'span text'.padStart(10),
    ' routed',
  );
  for (const { statement, text } of rows) {
    // Each first call on a fresh classifier and a text it has never seen (a new alias), median
    // of 5: the machine is shared, and one call is at the mercy of the scheduler.
    const firsts = { classify: [] as number[], fingerprint: [] as number[], span: [] as number[] };
    let routed = '';
    for (let i = 0; i < 5; i++) {
      // flat(): replace() returns a rope; pg's serializer would flatten it on either side,
      // and that one copy is not classification's cost.
      const variant = flat(text.replace(/^(\s*\w+)/, `$1 /* run ${i} */`));
      const classifier = createClassifier();
      const texts = new QueryTexts();
      collect();
      firsts.classify.push(
        time(() => {
          const c = classifier.classify(variant);
          routed = `${c.kind}/${c.reason}`;
        }),
      );
      firsts.fingerprint.push(time(() => fingerprintQuery(variant)));
      firsts.span.push(time(() => texts.sanitized(variant, true)));
    }
    collect();
    const parse = time(() => classifyByParse(text));
    console.log(
      statement.padEnd(38),
      `${(text.length / 1024).toFixed(0)} KB`.padStart(8),
      `${ms(median(firsts.classify))} ms`.padStart(10),
      `${ms(parse)} ms`.padStart(11),
      `${ms(median(firsts.fingerprint))} ms`.padStart(12),
      `${ms(median(firsts.span))} ms`.padStart(10),
      ` ${routed}`,
    );
  }
}

/** A full GC between measurements when node runs with --expose-gc. */
function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

report('First call, fresh classifier (full parse = what every call cost before)', [
  { statement: 'INSERT 1,000 rows x 5 params', text: flat(bulkInsert(1000)) },
  { statement: 'INSERT 10,000 rows', text: flat(bulkInsert(10_000)) },
  { statement: 'INSERT 30,000 rows', text: flat(bulkInsert(30_000)) },
  { statement: 'SELECT ... IN (1,000 params)', text: flat(inRead(1000)) },
  { statement: 'SELECT ... IN (10,000)', text: flat(inRead(10_000)) },
  { statement: 'SELECT ... IN (40,000)', text: flat(inRead(40_000)) },
]);

const sandbox = await startCluster({ replicas: 1 });
try {
  await sandbox.query('primary', DRIZZLE_DDL);
  await sandbox.query('primary', PRISMA_DDL);
  await sandbox.query('primary', TYPEORM_DDL);
  await sandbox.query(
    'primary',
    'CREATE TABLE bench_bulk (id bigserial PRIMARY KEY, a int, b int, c text, d text, e int)',
  );
  const cluster = createCluster({
    primary: sandbox.primary.url,
    replicas: sandbox.replicas.map((r) => r.url),
    pool: { maxSize: WORKERS },
    // The box is shared: generous probe timeouts keep a slow probe from looking like a failure.
    health: { timeoutMs: 10_000, maxConsecutiveFailures: 10 },
  });
  await cluster.ready();

  // The SQL each ORM's bulk operation sends, captured on its way to pg.
  const seen: string[] = [];
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function capture(this: pg.Client, ...args: unknown[]) {
    const first = args[0] as string | { text?: string };
    const text = typeof first === 'string' ? first : first?.text;
    if (typeof text === 'string' && text.length > 4096) seen.push(text);
    return (query as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  const captured = async (run: () => Promise<unknown>): Promise<string> => {
    seen.length = 0;
    await run();
    const text = seen.at(-1);
    if (text === undefined) throw new Error('the ORM sent no big statement');
    return text;
  };
  const ids = Array.from({ length: 5000 }, (_, i) => i + 1);
  const db = withPgPulse(cluster, { schema });
  const prisma = new PrismaClient({ adapter: pgpulseAdapter(cluster) });
  const ds = createPgPulseDataSource(cluster, { entities: ENTITIES, synchronize: false });
  await ds.initialize();
  const people = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => ({ name: `${tag} ${i}`, email: `${tag}${i}@example.com` }));

  const ormRows: Row[] = [
    {
      statement: 'drizzle insert().values(1,000)',
      text: await captured(() => db.insert(users).values(people(1000, 'dz'))),
    },
    {
      statement: 'drizzle findMany inArray(5,000)',
      text: await captured(() =>
        db.query.users.findMany({ where: (u, { inArray }) => inArray(u.id, ids) }),
      ),
    },
    {
      statement: 'Prisma createMany(1,000)',
      text: await captured(() => prisma.user.createMany({ data: people(1000, 'pr') })),
    },
    {
      statement: 'Prisma findMany({ id: { in: 5,000 } })',
      text: await captured(() => prisma.user.findMany({ where: { id: { in: ids } } })),
    },
    {
      statement: 'TypeORM insert().values(1,000)',
      text: await captured(() =>
        ds
          .createQueryBuilder()
          .insert()
          .into(UserAccount)
          .values(people(1000, 'to').map(({ name }) => ({ name, balance: 1 })))
          .execute(),
      ),
    },
    {
      statement: 'TypeORM where id IN (:...5,000)',
      text: await captured(() =>
        ds
          .getRepository(UserAccount)
          .createQueryBuilder('u')
          .where('u.id IN (:...ids)', { ids })
          .getMany(),
      ),
    },
  ];
  pg.Client.prototype.query = query;
  report('ORM bulk operations through their adapters (the SQL each sent), first call', ormRows);
  await prisma.$disconnect();
  await ds.destroy();

  // Event-loop delay while WORKERS loops insert 1,000-row batches, each of a new size (so each
  // text is new to the classifier), through a raw pg.Pool and through cluster.pool.
  const raw = new pg.Pool({ connectionString: sandbox.primary.url, max: WORKERS });
  const sizes = Array.from({ length: 200 }, (_, i) => 900 + i);
  const batches = new Map(sizes.map((n) => [n, flat(bulkInsert(n))]));
  const values = new Map(
    sizes.map((n) => [
      n,
      Array.from({ length: n * 5 }, (_, i) => (i % 5 < 2 || i % 5 === 4 ? i : `v${i}`)),
    ]),
  );
  type Run = (text: string, values: unknown[]) => Promise<unknown>;
  const phase = async (run: Run): Promise<{ p99: number; batches: number }> => {
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    const deadline = performance.now() + SECONDS * 1000;
    let n = 0;
    histogram.enable();
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        while (performance.now() < deadline) {
          const size = sizes[(n++ * 7 + w) % sizes.length]!;
          await run(batches.get(size)!, values.get(size)!);
        }
      }),
    );
    histogram.disable();
    await sandbox.query('primary', 'TRUNCATE bench_bulk');
    return { p99: histogram.percentile(99) / 1e6, batches: n };
  };
  const viaRaw: Run = (text, v) => raw.query(text, v);
  const viaCluster: Run = (text, v) => cluster.pool.query(text, v);
  const viaParse: Run = (text, v) => {
    classifyByParse(text); // what the classifier did for every bulk INSERT before
    return raw.query(text, v);
  };
  await phase(viaRaw);
  await phase(viaCluster);
  const results = { raw: [] as number[], cluster: [] as number[], parse: [] as number[] };
  const counts = { raw: [] as number[], cluster: [] as number[], parse: [] as number[] };
  for (let pair = 0; pair < PAIRS; pair++) {
    const order = pair % 2 === 0 ? (['raw', 'cluster'] as const) : (['cluster', 'raw'] as const);
    for (const side of order) {
      const r = await phase(side === 'raw' ? viaRaw : viaCluster);
      results[side].push(r.p99);
      counts[side].push(r.batches);
    }
  }
  for (let pair = 0; pair < 2; pair++) {
    const r = await phase(viaParse);
    results.parse.push(r.p99);
    counts.parse.push(r.batches);
  }
  const line = (name: string, key: keyof typeof results) =>
    console.log(
      `${name.padEnd(44)} p99 ${ms(median(results[key]))} ms (runs: ${results[key].map(ms).join(', ')}), ${median(counts[key])} batches / ${SECONDS} s`,
    );
  console.log(
    `\nEvent-loop delay, ${WORKERS} workers inserting 900–1,099-row batches (5 params a row), ${PAIRS} pairs A B B A x ${SECONDS} s`,
  );
  line('raw pg.Pool', 'raw');
  line('cluster.pool', 'cluster');
  line('raw pg.Pool + full parse per statement (before)', 'parse');
  console.log(
    `difference cluster - raw: ${ms(median(results.cluster) - median(results.raw))} ms (goal: within 2 ms)`,
  );
  await raw.end();
  await cluster.close();
} finally {
  await sandbox.stop();
}
