/**
 * Configuration loading: the file, then the environment overrides, then validation against the
 * schema (config-schema.ts) by its generated validator, with errors that name each bad key and where
 * its value came from.
 */
import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { OnshiError } from './errors.js';
import { configLeaves, type GatewayConfig } from './config-schema.js';
import { validate as validateGenerated } from './config-validator.generated.js';

export * from './config-schema.js';

export type ConfigErrorCode = 'CONFIG_INVALID' | 'CONFIG_UNREADABLE';

/** The generated validator's shape (Ajv's ValidateFunction: fills defaults in place, errors on itself). */
const validateSchema = validateGenerated as ((data: unknown) => data is GatewayConfig) & {
  errors?: ErrorObject[] | null;
};

function applyEnv(target: Record<string, unknown>, env: NodeJS.ProcessEnv, origins: Map<string, string>): void {
  for (const leaf of configLeaves()) {
    const raw = env[leaf.env];
    if (raw === undefined) continue;
    let value: unknown = raw;
    if (leaf.type === 'integer') value = /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
    else if (leaf.type === 'number') value = /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw.trim()) : raw;
    else if (leaf.type === 'array')
      value = raw
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
    else if (leaf.type === 'boolean')
      value = raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
    let obj = target;
    for (const seg of leaf.path.slice(0, -1)) {
      const next = obj[seg];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) obj[seg] = {};
      obj = obj[seg] as Record<string, unknown>;
    }
    obj[leaf.path[leaf.path.length - 1]!] = value;
    origins.set('/' + leaf.path.join('/'), `environment ${leaf.env}`);
  }
}

function describe(err: ErrorObject, origins: Map<string, string>): string {
  let where = err.instancePath || '/';
  let why = err.message ?? 'is invalid';
  if (err.keyword === 'additionalProperties') {
    where = `${err.instancePath}/${String((err.params as { additionalProperty: string }).additionalProperty)}`;
    why = 'is not a known setting';
  } else if (err.keyword === 'enum') {
    why = `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  const origin = origins.get(where);
  return `${where.replace(/^\//, '').replace(/\//g, '.') || '(root)'} ${why}${origin ? ` (from ${origin})` : ''}`;
}

/** Validates a config object (defaults filled in place). Throws CONFIG_INVALID naming every bad key. */
export function validateConfig(input: unknown, origins = new Map<string, string>()): GatewayConfig {
  const candidate = structuredClone(input ?? {});
  if (!validateSchema(candidate)) {
    const problems = (validateSchema.errors ?? []).map((e) => describe(e, origins));
    throw new OnshiError<ConfigErrorCode>('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return candidate;
}

/**
 * Loads the config file (when given), then environment overrides, then validates.
 * A missing file is an error only when it was named explicitly.
 */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; explicit?: boolean } = {}): GatewayConfig {
  const env = opts.env ?? process.env;
  const origins = new Map<string, string>();
  let base: Record<string, unknown> = {};
  if (opts.file) {
    let text: string | undefined;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || opts.explicit) {
        throw new OnshiError<ConfigErrorCode>(
          'CONFIG_UNREADABLE',
          `cannot read config file ${opts.file}: ${code ?? String(e)}`,
          { details: { file: opts.file } },
        );
      }
    }
    if (text !== undefined) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error('the top level must be a JSON object');
        base = parsed as Record<string, unknown>;
      } catch (e) {
        throw new OnshiError<ConfigErrorCode>(
          'CONFIG_INVALID',
          `config file ${opts.file} is not valid JSON: ${(e as Error).message}`,
          { details: { file: opts.file } },
        );
      }
      const mark = (obj: Record<string, unknown>, prefix: string): void => {
        for (const [k, v] of Object.entries(obj)) {
          origins.set(`${prefix}/${k}`, `file ${opts.file}`);
          if (typeof v === 'object' && v !== null && !Array.isArray(v))
            mark(v as Record<string, unknown>, `${prefix}/${k}`);
        }
      };
      mark(base, '');
    }
  }
  applyEnv(base, env, origins);
  return validateConfig(base, origins);
}
