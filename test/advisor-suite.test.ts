import { advisorSuite } from './advisor/suite.js';

// The estimate path: the embedded PostgreSQL has no HypoPG (see test/hypopg/ for the other).
advisorSuite('estimate');
