export { ConsistencyGuard } from './guard.js';
