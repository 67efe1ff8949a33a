/** The `onshi` command line run in the test's own process (src/cli's main), its output captured. */
import type { Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/index.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Runs one `onshi` command; stdout and stderr are captured, not printed. */
export async function runCli(argv: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => {
    out += String(s);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    err += String(s);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(argv), out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

/** A config file in the test's folder naming a fresh state folder beside it. */
export function cliConfig(t: Test): { stateDir: string; config: string } {
  const dir = t.testdir();
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ stateDir: join(dir, 'state') }));
  return { stateDir: join(dir, 'state'), config };
}
