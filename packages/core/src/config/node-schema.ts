import { z } from 'zod';
import { FINAL, quote } from './issues.js';
import { DEFAULT_PORT } from './node.js';
import type { PoolerMode, SslOption } from './node-types.js';
import { parseNodeUrl, redactUrl, type UrlNodeFields } from './node-url.js';
import { choice, isPlainObject, nonEmpty, PHRASE, POOLER_MODES, section } from './schema-fields.js';
import {
  parseOptions,
  type ServerSettings,
  settingNameProblem,
  settingValueProblem,
} from './server-settings.js';

/**
 * The schema of one node (the primary, a replica): a connection URL or an object, with its
 * server settings and libpq `options`.
 */

export type NodeFields = Omit<UrlNodeFields, 'settings'> & {
  name?: string | undefined;
  weight?: number | undefined;
  settings?: ServerSettings | undefined;
  options?: Record<string, string> | undefined;
  pooler?: PoolerMode | undefined;
};

const SETTINGS_PHRASE = "an object of server settings, e.g. { statement_timeout: '5s' }";

/** `{ statement_timeout: '5s', lock_timeout: 1000 }`: names checked, values sendable. */
export const settingsSchema = z
  .custom<ServerSettings>(isPlainObject, SETTINGS_PHRASE)
  .superRefine((settings, ctx) => {
    for (const [name, value] of Object.entries(settings)) {
      const problem = settingNameProblem(name) ?? settingValueProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, path: [name] });
    }
  });

/** libpq's `options` string (`-c statement_timeout=5s -c lock_timeout=1s`), parsed into settings. */
export const optionsSchema = z
  .string("a libpq options string, e.g. '-c statement_timeout=5s'")
  .transform((text, ctx): Record<string, string> => {
    const parsed = parseOptions(text);
    if (parsed.ok) return parsed.settings;
    ctx.addIssue({ code: 'custom', message: parsed.reason });
    return z.NEVER;
  });

const PRIMARY_PHRASE = "the primary's connection URL or { host, port, database, user, password }";
const REPLICA_PHRASE =
  "a replica's connection URL or { host, port, database, user, password, weight }";

const nodeShape = {
  host: nonEmpty('a host name, IP address or unix socket directory'),
  port: z
    .number(PHRASE.port)
    .int(PHRASE.port)
    .min(1, PHRASE.port)
    .max(65_535, PHRASE.port)
    .default(DEFAULT_PORT),
  database: nonEmpty('a non-empty database name').optional(),
  user: nonEmpty('a non-empty user name').optional(),
  password: z.string('a string').optional(),
  name: nonEmpty('a non-empty node name').optional(),
  ssl: z
    .custom<SslOption>(
      (v) => typeof v === 'boolean' || isPlainObject(v),
      'true, false or an object of tls.connect options',
    )
    .optional(),
  settings: settingsSchema.optional(),
  options: optionsSchema.optional(),
  pooler: choice(POOLER_MODES).optional(),
};

const nodeUrl = z.string().transform((url, ctx): NodeFields => {
  const parsed = parseNodeUrl(url);
  if (parsed.ok) return parsed.fields;
  // No `input` on the issue: it would carry the password into anything that logs zod issues.
  ctx.addIssue({
    code: 'custom',
    message: `not a valid postgres URL: ${parsed.reason} (got ${quote(redactUrl(url))})`,
    params: FINAL,
  });
  return z.NEVER;
});

export const primarySchema = z.union(
  [nodeUrl, section('primary', nodeShape, PRIMARY_PHRASE)],
  PRIMARY_PHRASE,
);

export const replicaSchema = z.union(
  [
    nodeUrl,
    section(
      'replicas.*',
      { ...nodeShape, weight: z.number(PHRASE.positive).positive(PHRASE.positive).default(1) },
      REPLICA_PHRASE,
    ),
  ],
  REPLICA_PHRASE,
);
