/**
 * `onshi rechecks list [--state S] | run`: the time-lag rechecks of the running gateway, over its
 * WebSocket API with a client token like any receipt computer. `run` runs the daily job now.
 */
import { parseCliArgs } from './args.js';
import { withCliClient, printList } from '../client/index.js';
import type { RecheckView, RunSummary } from '../checks/rechecks.js';

interface Ctx {
  usage(message: string): Error;
}

export async function cmdRechecks(argv: string[], ctx: Ctx): Promise<number> {
  const [sub = 'list', ...rest] = argv;
  const { values } = parseCliArgs(
    rest,
    { state: { type: 'string' }, json: { type: 'boolean' }, ws: { type: 'string' }, token: { type: 'string' } },
    (m) => ctx.usage(m),
  );
  if (sub !== 'list' && sub !== 'run') throw ctx.usage(`unknown rechecks command "${sub}" (list | run)`);
  if (values.state !== undefined && !['scheduled', 'found', 'expired'].includes(values.state))
    throw ctx.usage('--state is scheduled, found or expired');
  return withCliClient(
    values,
    'rechecks',
    (m) => ctx.usage(m),
    async (client) => {
      if (sub === 'run') {
        const { checked, found, expired, failed, stillWaiting } = (await client.request({
          type: 'rechecks.run',
        })) as unknown as RunSummary;
        if (values.json) process.stdout.write(JSON.stringify({ checked, found, expired, failed, stillWaiting }) + '\n');
        else
          process.stdout.write(
            `checked ${checked}: found ${found}, still waiting ${stillWaiting}, failed ${failed}; expired ${expired}\n`,
          );
        return 0;
      }
      const { items } = (await client.request({
        type: 'rechecks.list',
        ...(values.state ? { state: values.state } : {}),
      })) as { items: RecheckView[] };
      printList(items, values.json, 'no rechecks', line);
      return 0;
    },
  );
}

function line(i: RecheckView): string {
  const now = i.found
    ? `  now: ${i.found.validityLabel ?? i.found.validity} ${i.found.insurances.map((x) => x.insurerName ?? x.insurerNumber).join(', ')}`
    : '';
  return `#${i.id} ${i.state}  ${i.from} check ${i.firstCheckedAt} (${i.firstValidity})${i.patientRef ? ` ref ${i.patientRef}` : ''}  attempts ${i.attempts}, until ${i.until}${i.lastResult ? `, last ${i.lastResult}` : ''}${now}`;
}
