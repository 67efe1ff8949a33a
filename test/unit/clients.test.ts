import t, { type Test } from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClientStore } from '../../src/api/tokens.js';
import { effectiveScopes } from '../../src/protocol/scopes.js';
import { type CliResult, cliConfig, runCli } from '../helpers/cli.js';

const fresh = (t: Test) => new ClientStore(t.testdir());

t.test('a token authenticates its client and is stored only as a hash', async (t) => {
  const store = fresh(t);
  const { client, token } = store.add('reception-1');
  t.match(token, /^onshi_[a-f0-9]{8}_[A-Za-z0-9_-]{43}$/);
  t.equal(store.authenticate(token)?.id, client.id);
  const file = readFileSync(store.path, 'utf8');
  // The secret is the 43 characters after `onshi_<id>_` (base64url: it may hold '_' itself).
  t.notOk(file.includes(token.slice('onshi_00000000_'.length)), 'the secret is not in the file');
  t.equal(statSync(store.path).mode & 0o777, 0o600, 'the file is private');
});

t.test('wrong, malformed and revoked tokens are refused', async (t) => {
  const store = fresh(t);
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
  const store = fresh(t);
  store.add('first');
  const other = new ClientStore(join(store.path, '..'));
  const { token } = other.add('second');
  t.equal(store.authenticate(token)?.name, 'second');
  t.equal(store.list().length, 2);
});

t.test('names are validated; a corrupt file is a typed error', async (t) => {
  const store = fresh(t);
  t.throws(() => store.add(''), { code: 'CLIENT_NAME_INVALID' });
  t.throws(() => store.add('a/b'), { code: 'CLIENT_NAME_INVALID' });
  t.ok(store.add('受付 1').token);
  writeFileSync(store.path, '{broken');
  t.throws(() => store.list(), { code: 'CLIENTS_FILE_CORRUPT' });
});

t.test('scopes: stored with the client, validated, and a record without them is full access', async (t) => {
  const store = fresh(t);
  const { client, token } = store.add('display', ['events:read']);
  t.same(client.scopes, ['events:read']);
  t.same(store.authenticate(token)?.scopes, ['events:read']);
  t.same(
    store.add('desk', ['inquiry', 'admin-ops', 'inquiry']).client.scopes,
    ['inquiry', 'admin-ops'],
    'deduplicated',
  );
  t.same(store.add('default').client.scopes, ['full'], 'full unless limited');
  t.throws(() => store.add('bad', ['root']), {
    code: 'CLIENT_SCOPE_INVALID',
    message: /"root".*full, inquiry, batch, events:read, admin-ops/,
  });
  t.throws(() => store.add('none', []), { code: 'CLIENT_SCOPE_INVALID' });
  // A file written before scopes existed.
  const legacy = store.add('old');
  const data = JSON.parse(readFileSync(store.path, 'utf8')) as { clients: Record<string, unknown>[] };
  for (const c of data.clients) if (c.name === 'old') delete c.scopes;
  writeFileSync(store.path, JSON.stringify(data));
  const rec = store.authenticate(legacy.token);
  t.equal(rec?.name, 'old', 'the old token still authenticates');
  t.equal(rec?.scopes, undefined, 'no scopes stored');
  t.same(effectiveScopes(rec?.scopes), ['full'], 'which means full access');
});

/** `onshi` commands in turn: each one's exit code, what each printed on stdout, all of stderr. */
async function cli(runs: string[][]): Promise<{ codes: number[]; out: string[]; err: string }> {
  const results: CliResult[] = [];
  for (const argv of runs) results.push(await runCli(argv));
  return { codes: results.map((r) => r.code), out: results.map((r) => r.out), err: results.map((r) => r.err).join('') };
}

t.test('onshi clients add --scope, and list shows the scopes', async (t) => {
  const { stateDir, config } = cliConfig(t);
  const { codes, out, err } = await cli([
    ['clients', 'add', 'display', '--scope', 'events:read', '--config', config, '--json'],
    ['clients', 'add', 'desk', '--scope', 'inquiry,admin-ops', '--scope', 'batch', '--config', config, '--json'],
    ['clients', 'add', 'bad', '--scope', 'root', '--config', config],
    ['clients', 'list', '--config', config, '--json'],
  ]);
  t.same(codes, [0, 0, 1, 0]);
  t.same((JSON.parse(out[0]!) as { scopes: string[] }).scopes, ['events:read']);
  t.same(
    (JSON.parse(out[1]!) as { scopes: string[] }).scopes,
    ['inquiry', 'admin-ops', 'batch'],
    'comma lists and repeated --scope',
  );
  t.match(err, /CLIENT_SCOPE_INVALID/);
  t.equal(out[2], '', 'a refused add prints no token');
  const listed = JSON.parse(out[3]!) as { name: string; scopes: string[]; hash?: string }[];
  t.same(
    listed.map((c) => [c.name, c.scopes]),
    [
      ['display', ['events:read']],
      ['desk', ['inquiry', 'admin-ops', 'batch']],
    ],
  );
  t.notOk(
    listed.some((c) => c.hash),
    'never the hash',
  );
  t.equal(
    new ClientStore(stateDir).authenticate((JSON.parse(out[0]!) as { token: string }).token)?.name,
    'display',
    'the printed token works',
  );
});

// The admin page's rule (test/unit/admin-clients.test.ts), from the same definition.
t.test('onshi clients add: names trimmed, never blank, unique among the active clients', async (t) => {
  const { stateDir, config } = cliConfig(t);
  const add = (name: string): string[] => ['clients', 'add', name, '--config', config, '--json'];
  const first = await cli([add('  受付1 '), add('   '), add('受付1')]);
  t.same(first.codes, [0, 1, 1]);
  t.equal((JSON.parse(first.out[0]!) as { name: string }).name, '受付1', 'trimmed');
  t.match(first.err, /CLIENT_NAME_INVALID[\s\S]*CLIENT_NAME_TAKEN/, 'blank, then taken');
  // Revoked, the name is free again, and `revoke NAME` names one client.
  const again = await cli([['clients', 'revoke', '受付1', '--config', config], add('受付1')]);
  t.same(again.codes, [0, 0]);
  t.same(
    new ClientStore(stateDir).list().map((c) => [c.name, c.revokedAt !== undefined]),
    [
      ['受付1', true],
      ['受付1', false],
    ],
  );
});
