/** `onshi audit verify`: checks the audit log's hash chain. */
import { verifyAuditFile } from '../cache/index.js';
import { parseCliArgs } from './args.js';
import type { CliContext } from './status.js';

/** Read-only: safe while the daemon runs (run it as the gateway's user, which can read the key). */
export function cmdAudit(argv: string[], ctx: CliContext): number {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') throw ctx.usage('audit verify [--config FILE] [--json]');
  const { values } = parseCliArgs(rest, { config: { type: 'string' }, json: { type: 'boolean' } }, ctx.usage);
  const r = verifyAuditFile({ dir: ctx.config(values.config).stateDir });
  if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
  else if (r.ok) process.stdout.write(`audit log OK: ${r.entries} entries, head ${r.head.seq} ${r.head.hash}\n`);
  else
    process.stdout.write(
      `audit log BROKEN at entry ${r.seq} (${r.reason}): ${r.message}; ${r.entries} entries verified before it\n`,
    );
  return r.ok ? 0 : 1;
}
