/** The one argument parser of the `onshi` subcommands: strict, and every problem is a usage error. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type CliOptions = NonNullable<ParseArgsConfig['options']>;
type Parsed<T extends CliOptions> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>
>;

/** parseArgs (strict) allowing at most `positionals` positional arguments; problems are thrown as `usage(message)`. */
export function parseCliArgs<T extends CliOptions>(
  argv: string[],
  options: T,
  usage: (message: string) => Error,
  positionals = 0,
): Parsed<T> {
  let parsed: Parsed<T>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw usage((e as Error).message);
  }
  if (parsed.positionals.length > positionals) throw usage(`unexpected argument "${parsed.positionals[positionals]}"`);
  return parsed;
}
