import { context, createContextKey } from '@opentelemetry/api';

// The key @opentelemetry/core's suppressTracing() sets; the SDK's tracers (and so
// @opentelemetry/instrumentation-pg) start no span under it. Re-created here because core
// depends on @opentelemetry/api only: createContextKey keys by description.
const SUPPRESS_TRACING = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

/**
 * Runs `fn` (and every callback its async work schedules) with tracing suppressed: pgpulse's
 * own round trips — health probes, connects and pre-pings, session resets, EXPLAIN capture,
 * catalog reads — never appear as spans in the user's traces, whatever instrumentation of pg
 * is installed. Without a context manager registered this is a plain call.
 */
export function untraced<T>(fn: () => T): T {
  return context.with(context.active().setValue(SUPPRESS_TRACING, true), fn);
}
