export { type QuerySummary, summarize } from './summary.js';
export { type SlowStatement, Telemetry, type TelemetryOptions } from './telemetry.js';
