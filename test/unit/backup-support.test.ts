import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { collectBackupFiles, isEncryptedBackup, packBackup, restoreFiles, unpackBackup } from '../../src/ops/backup.js';
import { validateConfig } from '../../src/core/config.js';
import { buildSupportBundle, LogRing, redactLogLine } from '../../src/ops/support-bundle.js';
import { subdir } from '../helpers/testdir.js';

function layout(t: Test, name: string): { config: string; state: string; creds: string } {
  const root = subdir(t, name);
  const config = join(root, 'etc', 'config.json');
  const state = join(root, 'state');
  const creds = join(root, 'etc', 'credentials');
  mkdirSync(join(state, 'tls'), { recursive: true });
  mkdirSync(creds, { recursive: true });
  writeFileSync(config, '{"institutionCode":"1319999996"}\n', { mode: 0o644 });
  writeFileSync(join(state, 'clients.json'), '{"version":1,"clients":[]}\n', { mode: 0o600 });
  writeFileSync(join(state, 'tls', 'gateway.key'), 'KEY', { mode: 0o600 });
  writeFileSync(join(state, 'cache.db'), 'SQLITE', { mode: 0o600 });
  writeFileSync(join(creds, 'central-client.key'), 'CENTRAL KEY', { mode: 0o600 });
  writeFileSync(join(creds, 'cache.key'), 'ab'.repeat(32), { mode: 0o600 });
  return { config, state, creds };
}

t.test('backup: config, state files and credentials, not the cache; encrypted round trip', async (t) => {
  const l = layout(t, 'from');
  const plan = { configFile: l.config, stateDir: l.state, credentialsDir: l.creds };
  const { files, skipped } = collectBackupFiles(plan);
  t.same(files.map((f) => `${f.area}/${f.name}`).sort(), [
    'config/config.json',
    'credentials/cache.key',
    'credentials/central-client.key',
    'state/clients.json',
    'state/tls/gateway.key',
  ]);
  t.same(skipped, []);
  const data = await packBackup(files, 'a good passphrase');
  t.ok(isEncryptedBackup(data));
  t.notOk(data.includes(Buffer.from('CENTRAL KEY')), 'nothing in clear');
  await t.rejects(unpackBackup(data), { code: 'BACKUP_PASSPHRASE_REQUIRED' });
  await t.rejects(unpackBackup(data, 'wrong passphrase'), { code: 'BACKUP_PASSPHRASE_WRONG' });
  const tampered = Buffer.from(data);
  tampered[tampered.length - 1]! ^= 1;
  await t.rejects(unpackBackup(tampered, 'a good passphrase'), { code: 'BACKUP_PASSPHRASE_WRONG' });
  await t.rejects(packBackup(files, 'short'), { code: 'BACKUP_PASSPHRASE_WEAK' });
  await t.rejects(unpackBackup(Buffer.from('hello world')), { code: 'BACKUP_CORRUPT' });

  const archive = await unpackBackup(data, 'a good passphrase');
  const to = layout(t, 'to');
  writeFileSync(join(to.state, 'clients.json'), 'other');
  const r = restoreFiles(archive, { configFile: to.config, stateDir: to.state, credentialsDir: to.creds });
  t.equal(r.restored.length, 5);
  t.equal(readFileSync(join(to.creds, 'central-client.key'), 'utf8'), 'CENTRAL KEY');
  t.equal(readFileSync(join(to.state, 'clients.json'), 'utf8'), '{"version":1,"clients":[]}\n');
  t.equal(statSync(join(to.state, 'tls', 'gateway.key')).mode & 0o777, 0o600);
  t.equal(statSync(to.config).mode & 0o777, 0o644, 'the config keeps its readable mode');

  const plain = await unpackBackup(await packBackup(files));
  t.equal(plain.files.length, 5, 'without a passphrase: not encrypted (the CLI writes it 0600)');
});

