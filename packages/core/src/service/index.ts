export {
  type DatabaseHealthReport,
  DatabaseOptimizationService,
  type DatabaseOptimizationServiceOptions,
  type IndexOptimization,
  type OptimizeIndexesOptions,
} from './optimization-service.js';
