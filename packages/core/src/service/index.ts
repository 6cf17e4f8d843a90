export {
  type DatabaseHealthReport,
  DatabaseOptimizationService,
  type DatabaseOptimizationServiceOptions,
  type HealthReportOptions,
  type IndexOptimization,
  type OptimizeIndexesOptions,
  type ReadOptions,
} from './optimization-service.js';
