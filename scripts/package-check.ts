/**
 * The packages as a user gets them from npm: builds and packs every workspace package, checks
 * each tarball (README, LICENSE, no tests, every source map's sources shipped), installs the
 * tarballs with npm into fresh projects (drizzle, Prisma, TypeORM, a CommonJS app, a CLI-only
 * install), type-checks each under `strict`, and runs a write and a read against a sandbox.
 * Prints each tarball's size and the CLI-only install's size. Exit code 1 on any failure.
 *
 * usage: pnpm check:packages    (needs the npm registry for the ORMs and TypeScript)
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster } from '@pgpulse/sandbox';

const root = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = ['core', 'sandbox', 'drizzle', 'prisma', 'typeorm', 'web', 'cli'] as const;
// The versions the workspace tests with; a user's app would pick its own within the peer ranges.
const VERSIONS = {
  pg: '8.23.1',
  '@types/pg': '8.23.1',
  '@opentelemetry/api': '1.10.0',
  'drizzle-orm': '0.45.4',
  prisma: '7.10.1',
  '@prisma/client': '7.10.0',
  '@prisma/adapter-pg': '7.10.1',
  typeorm: '1.1.1',
  'reflect-metadata': '0.2.2',
  typescript: '5.9.3',
  '@types/node': '20.19.43',
} as const;
type Dep = keyof typeof VERSIONS;

const failures: string[] = [];
const work = mkdtempSync(join(tmpdir(), 'pgpulse-packages-'));
const packs = join(work, 'packs');
mkdirSync(packs);

function run(
  cmd: string,
  args: readonly string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(' ')} (in ${cwd}) failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`,
    );
  }
}

/** Runs one check; `step` may return a detail (a size) for the report line. */
function check(label: string, step: () => string | undefined): void {
  const started = Date.now();
  try {
    const detail = step();
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write(`  ok    ${label} (${seconds} s)${detail ? `: ${detail}` : ''}\n`);
  } catch (error) {
    failures.push(label);
    process.stdout.write(
      `  FAIL  ${label}\n${String((error as Error).message).replace(/^/gm, '        ')}\n`,
    );
  }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;

function duBytes(dir: string): number {
  return Number(run('du', ['-sb', dir], root).split('\t')[0]);
}

// 1. Build and pack (pnpm pack turns workspace: ranges into versions).
process.stdout.write('build and pack\n');
// From clean: tsc -b leaves outputs of files that left the build (a moved fixture) in dist.
for (const name of PACKAGES) {
  rmSync(join(root, 'packages', name, 'dist'), { recursive: true, force: true });
  rmSync(join(root, 'packages', name, 'tsconfig.tsbuildinfo'), { force: true });
}
run('pnpm', ['build'], root);
const tarballs = new Map<string, string>();
for (const name of PACKAGES) {
  const dir = join(root, 'packages', name);
  run('pnpm', ['pack', '--pack-destination', packs], dir);
}
for (const file of readdirSync(packs)) {
  const name = file.startsWith('pgpulse-0')
    ? 'cli'
    : file.replace(/^pgpulse-/, '').replace(/-\d.*$/, '');
  tarballs.set(name, join(packs, file));
}

// 2. What is in each tarball.
process.stdout.write('\ntarballs\n');
for (const name of PACKAGES) {
  const tarball = tarballs.get(name);
  check(`${name}: packed, README, LICENSE, exports, no tests, maps with sources`, () => {
    if (tarball === undefined) throw new Error('no tarball');
    const files = run('tar', ['tzf', tarball], root).trim().split('\n');
    const has = (path: string) => files.includes(`package/${path}`);
    const missing = ['README.md', 'LICENSE', 'package.json'].filter((f) => !has(f));
    if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}`);
    // Every target of package.json `exports` (e.g. @pgpulse/sandbox/testing) is in the tarball.
    const manifest = JSON.parse(
      readFileSync(join(root, 'packages', name, 'package.json'), 'utf8'),
    ) as { exports?: unknown };
    const targets: string[] = [];
    const collect = (value: unknown): void => {
      if (typeof value === 'string') targets.push(value.replace(/^\.\//, ''));
      else if (value && typeof value === 'object') Object.values(value).forEach(collect);
    };
    collect(manifest.exports);
    const unexported = targets.filter((t) => !has(t));
    if (unexported.length > 0)
      throw new Error(`exports not in the tarball: ${unexported.join(', ')}`);
    const tests = files.filter((f) => /\.test(-d)?\.[cm]?[jt]s$|\/fixtures\//.test(f));
    if (tests.length > 0) throw new Error(`test files shipped: ${tests.slice(0, 5).join(', ')}`);
    // Each dist/x.js.map points at ../src/x.ts: that source must be in the tarball.
    const orphans = files
      .filter((f) => f.endsWith('.js.map') && f.startsWith('package/dist/'))
      .map((f) => f.replace('package/dist/', 'package/src/').replace(/\.js\.map$/, '.ts'))
      .filter((src) => !files.includes(src));
    if (orphans.length > 0)
      throw new Error(`maps without sources: ${orphans.slice(0, 5).join(', ')}`);
    return `${kb(statSync(tarball).size)}, ${files.length} files`;
  });
  // stripInternal (tsconfig.base.json) leaves `@internal` members out of the declarations;
  // one that is still there (the option dropped, or a tag TypeScript does not strip) fails.
  check(`${name}: no @internal member in the declarations`, () => {
    if (tarball === undefined) throw new Error('no tarball');
    const unpacked = join(work, `unpacked-${name}`);
    mkdirSync(unpacked);
    run('tar', ['xzf', tarball, '-C', unpacked], root);
    const declarations = (
      readdirSync(join(unpacked, 'package', 'dist'), { recursive: true }) as string[]
    ).filter((f) => f.endsWith('.d.ts'));
    if (declarations.length === 0) throw new Error('no declarations packed');
    const leaks = declarations.flatMap((f) =>
      readFileSync(join(unpacked, 'package', 'dist', f), 'utf8')
        .split('\n')
        .flatMap((line, i) => (line.includes('@internal') ? [`dist/${f}:${i + 1}`] : [])),
    );
    if (leaks.length > 0) throw new Error(`@internal in ${leaks.slice(0, 5).join(', ')}`);
    return `${declarations.length} .d.ts files`;
  });
}

// 3. Fresh projects, installed from the tarballs with npm.
const cluster = await startCluster({ replicas: 1, synchronous: true });
const env = { PRIMARY_URL: cluster.primary.url, REPLICA_URL: cluster.replicas[0]!.url };

interface Project {
  readonly name: string;
  readonly packages: readonly (typeof PACKAGES)[number][];
  readonly deps: readonly Dep[];
  readonly type: 'module' | 'commonjs';
  readonly files: Readonly<Record<string, string>>;
  /** Runs after install, before the type check (e.g. prisma generate). */
  readonly prepare?: (dir: string) => void;
  readonly tsconfig?: Record<string, unknown>;
}

const STRICT = {
  strict: true,
  target: 'ES2022',
  module: 'nodenext',
  moduleResolution: 'nodenext',
  outDir: 'dist',
  rootDir: 'src',
  // As every app template does: drizzle-orm's declarations for other databases do not check
  // without their drivers. The CommonJS app turns it off, so core's own declarations are checked.
  skipLibCheck: true,
  types: ['node'],
};

const WRITE_READ_NOTE =
  '// a write on the primary, then a read of it in the same context (read-your-writes)';

const projects: Project[] = [
  {
    name: 'drizzle',
    packages: ['core', 'drizzle'],
    deps: ['pg', '@types/pg', '@opentelemetry/api', 'drizzle-orm', 'typescript', '@types/node'],
    type: 'module',
    files: {
      'src/main.ts': `import { withPgPulse } from '@pgpulse/drizzle';
import { eq } from 'drizzle-orm';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';

const notes = pgTable('drizzle_notes', { id: integer('id').primaryKey(), body: text('body').notNull() });
const db = withPgPulse({ primary: process.env.PRIMARY_URL!, replicas: [process.env.REPLICA_URL!] }, { schema: { notes } });
await db.$cluster.ready();
await db.execute('CREATE TABLE IF NOT EXISTS drizzle_notes (id int PRIMARY KEY, body text NOT NULL)');
${WRITE_READ_NOTE}
await db.$cluster.context(async () => {
  await db.insert(notes).values({ id: 1, body: 'hello' });
  const rows = await db.select().from(notes).where(eq(notes.id, 1));
  const body: string | undefined = rows[0]?.body;
  if (body !== 'hello') throw new Error('read did not see the write: ' + JSON.stringify(rows));
});
await db.$client.end();
console.log('drizzle: write + read ok');
`,
    },
  },
  {
    name: 'prisma',
    packages: ['core', 'prisma'],
    deps: [
      'pg',
      '@types/pg',
      '@opentelemetry/api',
      'prisma',
      '@prisma/client',
      '@prisma/adapter-pg',
      'typescript',
      '@types/node',
    ],
    type: 'module',
    files: {
      'prisma/schema.prisma': `generator client {
  provider     = "prisma-client"
  output       = "../src/generated/prisma"
  moduleFormat = "esm"
}

datasource db {
  provider = "postgresql"
}

model PrismaNote {
  id   Int    @id
  body String
  @@map("prisma_notes")
}
`,
      'src/main.ts': `import { createCluster } from '@pgpulse/core';
import { pgpulseAdapter, withPgPulse } from '@pgpulse/prisma';
import { PrismaClient } from './generated/prisma/client.js';

const cluster = createCluster({ primary: process.env.PRIMARY_URL!, replicas: [process.env.REPLICA_URL!] });
const prisma = withPgPulse(cluster, new PrismaClient({ adapter: pgpulseAdapter(cluster) }));
await cluster.ready();
await prisma.$executeRawUnsafe('CREATE TABLE IF NOT EXISTS prisma_notes (id int PRIMARY KEY, body text NOT NULL)');
${WRITE_READ_NOTE}
await cluster.context(async () => {
  await prisma.prismaNote.create({ data: { id: 1, body: 'hello' } });
  const note = await prisma.prismaNote.findUnique({ where: { id: 1 } });
  const body: string | undefined = note?.body;
  if (body !== 'hello') throw new Error('read did not see the write: ' + JSON.stringify(note));
});
await prisma.$disconnect();
await cluster.close();
console.log('prisma: write + read ok');
`,
    },
    prepare: (dir) =>
      run('npx', ['prisma', 'generate'], dir, {
        PRISMA_SCHEMA_ENGINE_BINARY: '/bin/true',
        CHECKPOINT_DISABLE: '1',
      }),
  },
  {
    name: 'typeorm',
    packages: ['core', 'typeorm'],
    deps: [
      'pg',
      '@types/pg',
      '@opentelemetry/api',
      'typeorm',
      'reflect-metadata',
      'typescript',
      '@types/node',
    ],
    type: 'module',
    tsconfig: {
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      strictPropertyInitialization: false,
    },
    files: {
      'src/main.ts': `import 'reflect-metadata';
import { createCluster } from '@pgpulse/core';
import { createPgPulseDataSource } from '@pgpulse/typeorm';
import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity('typeorm_notes')
class Note {
  @PrimaryColumn('int') id!: number;
  @Column('text') body!: string;
}

const cluster = createCluster({ primary: process.env.PRIMARY_URL!, replicas: [process.env.REPLICA_URL!] });
const dataSource = createPgPulseDataSource(cluster, { entities: [Note], synchronize: true });
await dataSource.initialize();
${WRITE_READ_NOTE}
await cluster.context(async () => {
  await dataSource.getRepository(Note).save({ id: 1, body: 'hello' });
  const note = await dataSource.getRepository(Note).findOneBy({ id: 1 });
  const body: string | undefined = note?.body;
  if (body !== 'hello') throw new Error('read did not see the write: ' + JSON.stringify(note));
});
await dataSource.destroy();
await cluster.close();
console.log('typeorm: write + read ok');
`,
    },
  },
  {
    name: 'commonjs',
    packages: ['core', 'web'],
    deps: ['pg', '@types/pg', '@opentelemetry/api', 'typescript', '@types/node'],
    type: 'commonjs',
    tsconfig: { skipLibCheck: false },
    files: {
      // Compiled to require() calls: Node 20.19+ loads the ESM packages through require(esm).
      'src/main.ts': `import { createCluster } from '@pgpulse/core';

async function main(): Promise<void> {
  const cluster = createCluster({ primary: process.env.PRIMARY_URL!, replicas: [process.env.REPLICA_URL!] });
  await cluster.ready();
  await cluster.pool.query('CREATE TABLE IF NOT EXISTS cjs_notes (id int PRIMARY KEY, body text NOT NULL)');
  ${WRITE_READ_NOTE}
  await cluster.context(async () => {
    await cluster.pool.query("INSERT INTO cjs_notes VALUES (1, 'hello')");
    const { rows } = await cluster.pool.query<{ body: string }>('SELECT body FROM cjs_notes WHERE id = 1');
    if (rows[0]?.body !== 'hello') throw new Error('read did not see the write');
  });
  await cluster.close();
  console.log('commonjs: write + read ok');
}
void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
`,
      'check.cjs': `const core = require('@pgpulse/core');
for (const name of ['@pgpulse/web', '@pgpulse/drizzle', '@pgpulse/prisma', '@pgpulse/typeorm', '@pgpulse/sandbox']) {
  try { require.resolve(name); } catch { continue; }
  require(name);
}
if (typeof core.createCluster !== 'function') throw new Error('require(@pgpulse/core) has no createCluster');
`,
    },
  },
];

process.stdout.write(
  '\nfresh projects (npm install of the tarballs, tsc --strict, a write and a read)\n',
);
for (const project of projects) {
  const dir = join(work, project.name);
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `check-${project.name}`, private: true, type: project.type }, null, 2),
  );
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify(
      { compilerOptions: { ...STRICT, ...project.tsconfig }, include: ['src'] },
      null,
      2,
    ),
  );
  for (const [path, text] of Object.entries(project.files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  check(`${project.name}: install, strict tsc, write + read`, () => {
    const specs = [
      ...project.packages.map((p) => tarballs.get(p)!),
      ...project.deps.map((d) => `${d}@${VERSIONS[d]}`),
    ];
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs], dir);
    project.prepare?.(dir);
    run('npx', ['tsc', '-p', '.'], dir);
    const out = run('node', ['dist/main.js'], dir, env);
    if (!out.includes('write + read ok')) throw new Error(`unexpected output: ${out}`);
    if (existsSync(join(dir, 'check.cjs'))) run('node', ['check.cjs'], dir);
    return undefined;
  });
}

// 4. The CLI alone, for doctor: no ORM, no embedded PostgreSQL.
check('cli-only: npm install pgpulse, doctor answers, no ORM installed', () => {
  const dir = join(work, 'cli-only');
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'check-cli', private: true }));
  run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      tarballs.get('cli')!,
      tarballs.get('core')!,
      `@opentelemetry/api@${VERSIONS['@opentelemetry/api']}`,
    ],
    dir,
  );
  const unwanted = [
    'drizzle-orm',
    'typeorm',
    'prisma',
    '@prisma/client',
    'reflect-metadata',
    '@pgpulse/sandbox',
  ].filter((name) => existsSync(join(dir, 'node_modules', name)));
  if (unwanted.length > 0) throw new Error(`installed although not needed: ${unwanted.join(', ')}`);
  const out = run(
    'npx',
    ['pgpulse', 'doctor', '--json', cluster.primary.url, cluster.replicas[0]!.url],
    dir,
  );
  if (!out.includes('"primary"')) throw new Error(`doctor printed: ${out}`);
  if (out.includes(new URL(cluster.primary.url).password))
    throw new Error('doctor printed the password');
  let demo = '';
  try {
    run('npx', ['pgpulse', 'demo', '--duration', '6'], dir);
  } catch (error) {
    demo = String((error as Error).message);
  }
  if (!demo.includes('npm install'))
    throw new Error(`demo without its packages did not say what to install: ${demo}`);
  return `node_modules ${kb(duBytes(join(dir, 'node_modules')))}`;
});

await cluster.stop();
if (failures.length === 0) rmSync(work, { recursive: true, force: true });
else process.stdout.write(`\nkept ${work} for a look\n`);
process.stdout.write(
  `\n${failures.length === 0 ? 'all package checks passed' : `FAILED: ${failures.join('; ')}`}\n`,
);
process.exit(failures.length === 0 ? 0 : 1);
