export {
  type DatabaseHealthReport,
  DatabaseOptimizationService,
  type DatabaseOptimizationServiceOptions,
  type HealthReportOptions,
  type IndexOptimization,
  type OptimizeIndexesOptions,
} from './optimization-service.js';
