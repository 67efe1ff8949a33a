/** `onshi clients add|list|revoke`: the receipt computers' tokens (a token is shown once, at add). */
import { ClientStore } from '../api/tokens.js';
import { effectiveScopes } from '../protocol/scopes.js';
import { parseCliArgs } from './args.js';
import type { CliContext } from './status.js';

export function cmdClients(argv: string[], ctx: CliContext): number {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseCliArgs(
    rest,
    { config: { type: 'string' }, json: { type: 'boolean' }, scope: { type: 'string', multiple: true } },
    ctx.usage,
    1,
  );
  if (values.scope && sub !== 'add') throw ctx.usage('--scope is for clients add');
  const store = new ClientStore(ctx.config(values.config).stateDir);
  switch (sub) {
    case 'add': {
      if (!positionals[0]) throw ctx.usage('clients add needs a NAME');
      const scopes = values.scope
        ?.flatMap((s) => s.split(','))
        .map((s) => s.trim())
        .filter(Boolean) ?? ['full'];
      const { client, token } = store.add(store.newClientName(positionals[0]), scopes);
      if (values.json)
        process.stdout.write(JSON.stringify({ id: client.id, name: client.name, scopes: client.scopes, token }) + '\n');
      else
        process.stdout.write(
          `client ${client.name} (${client.id}, scopes ${effectiveScopes(client.scopes).join(',')}) created. Its token, shown only now:\n${token}\n`,
        );
      return 0;
    }
    case 'list': {
      const list = store.list().map(({ hash: _hash, ...c }) => ({ ...c, scopes: effectiveScopes(c.scopes) }));
      process.stdout.write(
        values.json
          ? JSON.stringify(list) + '\n'
          : list
              .map(
                (c) =>
                  `${c.id}  ${c.name}  ${c.scopes.join(',')}  created ${c.createdAt}${c.revokedAt ? `  REVOKED ${c.revokedAt}` : ''}`,
              )
              .join('\n') + (list.length ? '\n' : 'no clients\n'),
      );
      return 0;
    }
    case 'revoke': {
      if (!positionals[0]) throw ctx.usage('clients revoke needs an ID or NAME');
      const c = store.revoke(positionals[0]);
      process.stdout.write(`client ${c.name} (${c.id}) revoked\n`);
      return 0;
    }
    default:
      throw ctx.usage('clients add|list|revoke');
  }
}
