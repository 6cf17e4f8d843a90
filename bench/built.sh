#!/usr/bin/env bash
# Runs a bench against what users install (#12): @pgpulse/core as its published bundle
# (packages/core/dist/index.js, written by tsc -b and scripts/bundle-core.ts as `pnpm build`
# does) and the adapters as built by tsc (packages/{drizzle,prisma,typeorm}/dist), resolved
# through bench/tsconfig.bundle.json. The bench file itself and the sandbox still run under tsx.
# Why: tsx compiles TypeScript sources with esbuild's keepNames, a __name() call at every closure
# made, which the bundle has not (~0.4 us a statement once, in prepared/statement-cache.ts).
#   bash bench/built.sh bench/compare.ts        PGPULSE_BENCH_SOURCE=1: the sources, as before
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/node_modules/.bin
if [ "${PGPULSE_BENCH_SOURCE:-0}" != 1 ]; then
  # Core first (the adapters compile against its declarations), the bundle last (tsc's own
  # dist/index.js is what it replaces).
  "$BIN/tsc" -b "$ROOT/packages/core" "$ROOT/packages/drizzle" "$ROOT/packages/prisma" "$ROOT/packages/typeorm"
  (cd "$ROOT/packages/core" && "$BIN/tsx" ../../scripts/bundle-core.ts)
  export TSX_TSCONFIG_PATH=$ROOT/bench/tsconfig.bundle.json
fi
exec "$BIN/tsx" "$@"
