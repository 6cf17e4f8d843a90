'use strict';
// Stands in for pg-pool's index.js: `new Pool(options)` builds a pgpulse cluster and returns its
// pg.Pool-compatible `cluster.pool`. Options that name a server (host, port, connectionString)
// get a cluster of that one server; the others run against the sandbox (primary + replicas).
const core = globalThis.__pgpulseSuite;
if (!core) throw new Error('pg-pool-suite: preload.mjs was not loaded (node --import)');

const sandbox = {
  primary: process.env.PGPULSE_SUITE_PRIMARY,
  replicas: JSON.parse(process.env.PGPULSE_SUITE_REPLICAS || '[]'),
};

function Pool(options, Client) {
  const given = { ...(options || {}) };
  if (Client) given.Client = Client;
  const ownServer = 'host' in given || 'port' in given || 'connectionString' in given;
  return core.createPoolFromPgOptions(given, ownServer ? {} : sandbox);
}

module.exports = Pool;
module.exports.default = Pool;
