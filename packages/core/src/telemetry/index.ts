export { type QuerySummary, summarize } from './summary.js';
export {
  registeredMeterProvider,
  Telemetry,
  type TelemetryOptions,
} from './telemetry.js';
