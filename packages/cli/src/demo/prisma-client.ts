/**
 * The demo's Prisma client is generated from packages/cli/prisma/schema.prisma into
 * src/demo/generated/prisma (not committed). `pnpm --filter pgpulse generate` makes it; when it
 * is missing or older than the schema, the demo makes it itself (about half a second, offline:
 * the `prisma-client` generator needs no engine, and PRISMA_SCHEMA_ENGINE_BINARY stops the
 * CLI from downloading one).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const SCHEMA = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url));
const CLIENT = fileURLToPath(new URL('./generated/prisma/client.ts', import.meta.url));

export function prismaClientIsCurrent(): boolean {
  return existsSync(CLIENT) && statSync(CLIENT).mtimeMs >= statSync(SCHEMA).mtimeMs;
}

/** Generates the client when needed. Returns whether it ran the generator. */
export function ensurePrismaClient(): boolean {
  if (prismaClientIsCurrent()) return false;
  const cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
  const result = spawnSync(process.execPath, [cli, 'generate', '--schema', SCHEMA], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/true',
      CHECKPOINT_DISABLE: '1',
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
    },
  });
  if (result.status !== 0 || !existsSync(CLIENT)) {
    throw new Error(
      `prisma generate failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stderr}${result.stdout}`,
    );
  }
  return true;
}
