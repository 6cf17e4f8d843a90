import { type Context, context, createContextKey, ROOT_CONTEXT } from '@opentelemetry/api';

// The key @opentelemetry/core's suppressTracing() sets; the SDK's tracers (and so
// @opentelemetry/instrumentation-pg) start no span under it. Re-created here because core
// depends on @opentelemetry/api only: createContextKey keys by description.
const SUPPRESS_TRACING = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');
const OUTER = createContextKey('pgpulse context outside untraced()');

/**
 * Runs `fn` (and every callback its async work schedules) with tracing suppressed: pgpulse's
 * own round trips — health probes, connects and pre-pings, session resets, EXPLAIN capture,
 * catalog reads — never appear as spans in the user's traces, whatever instrumentation of pg
 * is installed. Without a context manager registered this is a plain call.
 */
export function untraced<T>(fn: () => T): T {
  const active = context.active();
  // Every statement's acquire comes through here, nearly always from the same context (the
  // root one, without an SDK or outside any span): its suppressed form is derived once.
  if (active !== lastActive) {
    const outer = active.getValue(OUTER) ?? active;
    lastSuppressed = active.setValue(SUPPRESS_TRACING, true).setValue(OUTER, outer);
    lastActive = active;
  }
  return context.with(lastSuppressed, fn);
}

let lastActive: Context | undefined;
let lastSuppressed: Context = ROOT_CONTEXT;

/** The context untraced() was entered from: pgpulse's own spans (e.g. a captured plan) start there. */
export function outerContext(): Context {
  const active = context.active();
  return (active.getValue(OUTER) as Context | undefined) ?? active;
}
