/**
 * `onshi reconciliation list [--all] | handle ID`: the outage checks whose re-verification changed
 * the answer the counter was given, read from (and marked handled in) the running gateway over its
 * WebSocket API, with a client token like any receipt computer.
 */
import { parseCliArgs } from './args.js';
import { printList, withCliClient } from '../client/index.js';

interface Ctx {
  usage(message: string): Error;
}

export async function cmdReconciliation(argv: string[], ctx: Ctx): Promise<number> {
  const [sub = 'list', ...rest] = argv;
  const { values, positionals } = parseCliArgs(
    rest,
    { all: { type: 'boolean' }, json: { type: 'boolean' }, ws: { type: 'string' }, token: { type: 'string' } },
    (m) => ctx.usage(m),
    1,
  );
  return withCliClient(
    values,
    'reconciliation',
    (m) => ctx.usage(m),
    async (client) => {
      if (sub === 'handle') {
        const id = Number(positionals[0]);
        if (!Number.isInteger(id) || id < 1) throw ctx.usage('reconciliation handle needs an item id');
        await client.request({ type: 'reconciliation.handle', itemId: id });
        process.stdout.write(`item ${id} marked handled\n`);
        return 0;
      }
      if (sub !== 'list') throw ctx.usage(`unknown reconciliation command "${sub}" (list | handle ID)`);
      const { items } = (await client.request({
        type: 'reconciliation.list',
        includeHandled: values.all ?? false,
      })) as { items: Item[] };
      printList(items, values.json, 'nothing to reconcile', line);
      return 0;
    },
  );
}

interface Summary {
  source?: string;
  validity?: string;
  validityLabel?: string;
  name?: string;
  refusedCode?: string;
}
interface Item {
  id: number;
  outboxId: number;
  changedFields: string[];
  createdAt: string;
  handledAt?: string;
  before?: { told?: Summary; checkedAt?: string };
  after?: Summary;
}

const outcome = (s: Summary | undefined): string =>
  !s
    ? '?'
    : s.refusedCode
      ? `refused (${s.refusedCode})`
      : s.source === 'none'
        ? 'unavailable'
        : `${s.validityLabel ?? s.validity ?? '?'} [${s.source}]`;

function line(i: Item): string {
  return `#${i.id}${i.handledAt ? ' (handled)' : ''}  ${i.after?.name ?? i.before?.told?.name ?? ''}  checked ${i.before?.checkedAt ?? '?'}: ${outcome(i.before?.told)} → now: ${outcome(i.after)}  changed: ${i.changedFields.join(', ')}`;
}
