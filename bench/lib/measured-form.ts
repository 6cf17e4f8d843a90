// Which form of pgpulse a bench measured (bench/built.sh): the built bundle, or the TypeScript
// sources under tsx. One line for the bench's output.
import * as core from '@pgpulse/core';

const PACKAGES = ['@pgpulse/core', '@pgpulse/drizzle', '@pgpulse/prisma', '@pgpulse/typeorm'];

/** e.g. "bundle: @pgpulse/core packages/core/dist/index.js, ...; keepNames __name() calls: no". */
export function measuredForm(packages = PACKAGES): string {
  const root = new URL('../../', import.meta.url).href;
  const where = packages.map((name) => `${name} ${import.meta.resolve(name).replace(root, '')}`);
  const form = where[0]?.endsWith('/dist/index.js') ? 'bundle' : 'source (tsx)';
  // tsx's esbuild keepNames wraps each closure made in __name(): the cost the bundle has not.
  const named = Object.values(core).some(
    (value) => typeof value === 'function' && value.toString().includes('__name('),
  );
  return `Measured: ${form}: ${where.join(', ')}; keepNames __name() calls: ${named ? 'yes' : 'no'}.`;
}
