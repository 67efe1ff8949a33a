/**
 * What every command shares: the config file it reads, usage errors (exit 2) and typed failures
 * (exit 1, the error as JSON on stderr), and the context handed to the command modules so that
 * none imports the dispatcher back.
 */
import { loadConfig } from '../core/config.js';
import { OnshiError } from '../core/errors.js';
import type { CliContext } from './status.js';

export const DEFAULT_CONFIG = '/etc/onshi-gateway/config.json';

export class UsageError extends Error {}

/** The exit code for an error, which is written to stderr: 2 for a usage error, 1 otherwise. */
export function fail(e: unknown): number {
  if (e instanceof UsageError) {
    process.stderr.write(`onshi: ${e.message}\n`);
    return 2;
  }
  const body = e instanceof OnshiError ? e.toJSON() : { code: 'INTERNAL', message: (e as Error)?.message ?? String(e) };
  process.stderr.write(JSON.stringify({ error: body }) + '\n');
  return 1;
}

/** The config file named by --config, else $ONSHI_CONFIG, else the default path. */
export function configFile(file: string | undefined): string {
  return file ?? process.env.ONSHI_CONFIG ?? DEFAULT_CONFIG;
}

export function configFrom(file: string | undefined) {
  const explicit = file !== undefined || process.env.ONSHI_CONFIG !== undefined;
  return loadConfig({ file: configFile(file), explicit });
}

export const cliContext: CliContext = {
  config: configFrom,
  usage: (message: string): Error => new UsageError(message),
};
