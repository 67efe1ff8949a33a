/**
 * `onshi admin reset`: a new initial secret for the admin page. The running gateway sees it at
 * once (every admin session ends); the next login must change it. Run as root or as the service user.
 */
import { parseCliArgs } from './args.js';
import { AdminAccounts } from '../admin/auth.js';
import type { CliContext } from './status.js';

export async function cmdAdmin(argv: string[], ctx: CliContext): Promise<number> {
  const out = ctx.out ?? ((s: string) => void process.stdout.write(s));
  const [sub, ...rest] = argv;
  if (sub !== 'reset') throw ctx.usage('admin reset [--config FILE]');
  const { values } = parseCliArgs(rest, { config: { type: 'string' }, json: { type: 'boolean' } }, (m) => ctx.usage(m));
  const config = ctx.config(values.config);
  const { secret, file } = await new AdminAccounts(config.stateDir).reset();
  out(
    values.json
      ? JSON.stringify({ secret, file }) + '\n'
      : `admin page reset. Log in as "admin" with this initial secret (shown only now; also in ${file}, mode 0600, until it is changed):\n${secret}\n`,
  );
  return 0;
}
