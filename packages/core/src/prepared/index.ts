export { type PreparedFigures, PreparedStatements, type PreparedStats } from './statement-cache.js';
