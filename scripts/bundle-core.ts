/**
 * Bundles @pgpulse/core's JavaScript into one ES module, packages/core/dist/index.js (with its
 * source map), after `tsc -b` has written the declarations (#22 item 1, cold start). Node
 * resolves, reads and links each module file on its own: core's ~180 files plus zod's
 * took 155 ms to import where the same code in one file takes 89 ms (median of 9, quiet,
 * docs/benchmarks.md "Cold start of a script").
 *
 * External (resolved from node_modules at run time, as before): every peer dependency (pg,
 * @opentelemetry/api, etcd3: the user's copy, one instance), and the dependencies that are
 * not plain JavaScript modules or are read as files: libpg-query (WebAssembly beside its
 * JavaScript), lru-cache, uplot (the dashboard reads its files). zod is bundled: it is only
 * used inside core (config validation), and its ~90 module files were a third of the import.
 * It stays a dependency because the declarations name its types.
 *
 * usage: tsx scripts/bundle-core.ts   (run by `pnpm build` and packages/core's `build`)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const core = fileURLToPath(new URL('../packages/core/', import.meta.url));

/** What core's package.json declares, to keep every package but zod external. */
interface Manifest {
  readonly engines: { readonly node: string };
  readonly dependencies: Record<string, string>;
  readonly peerDependencies: Record<string, string>;
}
const manifest = JSON.parse(readFileSync(`${core}package.json`, 'utf8')) as Manifest;
const BUNDLED = new Set(['zod']);
const external = [
  ...Object.keys(manifest.dependencies),
  ...Object.keys(manifest.peerDependencies),
].filter((name) => !BUNDLED.has(name));

await build({
  entryPoints: [`${core}src/index.ts`],
  outfile: `${core}dist/index.js`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  // The oldest Node the package supports (engines), e.g. ">=20.19" -> node20.19.
  target: `node${manifest.engines.node.replace(/^>=/, '')}`,
  // Deep imports too (e.g. 'zod/v4/core' would be bundled, 'pg/lib/x' stays external).
  external: external.flatMap((name) => [name, `${name}/*`]),
  sourcemap: true,
  // The map's sources point at ../src/*.ts, shipped in the tarball as before.
  sourcesContent: false,
  logLevel: 'warning',
});
