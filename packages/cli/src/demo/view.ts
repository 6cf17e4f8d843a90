/**
 * The live terminal view. On a TTY the node table is redrawn in place (ANSI) a few times a
 * second, with each event printed above it as a permanent line. Without a TTY the events are
 * printed as lines and the table every few seconds; in `--json` mode only the events go to
 * stderr and stdout stays for the final JSON object.
 */
import type { NodeRow } from './metrics.js';

export type ViewMode = 'tty' | 'lines' | 'json';

export interface LiveState {
  readonly elapsedMs: number;
  readonly durationMs: number;
  readonly nodes: readonly NodeRow[];
  /** Requests per second per ORM. */
  readonly orms: readonly { readonly name: string; readonly perSec: number }[];
  readonly staleReads: number;
  readonly acknowledged: number;
  readonly failedWrites: number;
  /** The query result cache's hits / (hits + misses) so far, and its hits. */
  readonly cache: { readonly hitRatio: number; readonly hits: number };
}

const ESC = '\u001b[';
const LINES_PANEL_EVERY_MS = 5_000;

export class Styler {
  constructor(readonly enabled: boolean) {}
  private wrap(code: string, text: string): string {
    return this.enabled ? `${ESC}${code}m${text}${ESC}0m` : text;
  }
  bold = (t: string) => this.wrap('1', t);
  dim = (t: string) => this.wrap('2', t);
  red = (t: string) => this.wrap('31', t);
  green = (t: string) => this.wrap('32', t);
  yellow = (t: string) => this.wrap('33', t);
  cyan = (t: string) => this.wrap('36', t);
  magenta = (t: string) => this.wrap('35', t);
}

export class LiveView {
  readonly style: Styler;
  private panelLines = 0;
  private last: LiveState | undefined;
  private lastPanelAt = 0;
  private progressShown = -1;

  constructor(
    readonly mode: ViewMode,
    private readonly out: NodeJS.WritableStream,
    private readonly err: NodeJS.WritableStream,
    color: boolean,
  ) {
    this.style = new Styler(color && mode === 'tty');
    if (mode === 'tty') this.out.write(`${ESC}?25l`); // hide the cursor while redrawing
  }

  /** A line of text above everything (start-up messages). */
  line(text: string): void {
    if (this.mode === 'json') return;
    this.clearPanel();
    this.out.write(`${text}\n`);
    this.redrawPanel();
  }

  /** A progress bar, redrawn in place on a TTY, printed at a few milestones otherwise. */
  progress(label: string, done: number, total: number, suffix = ''): void {
    if (this.mode === 'json') return;
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const text = `${label} ${bar(fraction, 30)} ${Math.round(fraction * 100)
      .toString()
      .padStart(3)}% ${suffix}`;
    if (this.mode === 'tty') {
      this.out.write(`\r${ESC}2K${text}${fraction >= 1 ? '\n' : ''}`);
      return;
    }
    const milestone = Math.floor(fraction * 4);
    if (milestone > this.progressShown) {
      this.progressShown = milestone;
      this.out.write(`${text}\n`);
      if (fraction >= 1) this.progressShown = -1;
    }
  }

  /** One event, stamped with the run's clock. */
  event(atMs: number, kind: string, text: string): void {
    const s = this.style;
    const stamp = `${(atMs / 1000).toFixed(1).padStart(5)}s`;
    const tag = kind.padEnd(9);
    const colored =
      kind === 'fault'
        ? s.magenta(tag)
        : kind === 'error' || kind === 'node-down' || kind === 'stale'
          ? s.red(tag)
          : kind === 'failover' || kind === 'ha'
            ? s.cyan(tag)
            : kind === 'lag' || kind === 'breaker'
              ? s.yellow(tag)
              : s.dim(tag);
    const line = `  ${s.dim(stamp)}  ${colored} ${text}`;
    if (this.mode === 'json') {
      this.err.write(`${stamp}  ${tag} ${text}\n`);
      return;
    }
    this.clearPanel();
    this.out.write(`${line}\n`);
    this.redrawPanel();
  }

