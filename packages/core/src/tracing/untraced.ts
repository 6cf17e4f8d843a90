import { type Context, context, createContextKey } from '@opentelemetry/api';

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
  const outer = active.getValue(OUTER) ?? active;
  return context.with(active.setValue(SUPPRESS_TRACING, true).setValue(OUTER, outer), fn);
}

/** The context untraced() was entered from: pgpulse's own spans (e.g. a captured plan) start there. */
export function outerContext(): Context {
  const active = context.active();
  return (active.getValue(OUTER) as Context | undefined) ?? active;
}
