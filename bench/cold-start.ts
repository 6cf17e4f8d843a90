// A script's cold start, pgpulse against plain pg (issue #22 item 1): a fresh Node process
// imports the library, builds its pool (pgpulse: the sandbox's primary and two replicas), runs
// one SELECT and never calls end(). Measured per run, from the process's own start: the first
// answer, the connections it holds on every node right after that answer, and when the process
// exited by itself; and, to say where the time goes, when the import was done (the rest is
// building the pool and the first statement). pg.Pool runs with its defaults (idleTimeoutMillis 10 s, no
// allowExitOnIdle); pgpulse with its own (exitOnIdle). Runs alternate pg, pgpulse, pgpulse, pg.
// Run: pnpm bench:cold-start [runs per side, default 6]
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCluster } from '@pgpulse/sandbox';
import pg from 'pg';

const runs = Number(process.argv[2] ?? 6);
const root = fileURLToPath(new URL('..', import.meta.url));
// The published shape: built JavaScript (one bundled module, scripts/bundle-core.ts), as
// `import '@pgpulse/core'` loads it from npm.
execFileSync(`${root}node_modules/.bin/tsc`, ['-b'], { cwd: `${root}packages/core` });
execFileSync(`${root}node_modules/.bin/tsx`, [`${root}scripts/bundle-core.ts`], { cwd: root });
const coreEntry = `${root}packages/core/dist/index.js`;
const pgEntry = import.meta.resolve('pg');

const sandbox = await startCluster({ replicas: 2 });
const nodes = [sandbox.primary.url, ...sandbox.replicas.map((r) => r.url)];

/**
 * The child: prints `imported <ms since its start>` once the library is loaded and
 * `answered <ms>` after its first answer, then idles.
 */
function childScript(side: 'pg' | 'pgpulse', app: string): string {
  const answered = `console.log('answered ' + (performance.now()).toFixed(1))`;
  const imported = `console.log('imported ' + (performance.now()).toFixed(1))`;
  if (side === 'pg') {
    return `const pg = (await import(${JSON.stringify(pgEntry)})).default;
${imported};
const pool = new pg.Pool({ connectionString: ${JSON.stringify(sandbox.primary.url)}, application_name: '${app}' });
await pool.query('SELECT 1');
${answered};`;
  }
  return `const { createCluster } = await import(${JSON.stringify(coreEntry)});
${imported};
const cluster = createCluster({ primary: ${JSON.stringify(sandbox.primary.url)}, replicas: ${JSON.stringify(sandbox.replicas.map((r) => r.url))}, applicationName: '${app}' });
await cluster.pool.query('SELECT 1');
${answered};`;
}

async function connectionsOf(app: string): Promise<number> {
  let total = 0;
  for (const url of nodes) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE $1',
      [`${app}%`],
    );
    total += rows[0]?.n ?? 0;
    await client.end();
  }
  return total;
}

interface Run {
  readonly importedMs: number;
  readonly firstAnswerMs: number;
  readonly connections: number;
  readonly exitMs: number;
}

async function run(side: 'pg' | 'pgpulse', i: number): Promise<Run> {
  const app = `coldstart-${side}-${i}-${process.pid}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', childScript(side, app)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const started = performance.now();
  const exited = new Promise<number>((resolve) =>
    child.on('exit', () => resolve(performance.now())),
  );
  let importedMs = Number.NaN;
  const firstAnswerMs = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const imported = /imported ([\d.]+)/.exec(out);
      if (imported) importedMs = Number(imported[1]);
      const match = /answered ([\d.]+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.on('exit', (code) =>
      reject(new Error(`${side} child exited (${code}) before answering`)),
    );
  });
  const connections = await connectionsOf(app);
  // pg.Pool's idle timeout is 10 s; give either side twice that before calling it a hang.
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const exitAt = await exited;
  clearTimeout(timer);
  return { importedMs, firstAnswerMs, connections, exitMs: exitAt - started };
}

const results: Record<'pg' | 'pgpulse', Run[]> = { pg: [], pgpulse: [] };
for (let i = 0; i < runs; i++) {
  const order: ('pg' | 'pgpulse')[] = i % 2 === 0 ? ['pg', 'pgpulse'] : ['pgpulse', 'pg'];
  for (const side of order) results[side].push(await run(side, i));
}
await sandbox.stop();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summary = (side: 'pg' | 'pgpulse') => {
  const r = results[side];
  return {
    importedMs: median(r.map((x) => x.importedMs)),
    firstStatementMs: median(r.map((x) => x.firstAnswerMs - x.importedMs)),
    firstAnswerMs: median(r.map((x) => x.firstAnswerMs)),
    connections: Math.max(...r.map((x) => x.connections)),
    exitMs: median(r.map((x) => x.exitMs)),
    maxExitMs: Math.max(...r.map((x) => x.exitMs)),
  };
};
const a = summary('pg');
const b = summary('pgpulse');
const row = (name: string, s: ReturnType<typeof summary>) =>
  `${name.padEnd(8)} first answer median ${s.firstAnswerMs.toFixed(0)} ms (imported at ${s.importedMs.toFixed(0)} ms, then ${s.firstStatementMs.toFixed(0)} ms to the answer), connections (max) ${s.connections}, exit median ${(s.exitMs / 1000).toFixed(2)} s (max ${(s.maxExitMs / 1000).toFixed(2)} s)`;
console.log(`cold start over ${runs} runs per side (1 primary + 2 replicas for pgpulse):`);
console.log(row('pg', a));
console.log(row('pgpulse', b));
console.log(
  `pgpulse - pg first answer: ${(b.firstAnswerMs - a.firstAnswerMs).toFixed(0)} ms (goal ≤ 100); connections ${b.connections} (goal ≤ 2); exit ${(b.exitMs / 1000).toFixed(2)} s vs pg's ${(a.exitMs / 1000).toFixed(2)} s`,
);
