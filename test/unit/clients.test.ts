import t from 'tap';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientStore } from '../../src/gateway/clients.js';

const fresh = () => new ClientStore(mkdtempSync(join(tmpdir(), 'onshi-clients-')));

t.test('a token authenticates its client and is stored only as a hash', async (t) => {
  const store = fresh();
  const { client, token } = store.add('reception-1');
  t.match(token, /^onshi_[a-f0-9]{8}_[A-Za-z0-9_-]{43}$/);
  t.equal(store.authenticate(token)?.id, client.id);
  const file = readFileSync(store.path, 'utf8');
  t.notOk(file.includes(token.split('_')[2]!), 'the secret is not in the file');
  t.equal(statSync(store.path).mode & 0o777, 0o600, 'the file is private');
});

t.test('wrong, malformed and revoked tokens are refused', async (t) => {
  const store = fresh();
  const { client, token } = store.add('a');
  t.equal(store.authenticate(undefined), undefined);
  t.equal(store.authenticate(''), undefined);
  t.equal(store.authenticate(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), undefined);
  t.equal(store.authenticate(token.replace(client.id, '00000000')), undefined);
  store.revoke(client.id);
  t.equal(store.authenticate(token), undefined);
  t.throws(() => store.revoke(client.id), { code: 'CLIENT_NOT_FOUND' });
});

t.test('another process adding a client is seen without a restart', async (t) => {
  const store = fresh();
  store.add('first');
  const other = new ClientStore(join(store.path, '..'));
  const { token } = other.add('second');
  t.equal(store.authenticate(token)?.name, 'second');
  t.equal(store.list().length, 2);
});

t.test('names are validated; a corrupt file is a typed error', async (t) => {
  const store = fresh();
  t.throws(() => store.add(''), { code: 'CLIENT_NAME_INVALID' });
  t.throws(() => store.add('a/b'), { code: 'CLIENT_NAME_INVALID' });
  t.ok(store.add('受付 1').token);
  writeFileSync(store.path, '{broken');
  t.throws(() => store.list(), { code: 'CLIENTS_FILE_CORRUPT' });
});
