import type { Context } from '@opentelemetry/api';
import { otelApi, otelRegistered } from './otel.js';

// The key @opentelemetry/core's suppressTracing() sets; the SDK's tracers (and so
// @opentelemetry/instrumentation-pg) start no span under it. Re-created here because core
// depends on @opentelemetry/api only: createContextKey keys by description.
const SUPPRESS_TRACING = 'OpenTelemetry SDK Context Key SUPPRESS_TRACING';
const OUTER = 'pgpulse context outside untraced()';

let keys: { suppress: symbol; outer: symbol } | undefined;
function contextKeys(): { suppress: symbol; outer: symbol } {
  const api = otelApi();
  keys ??= { suppress: api.createContextKey(SUPPRESS_TRACING), outer: api.createContextKey(OUTER) };
  return keys;
}

/**
 * Runs `fn` (and every callback its async work schedules) with tracing suppressed: pgpulse's
 * own round trips — health probes, connects and pre-pings, session resets, EXPLAIN capture,
 * catalog reads — never appear as spans in the user's traces, whatever instrumentation of pg
 * is installed. Without a context manager registered this is a plain call (and the API is not
 * loaded: without one, a context set here would reach no callback anyway).
 */
export function untraced<T>(fn: () => T): T;
/** `fn(arg)`, untraced: a function made once rather than a closure per call (the acquire). */
export function untraced<A, T>(fn: (arg: A) => T, arg: A): T;
export function untraced<A, T>(fn: (arg?: A) => T, arg?: A): T {
  if (!otelRegistered('context')) return fn(arg);
  const { context } = otelApi();
  const active = context.active();
  // Every statement's acquire comes through here, nearly always from the same context (the
  // root one, or outside any span): its suppressed form is derived once.
  if (active !== lastActive || lastSuppressed === undefined) {
    const { suppress, outer: outerKey } = contextKeys();
    const outer = active.getValue(outerKey) ?? active;
    lastSuppressed = active.setValue(suppress, true).setValue(outerKey, outer);
    lastActive = active;
  }
  return context.with(lastSuppressed, fn, undefined, arg);
}

let lastActive: Context | undefined;
let lastSuppressed: Context | undefined;

/** The context untraced() was entered from: pgpulse's own spans (e.g. a captured plan) start there. */
export function outerContext(): Context {
  const { context } = otelApi();
  const active = context.active();
  return (active.getValue(contextKeys().outer) as Context | undefined) ?? active;
}
