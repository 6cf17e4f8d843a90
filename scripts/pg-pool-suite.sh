#!/usr/bin/env bash
# Runs node-postgres's own pg-pool test suite, unmodified, against pgpulse's cluster.pool.
#   bash scripts/pg-pool-suite.sh <pg-pool package dir> [test file names...]
# The suite source (packages/pg-pool of node-postgres at pg-pool@3.14.0) is not kept in this
# repository: give its directory. It is copied into a temporary directory, its index.js is
# replaced by a shim (scripts/pg-pool-suite/shim.cjs) and mocha plus the suite's helpers are
# installed there with npm. Each test file runs in its own process against one sandbox cluster
# (PGPULSE_SUITE_REPLICAS_COUNT replicas; default 0: a cluster of the one server, as pg-pool
# is tested; with replicas, max and the figures are per node). Prints per-file and total counts.
# PGPULSE_SUITE_BASELINE=1 runs pg-pool itself the same way, against the sandbox's primary.
set -euo pipefail
SRC=${1:?usage: pg-pool-suite.sh <pg-pool package dir> [files...]}
shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d -t pgpulse-pg-pool-suite.XXXXXX)
SANDBOX_PID=
cleanup() {
  if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; wait "$SANDBOX_PID" 2>/dev/null || true; fi
  if [ "${PGPULSE_SUITE_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

cp -r "$SRC/test" "$WORK/test"
if [ "${PGPULSE_SUITE_BASELINE:-0}" = 1 ]; then
  # The yardstick: pg-pool itself, against the sandbox's primary, through the same harness.
  cp "$SRC/index.js" "$WORK/index.js"
else
  cp "$ROOT/scripts/pg-pool-suite/shim.cjs" "$WORK/index.js"
fi
echo '{"name":"pg-pool-suite-shim","private":true}' > "$WORK/package.json"
# pg-cursor: submittable.js requires it (its one test is disabled in pg-pool itself: pending).
(cd "$WORK" && npm install --no-audit --no-fund --silent --legacy-peer-deps mocha@11.7.5 expect.js@0.3.1 co@4.6.0 bluebird@3.7.2 lodash@4.17.21 pg-cursor@2.22.1 >/dev/null)
# The suite patches require('pg').Client.prototype: it must be the very module pgpulse uses.
rm -rf "$WORK/node_modules/pg"
ln -s "$(cd "$ROOT/packages/core" && node -e "console.log(require('path').dirname(require.resolve('pg/package.json')))")" "$WORK/node_modules/pg"
ln -s "$ROOT/node_modules/tsx" "$WORK/node_modules/tsx"

"$ROOT/node_modules/.bin/tsx" "$ROOT/packages/sandbox/src/cli.ts" --json --replicas "${PGPULSE_SUITE_REPLICAS_COUNT:-0}" > "$WORK/sandbox.json" &
SANDBOX_PID=$!
for _ in $(seq 1 300); do [ -s "$WORK/sandbox.json" ] && break; sleep 0.1; done
export PGPULSE_SUITE_PRIMARY=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$WORK/sandbox.json','utf8')).primary)")
export PGPULSE_SUITE_REPLICAS=$(node -e "console.log(JSON.stringify(JSON.parse(require('fs').readFileSync('$WORK/sandbox.json','utf8')).replicas))")
# Built (bundled) JavaScript, not the TypeScript sources through tsx: two tests fork a child and give it
# 2 s, which transpiling pgpulse at start-up can exceed on a loaded machine.
(cd "$ROOT/packages/core" && "$ROOT/node_modules/.bin/tsc" -b && "$ROOT/node_modules/.bin/tsx" ../../scripts/bundle-core.ts >/dev/null)
export PGPULSE_CORE_ENTRY="$ROOT/packages/core/dist/index.js"
if [ "${PGPULSE_SUITE_BASELINE:-0}" = 1 ]; then
  # pg reads the server from PG* variables; the sandbox's primary URL names them all.
  eval "$(node -e "const u=new URL(process.env.PGPULSE_SUITE_PRIMARY);for(const [k,v] of [['PGHOST',u.hostname],['PGPORT',u.port],['PGUSER',decodeURIComponent(u.username)],['PGPASSWORD',decodeURIComponent(u.password)],['PGDATABASE',u.pathname.slice(1)]])console.log('export '+k+'='+JSON.stringify(v))")"
else
  export NODE_OPTIONS="--import $ROOT/scripts/pg-pool-suite/preload.mjs"
fi

FILES=("$@")
if [ ${#FILES[@]} -eq 0 ]; then
  for f in "$WORK"/test/*.js; do
    case $(basename "$f") in setup.js|idle-timeout-exit.js) ;; *) FILES+=("$(basename "$f")") ;; esac
  done
fi
TOTAL=0; PASSED=0
for f in "${FILES[@]}"; do
  out="$WORK/$f.json"
  rc=0
  (cd "$WORK" && timeout "${PGPULSE_SUITE_FILE_TIMEOUT:-120}" node node_modules/mocha/bin/mocha.js --reporter "${PGPULSE_SUITE_REPORTER:-json}" --reporter-option "output=$out" test/setup.js "test/$f" > "$WORK/$f.log" 2>&1) || rc=$?
  if [ -s "$out" ]; then
    read -r p t n < <(node -e "const r=JSON.parse(require('fs').readFileSync('$out','utf8'));console.log(r.stats.passes, r.stats.tests, r.stats.pending)")
  else
    p=0; n=0; t=$(grep -cE "^\s*it\(" "$WORK/test/$f" || true)
  fi
  note=""; [ "$rc" = 124 ] && note=" (did not exit in time)"
  [ "$n" != 0 ] && note="$note ($n pending: disabled in the suite itself)"
  echo "$f: $p/$t passed, exit $rc$note"
  if [ -s "$out" ]; then
    node -e "const r=JSON.parse(require('fs').readFileSync('$out','utf8'));for(const x of r.failures)console.log('  FAIL', x.fullTitle, '--', String(x.err.message||'').split('\n')[0].slice(0,160))"
  fi
  [ "${PGPULSE_SUITE_VERBOSE:-0}" = 1 ] && sed 's/^/    | /' "$WORK/$f.log" | tail -20
  TOTAL=$((TOTAL + t)); PASSED=$((PASSED + p))
done
echo "TOTAL: $PASSED/$TOTAL passed"
