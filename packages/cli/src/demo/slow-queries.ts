/**
 * What pgpulse reports about slow statements, from `cluster.slowQueries()`: the fingerprint's
 * statistics, the EXPLAIN plan pgpulse captured off the query path, and its findings. The demo
 * only reads it; it never runs EXPLAIN itself.
 */
import type { Cluster } from '@pgpulse/core';

type CoreReport = ReturnType<Cluster['slowQueries']>;
type CoreEntry = CoreReport['queries'][number];

export interface SlowFinding {
  readonly kind: string;
  readonly severity: string;
  readonly message: string;
  readonly suggestion: string;
}

export interface SlowQueryView {
  readonly fingerprint: string;
  /** Normalized text: literals are `$n`. */
  readonly query: string;
  readonly calls: number;
  readonly meanMs: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  /** Calls per node name. */
  readonly nodes: Readonly<Record<string, number>>;
  /** The captured plan's top node, where it was explained, and how (EXPLAIN or ANALYZE). */
  readonly plan?: {
    readonly node: string;
    readonly mode: string;
    readonly top: string;
    readonly totalCost: number | undefined;
    /** The plan nodes, one line each, indented by depth. */
    readonly outline: readonly string[];
  };
  readonly findings: readonly SlowFinding[];
}

export interface SlowQueryReport {
  readonly thresholdMs: number;
  readonly entries: readonly SlowQueryView[];
  /** The EXPLAIN queue's counters (accepted, dropped, rate-limited, completed, failed). */
  readonly explain: CoreReport['explain'];
}

/** Reads pgpulse's slow-query log now, statements with findings first. */
export function readSlowQueries(cluster: Cluster): SlowQueryReport {
  const report = cluster.slowQueries();
  const entries = report.queries.map(toView);
  entries.sort(
    (a, b) => b.findings.length - a.findings.length || b.meanMs * b.calls - a.meanMs * a.calls,
  );
  return { thresholdMs: report.thresholdMs, entries, explain: report.explain };
}

/**
 * Polls until an entry whose text matches `pattern` has a captured plan (EXPLAIN runs off the
 * query path, so it lands a little after the statement), or `timeoutMs` passes.
 */
export async function waitForPlan(
  cluster: Cluster,
  pattern: RegExp,
  timeoutMs: number,
): Promise<SlowQueryReport> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const report = readSlowQueries(cluster);
    const planned = report.entries.some((e) => pattern.test(e.query) && e.plan !== undefined);
    if (planned || performance.now() > deadline) return report;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function toView(entry: CoreEntry): SlowQueryView {
  const captured = entry.plan;
  return {
    fingerprint: entry.fingerprint,
    query: entry.query,
    calls: entry.calls,
    meanMs: round(entry.meanMs),
    p95Ms: round(entry.p95Ms),
    maxMs: round(entry.maxMs),
    nodes: entry.nodes,
    ...(captured
      ? {
          plan: {
            node: captured.node,
            mode: captured.mode,
            top: captured.plan.Plan['Node Type'],
            totalCost: captured.plan.Plan['Total Cost'],
            outline: outline(captured.plan.Plan),
          },
        }
      : {}),
    findings: (captured?.findings ?? []).map((f) => ({
      kind: f.kind,
      severity: f.severity,
      message: f.message,
      suggestion: f.suggestion,
    })),
  };
}

interface OutlineNode {
  readonly 'Node Type': string;
  readonly 'Relation Name'?: string;
  readonly 'Index Name'?: string;
  readonly Filter?: unknown;
  readonly 'Sort Key'?: unknown;
  readonly Plans?: readonly unknown[];
}

/** `Limit > Sort (ts DESC) > Seq Scan on market_data (volume >= $1)`, one node per line. */
function outline(root: OutlineNode, depth = 0, lines: string[] = []): string[] {
  let text = root['Node Type'];
  if (root['Relation Name']) text += ` on ${root['Relation Name']}`;
  if (root['Index Name']) text += ` using ${root['Index Name']}`;
  if (typeof root.Filter === 'string') text += `  filter: ${root.Filter}`;
  if (Array.isArray(root['Sort Key'])) text += `  key: ${root['Sort Key'].join(', ')}`;
  lines.push(`${'  '.repeat(depth)}${depth > 0 ? '-> ' : ''}${text}`);
  for (const child of root.Plans ?? []) {
    if (child && typeof child === 'object' && 'Node Type' in child) {
      outline(child as OutlineNode, depth + 1, lines);
    }
  }
  return lines;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
