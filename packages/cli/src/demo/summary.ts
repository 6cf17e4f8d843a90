/** The text summary printed at the end of `pgpulse demo` (the same content as `--json`). */
import type { DemoReport } from './report.js';
import { fmt, formatMs, type Styler } from './view.js';

export function renderSummary(report: DemoReport, s: Styler): string {
  const lines: string[] = [];
  const push = (text = '') => lines.push(text);
  const section = (title: string) => {
    push();
    push(s.bold(title));
  };
  const pct = (part: number, whole: number) =>
    whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : '-';

  push();
  push(
    `${s.bold('pgpulse demo summary')}: ${report.workload.seconds} s of workload, ${report.orms.join(' + ')}, ` +
      `${report.postgres} primary + ${report.routing.byNode.length - 1} synchronous replicas`,
  );
  for (const skipped of report.skippedOrms) {
    push(s.yellow(`  ${skipped.name} was skipped: ${skipped.reason}`));
  }

  section('Workload');
  push(
    s.dim(
      `  ${'ORM'.padEnd(9)} ${'requests'.padStart(9)} ${'reads'.padStart(9)} ${'writes'.padStart(8)} ${'acked'.padStart(8)} ${'failed'.padStart(7)} ${'errors'.padStart(7)}`,
    ),
  );
  const rows = Object.entries(report.workload.byOrm);
  for (const [name, t] of [...rows, ['total', report.workload.total] as const]) {
    if (!t) continue;
    push(
      `  ${name.padEnd(9)} ${fmt(t.requests).padStart(9)} ${fmt(t.reads).padStart(9)} ${fmt(t.writes).padStart(8)} ${fmt(t.acknowledged).padStart(8)} ${fmt(t.failedWrites).padStart(7)} ${fmt(t.errors).padStart(7)}`,
    );
  }
  push(s.dim(`  ${fmt(report.workload.requestsPerSec)} requests/s`));

  section('Routing (statements, as pgpulse counted them)');
  const { byRole, byNode, byReason } = report.routing;
  const reads = byRole.primary.reads + byRole.replica.reads;
  push(
    `  reads     replicas ${fmt(byRole.replica.reads)} (${pct(byRole.replica.reads, reads)})   primary ${fmt(byRole.primary.reads)} (${pct(byRole.primary.reads, reads)})`,
  );
  push(
    `  writes    primary ${fmt(byRole.primary.writes)}${byRole.replica.writes > 0 ? s.red(`   replicas ${fmt(byRole.replica.writes)}`) : '   replicas 0'}`,
  );
  push(
    `  by node   ${byNode.map((n) => `${n.name} ${fmt(n.reads)}r/${fmt(n.writes)}w${n.role === 'primary' ? ' (primary now)' : ''}`).join(' · ')}`,
  );
  const reasons = Object.entries(byReason).sort((a, b) => b[1] - a[1]);
  push(`  by reason ${reasons.map(([reason, n]) => `${reason} ${fmt(n)}`).join(' · ')}`);
  if ((byReason['no-eligible-replica'] ?? 0) > 0) {
    push(
      s.dim(
        '  (no-eligible-replica: reads sent to the primary because no replica had replayed the\n' +
          "   request's own write yet, or every replica was lagging: read-your-writes at work)",
      ),
    );
  }

  const pause = report.replayPause;
  if (pause) {
    section(`Replay paused on ${pause.node}`);
    push(
      `  out of rotation ${pause.leftRotationAfterMs !== undefined ? `${pause.leftRotationAfterMs} ms after the pause` : s.yellow('never (no lag event)')}` +
        `, ${pause.readsWhileOut ?? '-'} reads served while out`,
    );
    push(
      `  back in rotation ${pause.rejoinedAfterMs !== undefined ? `${pause.rejoinedAfterMs} ms after the resume` : s.yellow('not seen')}` +
        `, ${pause.readsAfterRejoin ?? '-'} reads served since`,
    );
  }

  const failover = report.failover;
  if (failover) {
    section(
      `Failover (${failover.oldPrimary} killed at ${(failover.killedAtMs / 1000).toFixed(1)} s)`,
    );
    // In the order they happened (the first write can beat the re-pointing by a few ms).
    const steps: [string, number | undefined, string][] = [
      ['detected', failover.detectedMs, failover.detectedReason ?? ''],
      [
        'promoted',
        failover.promotedMs,
        failover.promoted
          ? `${failover.promoted} (by ${failover.promotedBy}, timeline ${failover.timeline ?? '?'})`
          : '',
      ],
      [
        'first write',
        failover.firstWriteMs,
        failover.promoted ? `acknowledged by ${failover.promoted}` : '',
      ],
    ];
    if (failover.followers.length > 0 || failover.reattachedMs !== undefined) {
      steps.push([
        're-pointed',
        failover.reattachedMs,
        `${failover.followers.join(', ')} streams from ${failover.promoted ?? '?'} (the HA system's part)`,
      ]);
    }
    steps.sort((a, b) => (a[1] ?? Number.POSITIVE_INFINITY) - (b[1] ?? Number.POSITIVE_INFINITY));
    for (const [label, ms, text] of steps) {
      const at = ms !== undefined ? `+${fmt(ms)} ms`.padStart(10) : s.red('never'.padStart(10));
      push(`  ${label.padEnd(12)} ${at}  ${text}`);
    }
    push(
      s.dim(
        `  writes that failed meanwhile: ${fmt(report.writes.failed)} (not acknowledged; an app retries them)`,
      ),
    );
    if (failover.error) push(s.red(`  ${failover.error}`));
  }

  section(`Slow queries (pgpulse, threshold ${report.slowQueries.thresholdMs} ms)`);
  const scripted = report.slowQueries.scripted;
  if (scripted) {
    push(
      s.dim(
        `  scripted: the unindexed "biggest prints" scan via ${scripted.orm}, ${scripted.clientMs.map((ms) => `${ms} ms`).join(', ')}${scripted.error ? ` (${scripted.error})` : ''}`,
      ),
    );
  }
  const entries = report.slowQueries.entries;
  const withFindings = entries.filter((e) => e.findings.length > 0);
  const others = entries.filter((e) => e.findings.length === 0);
  if (entries.length === 0) push('  none');
  for (const entry of withFindings.slice(0, 3)) {
    push(`  ${s.cyan(truncate(entry.query, 96))}`);
    push(
      s.dim(
        `    ${entry.calls} calls, mean ${entry.meanMs} ms, max ${entry.maxMs} ms, on ${Object.keys(entry.nodes).join(', ')}`,
      ),
    );
    if (entry.plan) {
      push(s.dim(`    plan (${entry.plan.mode} on ${entry.plan.node}):`));
      for (const line of entry.plan.outline.slice(0, 8)) push(s.dim(`      ${line}`));
    }
    for (const finding of entry.findings) {
      push(`    ${finding.severity === 'info' ? '•' : s.yellow('⚠')} ${finding.message}`);
      if (finding.suggestion) push(`      → ${finding.suggestion}`);
    }
  }
  if (others.length > 0) {
    push(
      s.dim(
        `  also over ${report.slowQueries.thresholdMs} ms now and then, plans without findings (CPU contention on a 3-server laptop cluster):`,
      ),
    );
    for (const entry of others.slice(0, 3)) {
      push(
        s.dim(
          `    ${truncate(entry.query, 70).padEnd(70)} ${String(entry.calls).padStart(4)}× max ${entry.maxMs} ms`,
        ),
      );
    }
    if (others.length > 3) push(s.dim(`    … ${others.length - 3} more in --json`));
  }

  section('Query result cache (latest-tick reads of every ORM)');
  const cache = report.cache;
  push(
    `  hit ratio ${(cache.hitRatio * 100).toFixed(1)} %   hits ${fmt(cache.hits)}   misses ${fmt(cache.misses)}   bypasses ${fmt(cache.bypasses)}   invalidations ${fmt(cache.invalidations)}`,
  );

  section('Invariants');
  for (const check of report.invariants) {
    push(`  ${check.ok ? s.green('✓') : s.red('✗')} ${check.name.padEnd(30)} ${check.detail}`);
  }
  for (const check of report.observations) {
    push(
      `  ${check.ok ? s.green('✓') : s.yellow('·')} ${check.name.padEnd(30)} ${s.dim(truncate(check.detail, 66))}`,
    );
  }
  if (report.workload.errorSamples.length > 0) {
    push(s.dim('  first errors:'));
    for (const e of report.workload.errorSamples.slice(0, 3)) {
      push(
        s.dim(`    ${(e.atMs / 1000).toFixed(1)}s ${e.orm} ${e.op}: ${truncate(e.message, 72)}`),
      );
    }
  }
  push();
  push(
    report.ok
      ? s.green(s.bold(`OK: 0 stale reads, 0 lost writes (${formatMs(report.wallMs)} in all)`))
      : s.red(s.bold('FAILED: an invariant was broken (see above)')),
  );
  return `${lines.join('\n')}\n`;
}

function truncate(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
