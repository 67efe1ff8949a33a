/**
 * `onshi` — the command line: the dispatch table of its commands, one module each.
 * (`onshi sim …` and `onshi sandbox` are dispatched by bin/onshi.js to src/sim/cli.ts, so that
 * production code never imports the simulators.)
 */
import { cliContext, fail } from './context.js';
import { cmdStart } from './start.js';
import type { CliContext } from './status.js';
import { USAGE } from './usage.js';

export { fail, UsageError } from './context.js';

type Command = (argv: string[], ctx: CliContext) => number | Promise<number>;

/** The commands other than `start` are loaded only when run: the daemon never needs them. */
const COMMANDS: Record<string, Command> = {
  start: cmdStart,
  clients: async (a, c) => (await import('./clients.js')).cmdClients(a, c),
  inquiry: async (a, c) => (await import('./inquiry.js')).cmdInquiry(a, c),
  audit: async (a, c) => (await import('./audit.js')).cmdAudit(a, c),
  status: async (a, c) => (await import('./status.js')).cmdStatus(a, c),
  doctor: async (a, c) => (await import('./doctor.js')).cmdDoctor(a, c),
  admin: async (a, c) => (await import('./admin.js')).cmdAdmin(a, c),
  backup: async (a, c) => (await import('./backup.js')).cmdBackup(a, c),
  restore: async (a, c) => (await import('./backup.js')).cmdRestore(a, c),
  'support-bundle': async (a, c) => (await import('./backup.js')).cmdSupportBundle(a, c),
  reconciliation: async (a, c) => (await import('./reconciliation.js')).cmdReconciliation(a, c),
  batch: async (a, c) => (await import('./batch.js')).cmdBatch(a, c),
  rechecks: async (a, c) => (await import('./rechecks.js')).cmdRechecks(a, c),
};

/** Exit codes: 0 ok, 1 the operation failed (typed error on stderr), 2 usage. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE + '\n');
    return command === undefined ? 2 : 0;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (run === undefined) {
    process.stderr.write(`onshi: unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  try {
    return await run(rest, cliContext);
  } catch (e) {
    return fail(e);
  }
}