t.test('restore writes only known names into known places', async (t) => {
  const l = layout(t, 'gateway');
  const evil = {
    version: 1 as const,
    createdAt: '',
    host: '',
    files: [
      { area: 'state' as const, name: '../../etc/passwd', mode: 0o644, data: Buffer.from('x') },
      { area: 'credentials' as const, name: '../escape', mode: 0o600, data: Buffer.from('x') },
      { area: 'config' as const, name: 'other.json', mode: 0o644, data: Buffer.from('x') },
      { area: 'state' as const, name: 'clients.json', mode: 0o777, data: Buffer.from('{}') },
    ],
  };
  const r = restoreFiles(
    evil,
    { configFile: l.config, stateDir: l.state, credentialsDir: l.creds },
    { areas: ['state', 'credentials', 'config'] },
  );
  t.same(r.restored, [join(l.state, 'clients.json')]);
  t.equal(r.skipped.length, 3);
  t.equal(statSync(join(l.state, 'clients.json')).mode & 0o777, 0o600, 'private whatever the archive says');
  const only = restoreFiles(evil, { configFile: l.config, stateDir: l.state }, { areas: ['config'], dryRun: true });
  t.same(only.restored, []);
});

t.test('log redaction: keys, tokens, digits, Japanese text', async (t) => {
  const line = JSON.stringify({
    level: 'info',
    message: 'x',
    token: 'onshi_0123abcd_' + 'A'.repeat(43),
    query: { number: '1234' },
    note: 'patient 山田太郎 19800401 called with onshi_0123abcd_' + 'B'.repeat(43),
    port: 8765,
  });
  const out = redactLogLine(line);
  t.notMatch(out, /山田|19800401|AAAA|BBBB|1234/);
  t.match(out, /"port":8765/, 'short numbers (ports) stay');
  t.match(out, /\[ja\]/);
  t.equal(redactLogLine('Authorization: Bearer abc.def.ghi-123'), 'Authorization: Bearer [redacted]');
  t.match(redactLogLine('2026-05-01T09:00:00.000Z ready'), /2026-05-01T09:00:00.000Z/, 'timestamps survive');
});

t.test('support bundle: a tar.gz without secrets', async (t) => {
  const config = validateConfig({ central: { userId: 'clinic-login-id' } });
  const ring = new LogRing(3);
  for (let i = 0; i < 5; i++) ring.write(JSON.stringify({ message: `line ${i}`, pin: '1234' }) + '\n');
  t.same(
    ring
      .text()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { message: string }).message),
    ['line 2', 'line 3', 'line 4'],
    'the ring keeps the last lines only, oldest first',
  );
  ring.write('a\nb\n');
  t.same(ring.text().split('\n').filter(Boolean).slice(-2), ['a', 'b'], 'a chunk of several lines counts as several');
  const { filename, data } = buildSupportBundle({
    config,
    logs: ring.text(),
    versions: { node: '20' },
    now: new Date('2026-05-01T00:00:00Z'),
  });
  t.match(filename, /^onshi-support-20260501T000000-.+\.tar\.gz$/);
  const tar = gunzipSync(data);
  t.notOk(tar.includes(Buffer.from('clinic-login-id')), 'the login id is removed');
  t.notOk(tar.includes(Buffer.from('"1234"')), 'the PIN field is redacted');
  const dir = t.testdir({ 'b.tar.gz': data });
  const listing = execFileSync('tar', ['-tzf', join(dir, 'b.tar.gz')], { encoding: 'utf8' })
    .trim()
    .split('\n');
  t.same(listing, [
    'onshi-support-20260501T000000/README.txt',
    'onshi-support-20260501T000000/versions.json',
    'onshi-support-20260501T000000/config.json',
    'onshi-support-20260501T000000/logs.txt',
  ]);
  execFileSync('tar', ['-xzf', join(dir, 'b.tar.gz'), '-C', dir]);
  t.equal(
    JSON.parse(readFileSync(join(dir, 'onshi-support-20260501T000000', 'config.json'), 'utf8')).central.userId,
    '[redacted]',
  );
});
