// The one piece of OpenTelemetry every layer needs: running pgpulse's own round trips with
// tracing suppressed. Kept apart from telemetry/, which observes routed statements and so sits
// above routing: pool, health and failover use this without importing routing.
export { otelApi, otelApiLoaded, otelRegistered } from './otel.js';
export { outerContext, untraced } from './untraced.js';
