export { type QuerySummary, summarize } from './summary.js';
export {
  registeredMeterProvider,
  type SlowStatement,
  Telemetry,
  type TelemetryOptions,
} from './telemetry.js';
