export { type QuerySummary, summarize } from './summary.js';
export { Telemetry, type TelemetryOptions } from './telemetry.js';
