import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplainError } from '../errors/index.js';
import { type ConnectionLease, loadParser, type QueryClient } from '../sql/index.js';
import { ExplainCapture } from './explain-capture.js';
import type {
  CapturedPlan,
  ExplainCaptureOptions,
  ExplainJob,
  ExplainJobInfo,
} from './explain-capture-types.js';
import { explainStatement, GENERIC_PLAN_VERSION, inReadOnlyTransaction } from './explain-runner.js';
import type { PlanFinding } from './plan-analyzer.js';
import { inspectStatement } from './statement.js';

let sandbox: SandboxCluster;
const pools = new Map<string, pg.Pool>();

beforeAll(async () => {
  await loadParser();
  sandbox = await startCluster({ replicas: 1 });
  await sandbox.query(
    'primary',
    `CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, amount numeric(10,2) NOT NULL,
       created_at timestamptz NOT NULL DEFAULT now());
     INSERT INTO orders (customer_id, amount)
       SELECT (g % 5000) + 1, (g % 1000) / 10.0 FROM generate_series(1, 200000) g;
     CREATE TABLE side_effects (n int);
     CREATE FUNCTION note_call() RETURNS int LANGUAGE plpgsql VOLATILE AS
       $$ BEGIN INSERT INTO side_effects VALUES (1); RETURN 1; END $$;
     ANALYZE orders;`,
  );
  await sandbox.waitForReplay();
  for (const name of ['primary', 'replica1']) {
    const pool = new pg.Pool({ connectionString: sandbox.node(name).url, max: 2 });
    // Idle clients report the server's shutdown at sandbox.stop(); that is expected here.
    pool.on('error', () => {});
    pools.set(name, pool);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all([...pools.values()].map((p) => p.end()));
  await sandbox?.stop();
});

interface Recorder {
  readonly statements: string[];
  readonly releases: (boolean | undefined)[];
  readonly connect: (node: string) => Promise<ConnectionLease>;
}

/** A connection provider over the sandbox's nodes that records every statement sent. */
function recorder(): Recorder {
  const statements: string[] = [];
  const releases: (boolean | undefined)[] = [];
  return {
    statements,
    releases,
    async connect(node) {
      const pool = pools.get(node);
      if (pool === undefined) throw new Error(`no node ${node}`);
      const client = await pool.connect();
      const recording: QueryClient = {
        query: (text, values) => {
          statements.push(text);
          return client.query(text, values);
        },
      };
      return {
        client: recording,
        release: (destroy) => {
          releases.push(destroy);
          client.release(destroy === true ? true : undefined);
        },
      };
    },
  };
}

interface Delivered {
  readonly job: ExplainJobInfo;
  readonly plan: CapturedPlan;
  readonly findings: readonly PlanFinding[];
}

function capture(options: Partial<ExplainCaptureOptions> = {}) {
  const rec = recorder();
  const delivered: Delivered[] = [];
  const errors: ExplainError[] = [];
  const explain = new ExplainCapture({
    connect: rec.connect,
    minIntervalMs: 0,
    onPlan: (job, plan, findings) => {
      delivered.push({ job, plan, findings });
    },
    onError: (_job, error) => {
      errors.push(error);
    },
    ...options,
  });
  return { explain, rec, delivered, errors };
}

const job = (sql: string, extra: Partial<ExplainJob> = {}): ExplainJob => ({
  sql,
  node: 'primary',
  fingerprint: `fp-${sql}`,
  ...extra,
});

async function rowsOfCustomer7(): Promise<unknown[]> {
  return sandbox.query(
    'primary',
    'SELECT id, amount::text, xmin::text FROM orders WHERE customer_id = 7 ORDER BY id',
  );
}

describe('ExplainCapture against the sandbox', () => {
  it('captures a plain EXPLAIN off the query path and flags the seq scan on customer_id', async () => {
    const { explain, rec, delivered } = capture();
    const sql = 'SELECT * FROM orders WHERE customer_id = 42';
    expect(explain.enqueue(job(sql, { kind: 'read', context: 'span-1' }))).toBe('queued');
    // enqueue returned before any connection was asked for.
    expect(rec.statements).toEqual([]);
    await explain.drain();
    expect(delivered).toHaveLength(1);
    const [{ job: info, plan, findings }] = delivered as [Delivered];
    expect(info).toEqual({
      sql,
      node: 'primary',
      fingerprint: `fp-${sql}`,
      kind: 'read',
      paramCount: 0,
      context: 'span-1',
    });
    expect(plan.mode).toBe('explain');
    const seq = findings.find((f) => f.kind === 'seq-scan');
    expect(seq).toMatchObject({ relation: 'orders', columns: ['customer_id'], estimated: true });
    expect(explain.get(`fp-${sql}`)).toBe(plan);
    expect(explain.stats()).toMatchObject({ accepted: 1, completed: 1, failed: 0, analyzed: 0 });
    expect(rec.statements[1]).toBe('BEGIN READ ONLY');
    expect(rec.statements).toContain('ROLLBACK');
    expect(rec.releases).toEqual([false]);
  });

  it('takes a generic plan of $n text without values, and masks bound values in plans', async () => {
    const { explain, delivered } = capture();
    explain.enqueue(job('SELECT * FROM orders WHERE customer_id = $1', { fingerprint: 'g' }));
    explain.enqueue(
      job('SELECT * FROM orders WHERE customer_id = $1', { fingerprint: 'p', params: [987_654] }),
    );
    await explain.drain();
    const generic = delivered.find((d) => d.job.fingerprint === 'g')!;
    const bound = delivered.find((d) => d.job.fingerprint === 'p')!;
    expect(generic.plan.mode).toBe('generic');
    expect(JSON.stringify(generic.plan.plan)).toContain('$1');
    expect(bound.plan.mode).toBe('explain');
    expect(bound.job.paramCount).toBe(1);
    expect(JSON.stringify(bound)).not.toContain('987654');
    expect(bound.findings.find((f) => f.kind === 'seq-scan')?.columns).toEqual(['customer_id']);
  });

  it('runs EXPLAIN ANALYZE for a provably read-only statement inside BEGIN READ ONLY ... ROLLBACK', async () => {
    const { explain, rec, delivered } = capture({ analyze: true, statementTimeoutMs: 4000 });
    explain.enqueue(job('SELECT * FROM orders WHERE customer_id = 42', { kind: 'read' }));
    await explain.drain();
    const [{ plan, findings }] = delivered as [Delivered];
    expect(plan.mode).toBe('analyze');
    expect(plan.plan.Plan['Actual Rows']).toBe(40);
    expect(findings.find((f) => f.kind === 'seq-scan')).toMatchObject({
      estimated: false,
      columns: ['customer_id'],
    });
    const begin = rec.statements.indexOf('BEGIN READ ONLY');
    const analyze = rec.statements.findIndex((s) => s.startsWith('EXPLAIN (ANALYZE'));
    const rollback = rec.statements.indexOf('ROLLBACK');
    expect(begin).toBeGreaterThanOrEqual(0);
    expect(rec.statements[begin + 1]).toContain("set_config('statement_timeout', $1, true)");
    expect(analyze).toBeGreaterThan(begin);
    expect(rollback).toBeGreaterThan(analyze);
    expect(explain.stats().analyzed).toBe(1);
  });

  it('never analyzes a write, even when the job claims it reads: plain EXPLAIN, not executed', async () => {
    const before = await rowsOfCustomer7();
    const { explain, rec, delivered } = capture({ analyze: true });
    const sql = 'UPDATE orders SET amount = amount + 1 WHERE customer_id = 7';
    explain.enqueue(job(sql, { kind: 'write', fingerprint: 'w1' }));
    explain.enqueue(job(sql, { kind: 'read', fingerprint: 'w2' }));
    explain.enqueue(job(`WITH x AS (${sql} RETURNING id) SELECT * FROM x`, { fingerprint: 'w3' }));
    await explain.drain();
    expect(delivered.map((d) => d.plan.mode)).toEqual(['explain', 'explain', 'explain']);
    expect(rec.statements.some((s) => s.includes('ANALYZE'))).toBe(false);
    expect(delivered[0]?.plan.plan.Plan['Actual Rows']).toBeUndefined();
    expect(delivered[0]?.findings.find((f) => f.kind === 'seq-scan')?.columns).toEqual([
      'customer_id',
    ]);
    expect(await rowsOfCustomer7()).toEqual(before);
  });

  it('does not analyze a read calling a volatile user function (catalog check)', async () => {
    const { explain, delivered } = capture({ analyze: true });
    explain.enqueue(job('SELECT note_call()', { kind: 'read' }));
    await explain.drain();
    expect(delivered[0]?.plan.mode).toBe('explain');
    expect(await sandbox.query('primary', 'SELECT count(*)::int AS n FROM side_effects')).toEqual([
      { n: 0 },
    ]);
  });

  it('captures on the node that ran the statement, including a hot standby', async () => {
    const { explain, delivered } = capture({ analyze: true });
    explain.enqueue(job('SELECT count(*) FROM orders WHERE amount > 50', { node: 'replica1' }));
    await explain.drain();
    expect(delivered[0]?.plan).toMatchObject({ node: 'replica1', mode: 'analyze' });
  });

  it('bounds its queue and counts what it drops', async () => {
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const rec = recorder();
    const explain = new ExplainCapture({
      queueSize: 2,
      minIntervalMs: 0,
      connect: async (node) => {
        await gate;
        return rec.connect(node);
      },
    });
    const outcomes = [1, 2, 3, 4, 5].map((n) => explain.enqueue(job(`SELECT ${n}`)));
    expect(outcomes).toEqual(['queued', 'queued', 'dropped', 'dropped', 'dropped']);
    expect(explain.stats()).toMatchObject({ queued: 2, dropped: 3, accepted: 2 });
    // Once the first job is taken, a slot frees up.
    await new Promise((resolve) => setImmediate(resolve));
    expect(explain.enqueue(job('SELECT 6'))).toBe('queued');
    open();
    await explain.drain();
    expect(explain.stats()).toMatchObject({ queued: 0, completed: 3, dropped: 3 });
  });

  it('captures a fingerprint at most once per minIntervalMs', async () => {
    let now = 1_000_000;
    const { explain } = capture({ minIntervalMs: 60_000, now: () => now });
    const j = job('SELECT * FROM orders WHERE customer_id = 1');
    expect(explain.enqueue(j)).toBe('queued');
    expect(explain.enqueue(j)).toBe('rate-limited');
    expect(explain.enqueue({ ...j, fingerprint: 'other' })).toBe('queued');
    now += 59_999;
    expect(explain.enqueue(j)).toBe('rate-limited');
    now += 1;
    expect(explain.enqueue(j)).toBe('queued');
    await explain.drain();
    expect(explain.stats()).toMatchObject({ rateLimited: 2, completed: 3 });
  });

  it('counts failures without throwing, and discards a connection after one', async () => {
    const { explain, rec, errors } = capture();
    explain.enqueue(job('SELECT * FROM no_such_table'));
    explain.enqueue(
      job('SELECT * FROM orders WHERE customer_id = $1', { params: ['secret-value'] }),
    );
    explain.enqueue(job('CREATE TABLE t (a int)'));
    explain.enqueue(job('SELECT 1; SELECT 2'));
    explain.enqueue(job('SELEC nonsense'));
    await explain.drain();
    expect(explain.stats()).toMatchObject({ failed: 2, skipped: 3, completed: 0 });
    expect(rec.releases).toEqual([true, true]);
    expect(errors[0]?.message).toMatch(/no_such_table/);
    expect(errors[1]?.sqlState).toBe('22P02');
    expect(errors[1]?.message).not.toContain('secret-value');
    expect(errors[1]?.cause).toBeUndefined();

    const broken = new ExplainCapture({
      connect: () => Promise.reject(new Error('down')),
      onError: () => {
        throw new Error('callback bug');
      },
      onPlan: () => {
        throw new Error('never called');
      },
    });
    expect(broken.enqueue(job('SELECT 1'))).toBe('queued');
    await broken.drain();
    expect(broken.stats().failed).toBe(1);
  });

  it('close() cancels queued jobs and refuses new ones', async () => {
    const { explain } = capture();
    explain.enqueue(job('SELECT 1'));
    explain.enqueue(job('SELECT 2'));
    await explain.close();
    expect(explain.enqueue(job('SELECT 3'))).toBe('closed');
    expect(explain.stats().cancelled).toBe(2);
  });

  it('keeps the latest plans up to maxResults', async () => {
    const { explain } = capture({ maxResults: 2 });
    for (const n of [1, 2, 3]) explain.enqueue(job(`SELECT ${n}`));
    await explain.drain();
    expect(explain.results().map((r) => r.fingerprint)).toEqual(['fp-SELECT 3', 'fp-SELECT 2']);
  });

  it('rejects bad options with the field named', () => {
    expect(() => new ExplainCapture({ connect: rec0, queueSize: 0 })).toThrow(/queueSize/);
    expect(() => new ExplainCapture({} as ExplainCaptureOptions)).toThrow(/connect/);
  });
});

const rec0 = recorder().connect;

describe('explain runner', () => {
  it('falls back to PREPARE + force_generic_plan before PostgreSQL 16 and deallocates', async () => {
    const client = await pools.get('primary')!.connect();
    try {
      const sql = 'SELECT * FROM orders o WHERE o.customer_id = $1 AND amount > $2';
      const outcome = await inReadOnlyTransaction(client, 5000, (cleanups) =>
        explainStatement(
          client,
          {
            sql,
            shape: inspectStatement(sql),
            analyze: true,
            serverVersion: GENERIC_PLAN_VERSION - 1,
          },
          cleanups,
        ),
      );
      expect(outcome.mode).toBe('generic-prepared');
      expect(JSON.stringify(outcome.result)).toContain('$1');
      const prepared = await client.query('SELECT count(*)::int AS n FROM pg_prepared_statements');
      expect(prepared.rows).toEqual([{ n: 0 }]);
      const mode = await client.query('SHOW plan_cache_mode');
      expect(mode.rows).toEqual([{ plan_cache_mode: 'auto' }]);
    } finally {
      client.release();
    }
  });

  it('rolls back and keeps the session usable after a failed EXPLAIN', async () => {
    const client = await pools.get('primary')!.connect();
    try {
      const sql = 'SELECT * FROM orders WHERE customer_id = $1';
      await expect(
        inReadOnlyTransaction(client, 5000, (cleanups) =>
          explainStatement(
            client,
            {
              sql,
              params: ['x'],
              shape: inspectStatement(sql),
              analyze: false,
              serverVersion: 180_000,
            },
            cleanups,
          ),
        ),
      ).rejects.toMatchObject({ code: '22P02' });
      const state = await client.query('SELECT 1 AS ok, current_setting($1) AS timeout', [
        'statement_timeout',
      ]);
      expect(state.rows).toEqual([{ ok: 1, timeout: '0' }]);
    } finally {
      client.release();
    }
  });
});
