/**
 * Receipt-computer connections made on the admin page: names trimmed, never blank, unique among
 * the active ones; scopes chosen from the page's list (kiosks are paired elsewhere), inquiry by
 * default; the API's activity (connections now, last seen) beside each.
 */
import t from 'tap';
import { join } from 'node:path';
import { createAdminBackend } from '../../src/admin/backend.js';
import { errorText } from '../../src/admin/messages-ja.js';
import { ClientStore } from '../../src/api/tokens.js';
import { validateConfig } from '../../src/core/config.js';
import { type OnshiError, isOnshiError } from '../../src/core/errors.js';

t.test('names, scopes and activity', async (t) => {
  const dir = t.testdir();
  const clients = new ClientStore(dir);
  let restarted = 0;
  const b = createAdminBackend({
    status: { status: () => ({}) as never },
    clients,
    configFile: join(dir, 'config.json'),
    stateDir: dir,
    config: validateConfig({ stateDir: dir }),
    clientActivity: () =>
      clients
        .list()
        .filter((c) => c.name === '受付1')
        .map((c) => ({ id: c.id, connections: 1, lastSeenAt: '2026-12-03T01:02:03.000Z' })),
    restart: () => void restarted++,
  });
  const refused = async (name: string, scopes?: string[]): Promise<OnshiError> => {
    try {
      await b.addClient(name, scopes);
    } catch (e) {
      if (isOnshiError(e)) return e;
      throw e;
    }
    throw new Error(`"${name}" was accepted`);
  };
  t.equal((await refused('   ')).code, 'CLIENT_NAME_INVALID', 'blank');
  const first = await b.addClient('  受付1 ');
  t.equal(first.client.name, '受付1', 'trimmed');
  t.same(first.client.scopes, ['inquiry'], 'checks only, by default');
  const taken = await refused('受付1', ['batch']);
  t.equal(taken.code, 'CLIENT_NAME_TAKEN');
  t.equal(errorText('ja', taken), 'この名前の接続はすでにあります。別の名前にしてください。');
  t.equal((await refused('受付2', [])).code, 'CLIENT_SCOPE_INVALID', 'no scope');
  t.equal((await refused('受付2', ['kiosk'])).code, 'CLIENT_SCOPE_INVALID', 'kiosks are paired on their page');
  t.equal((await refused('受付2', ['everything'])).code, 'CLIENT_SCOPE_INVALID');
  const second = await b.addClient('受付2', ['batch', 'admin-ops']);
  t.same(clients.list()[1]?.scopes, ['batch', 'admin-ops']);

  const listed = await b.listClients();
  t.match(listed, [
    { name: '受付1', connections: 1, lastSeenAt: '2026-12-03T01:02:03.000Z', scopes: ['inquiry'] },
    { name: '受付2', connections: 0, scopes: ['batch', 'admin-ops'] },
  ]);
  t.notOk('lastSeenAt' in listed[1]!, 'not seen since the start');
  t.notOk('hash' in listed[0]!, 'no hash leaves the store');

  await b.revokeClient(first.client.id);
  const again = await b.addClient('受付1');
  t.not(again.client.id, first.client.id, 'a deleted name can be used again');
  t.ok(second.token);

  b.restart?.();
  t.equal(restarted, 1, 'the restart seam is passed through');
  const bare = createAdminBackend({
    status: { status: () => ({}) as never },
    clients,
    configFile: join(dir, 'config.json'),
    stateDir: dir,
    config: validateConfig({ stateDir: dir }),
  });
  t.equal(bare.restart, undefined, 'no seam, no restart');
  t.equal((await bare.listClients())[0]?.connections, undefined, 'no activity known');
});