  update(state: LiveState): void {
    this.last = state;
    if (this.mode === 'tty') {
      this.clearPanel();
      this.redrawPanel();
    } else if (
      this.mode === 'lines' &&
      state.elapsedMs - this.lastPanelAt >= LINES_PANEL_EVERY_MS
    ) {
      this.lastPanelAt = state.elapsedMs;
      this.out.write(`${this.panel(state).join('\n')}\n`);
    }
  }

  /** Leaves the last table on screen and gives the cursor back. */
  stop(): void {
    if (this.mode !== 'tty') return;
    this.panelLines = 0;
    this.last = undefined;
    this.out.write(`${ESC}?25h`);
  }

  private clearPanel(): void {
    if (this.mode !== 'tty' || this.panelLines === 0) return;
    this.out.write(`${ESC}${this.panelLines}F${ESC}0J`);
    this.panelLines = 0;
  }

  private redrawPanel(): void {
    if (this.mode !== 'tty' || !this.last) return;
    const lines = this.panel(this.last);
    this.out.write(`${lines.join('\n')}\n`);
    this.panelLines = lines.length;
  }

  private panel(state: LiveState): string[] {
    const s = this.style;
    const fraction = state.durationMs > 0 ? state.elapsedMs / state.durationMs : 0;
    const clock = `${(state.elapsedMs / 1000).toFixed(1)}s / ${Math.round(state.durationMs / 1000)}s`;
    const orms = state.orms.map((o) => `${o.name} ${fmt(o.perSec)}`).join(' · ');
    const stale = state.staleReads === 0 ? s.green('0') : s.red(fmt(state.staleReads));
    const lines = [
      '',
      ` ${s.bold('pgpulse demo')}  ${clock.padEnd(12)} ${bar(Math.min(1, fraction), 24)}   requests/s: ${orms}`,
      ` stale reads ${stale} · acknowledged writes ${fmt(state.acknowledged)} · failed writes ${fmt(state.failedWrites)} · cache hit ratio ${Math.round(state.cache.hitRatio * 100)} % (${fmt(state.cache.hits)} hits)`,
      s.dim(
        ` ${'node'.padEnd(10)} ${'role'.padEnd(8)} ${'state'.padEnd(8)} ${'reads/s'.padStart(8)} ${'writes/s'.padStart(8)} ${'lag'.padStart(8)} ${'pool'.padStart(7)}  breaker`,
      ),
    ];
    for (const node of state.nodes) {
      const stateText = !node.up
        ? s.red('down'.padEnd(8))
        : node.fenced
          ? s.red('fenced'.padEnd(8))
          : node.lagging
            ? s.yellow('lagging'.padEnd(8))
            : s.green('up'.padEnd(8));
      const lag = node.role === 'primary' || node.lagMs === undefined ? '-' : formatMs(node.lagMs);
      const breaker =
        node.breaker === 'closed'
          ? s.green(node.breaker)
          : node.breaker === 'open'
            ? s.red(node.breaker)
            : s.yellow(node.breaker);
      const role = node.role === 'primary' ? s.bold(node.role.padEnd(8)) : node.role.padEnd(8);
      lines.push(
        ` ${node.name.padEnd(10)} ${role} ${stateText} ${fmt(node.readsPerSec).padStart(8)} ${fmt(node.writesPerSec).padStart(8)} ${lag.padStart(8)} ${`${node.poolInUse}/${node.poolMax}`.padStart(7)}  ${breaker}`,
      );
    }
    return lines;
  }
}

export function bar(fraction: number, width: number): string {
  const full = Math.round(fraction * width);
  return `${'█'.repeat(full)}${'░'.repeat(width - full)}`;
}

export function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}
