export { ConsistencyGuard } from './guard.js';
export { decodeToken, encodeToken, type TokenPositions } from './token.js';
