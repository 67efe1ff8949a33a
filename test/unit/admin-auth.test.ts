import t from 'tap';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdminAccounts,
  hashPassword,
  LoginLimiter,
  passwordProblem,
  SessionStore,
  verifyPassword,
} from '../../src/admin/index.js';
import { csrfMatches } from '../../src/admin/auth.js';
import { escapeHtml, html, settingsFromForm } from '../../src/admin/views.js';
import { parseMultipart } from '../../src/admin/server.js';

const fresh = (): string => mkdtempSync(join(tmpdir(), 'onshi-admin-auth-'));

t.test('scrypt hashes: salted, parameters recorded, verified in constant form', async (t) => {
  const a = await hashPassword('correct horse battery', { N: 1024, r: 8, p: 1 });
  const b = await hashPassword('correct horse battery', { N: 1024, r: 8, p: 1 });
  t.match(a, /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  t.not(a, b, 'a fresh salt each time');
  t.ok(await verifyPassword('correct horse battery', a));
  t.notOk(await verifyPassword('correct horse batterY', a));
  t.notOk(await verifyPassword('x', 'md5$abc'), 'an unknown scheme never verifies');
  t.notOk(await verifyPassword('x', 'scrypt$99999999$8$1$AA$AA'), 'absurd parameters are refused, not run');
  t.ok(
    await verifyPassword(
      'ｃｏｒｒｅｃｔ',
      await hashPassword('ｃｏｒｒｅｃｔ'.normalize('NFD'), { N: 1024, r: 8, p: 1 }),
    ),
    'NFC-normalised',
  );
  t.match(await hashPassword('x'), /^scrypt\$32768\$8\$1\$/, 'default cost N=2^15');
});

t.test('password rules', async (t) => {
  t.equal(passwordProblem('short'), 'too_short');
  t.equal(passwordProblem('a'.repeat(257)), 'too_long');
  t.equal(passwordProblem('aaaaaaaaaaaaaa'), 'too_simple');
  t.equal(passwordProblem('admin1234567'), 'too_simple');
  t.equal(passwordProblem('the-initial-secret', { initialSecret: 'the-initial-secret' }), 'same_as_initial');
  t.equal(passwordProblem('correct horse battery'), undefined);
  t.equal(passwordProblem('password1234'), 'too_common', 'a common word padded with digits');
  t.equal(passwordProblem('Qwerty-2026!!'), 'too_common');
  t.equal(passwordProblem('123456789012'), 'too_common', 'digits only');
  t.equal(passwordProblem('sakuraclinic2026'.slice(0, 15)), 'too_simple', 'letters then digits, short');
  t.equal(passwordProblem('qwertyuiopasdf'), 'too_simple', 'keyboard order');
  t.equal(passwordProblem('sakura-kaigan 2026'), undefined, 'a phrase with digits is fine');
});

t.test('first start makes one account from a new initial secret (0600), forced to change', async (t) => {
  const dir = fresh();
  const acc = new AdminAccounts(dir);
  const init = await acc.ensureInitialized();
  t.match(init?.secret, /^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/);
  t.equal(readFileSync(init!.file, 'utf8').trim(), init!.secret);
  t.equal(statSync(init!.file).mode & 0o777, 0o600);
  t.equal(statSync(acc.path).mode & 0o777, 0o600);
  t.notOk(readFileSync(acc.path, 'utf8').includes(init!.secret!), 'only the hash is in admin.json');
  t.equal(await acc.ensureInitialized(), undefined, 'later starts do nothing');
  t.equal((await acc.verify('admin', init!.secret!))?.mustChange, true);
  t.equal(await acc.verify('admin', 'nope'), undefined);
  t.equal(await acc.verify('root', init!.secret!), undefined);

  await t.rejects(acc.changePassword('admin', 'wrong', 'correct horse battery'), { code: 'ADMIN_LOGIN_FAILED' });
  await t.rejects(acc.changePassword('admin', init!.secret!, init!.secret!), {
    code: 'ADMIN_PASSWORD_WEAK',
    details: { reason: 'same_as_initial' },
  });
  await acc.changePassword('admin', init!.secret!, 'correct horse battery');
  t.equal((await acc.verify('admin', 'correct horse battery'))?.mustChange, false);
  t.throws(() => statSync(init!.file), 'the spent secret file is removed');
});

t.test('an installer-provided secret is used; reset makes a new one and moves the generation', async (t) => {
  const dir = fresh();
  const acc = new AdminAccounts(dir);
  const init = await acc.ensureInitialized('from-the-installer-123');
  t.equal(init?.secret, undefined, 'not created here, so not to be printed again');
  t.ok(await acc.verify('admin', 'from-the-installer-123'));
  const gen = acc.generation;
  const other = new AdminAccounts(dir); // `onshi admin reset` is another process
  const r = await other.reset();
  t.equal(acc.generation, gen + 1, 'the running gateway sees the reset without a restart');
  t.equal(await acc.verify('admin', 'from-the-installer-123'), undefined);
  t.equal((await acc.verify('admin', r.secret))?.mustChange, true);
});

t.test('login limiter: locks an address after N failures, doubling, others unaffected', async (t) => {
  let now = 1_000_000;
  const l = new LoginLimiter({ maxFailures: 3, lockoutMs: 10_000, now: () => now });
  l.failure('10.0.0.5');
  l.failure('10.0.0.5');
  t.equal(l.retryAfterMs('10.0.0.5'), 0);
  l.failure('10.0.0.5');
  t.equal(l.retryAfterMs('10.0.0.5'), 10_000);
  t.equal(l.retryAfterMs('10.0.0.6'), 0, 'per address');
  now += 10_001;
  t.equal(l.retryAfterMs('10.0.0.5'), 0);
  l.failure('10.0.0.5');
  l.failure('10.0.0.5');
  l.failure('10.0.0.5');
  t.equal(l.retryAfterMs('10.0.0.5'), 20_000, 'the second lockout is twice as long');
  l.success('10.0.0.5');
  t.equal(l.retryAfterMs('10.0.0.5'), 0);
});

t.test('sessions: idle and absolute expiry, generation, destroy', async (t) => {
  let now = 0;
  const s = new SessionStore({ idleMs: 1000, maxMs: 5000, now: () => now });
  const { id, session } = s.create('admin', false, 0);
  t.match(id, /^[A-Za-z0-9_-]{43}$/);
  t.not(session.csrf, id);
  now = 900;
  t.ok(s.get(id, 0));
  now = 1800;
  t.ok(s.get(id, 0), 'touched at 900, so still live at 1800');
  now = 2900;
  t.equal(s.get(id, 0), undefined, 'idle too long');
  const live = s.create('admin', false, 0);
  for (now = 3000; now <= 3900; now += 300) t.ok(s.peek(live.id, 0), 'a live push sees the session');
  now = 4100;
  t.equal(s.peek(live.id, 0), undefined, 'but does not keep it alive: idle since 2900');
  t.equal(s.get(live.id, 0), undefined);
  now = 2900;
  const b = s.create('admin', false, 0);
  for (now = 3000; now <= 7900; now += 900) s.get(b.id, 0);
  t.equal(s.get(b.id, 0), undefined, 'older than maxMs even when used');
  const c = s.create('admin', false, 0);
  t.equal(s.get(c.id, 1), undefined, 'an admin reset (new generation) ends it');
  const d = s.create('admin', false, 1);
  s.destroyAllOf('admin');
  t.equal(s.get(d.id, 1), undefined);
  t.equal(s.get(undefined, 1), undefined);
  t.equal(s.get('forged', 1), undefined);
});

t.test('CSRF comparison', async (t) => {
  t.ok(csrfMatches('abc', 'abc'));
  t.notOk(csrfMatches('abc', 'abd'));
  t.notOk(csrfMatches('abc', 'ab'));
  t.notOk(csrfMatches('abc', ''));
  t.notOk(csrfMatches('abc', undefined));
  t.notOk(csrfMatches('abc', ['abc']));
});

t.test('views escape everything interpolated', async (t) => {
  t.equal(escapeHtml(`<a href="x">'&`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;');
  const name = '<script>alert(1)</script>';
  t.equal(html`<td>${name}</td>`.text, '<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>');
  t.equal(html`<p>${[html`<b>${'&'}</b>`, 'x']}</p>`.text, '<p><b>&amp;</b>x</p>');
});

t.test('settings form back to a typed config object', async (t) => {
  const f = new URLSearchParams({
    'api.port': '9100',
    'reader.enabled': 'false',
    'tls.hostnames': 'a.lan, b',
    'log.level': 'warn',
    'api.host': '127.0.0.1',
  });
  const o = settingsFromForm(f) as {
    api: { port: number; host: string };
    reader: { enabled: boolean };
    tls: { hostnames: string[] };
    log: { level: string };
  };
  t.equal(o.api.port, 9100);
  t.equal(o.reader.enabled, false);
  t.same(o.tls.hostnames, ['a.lan', 'b']);
  t.equal(o.log.level, 'warn');
  t.equal(
    (settingsFromForm(new URLSearchParams({ 'api.port': 'x' })) as { api: { port: unknown } }).api.port,
    'x',
    'left for the schema to refuse',
  );
});

t.test('multipart parsing of the restore upload', async (t) => {
  const bin = Buffer.from([0, 1, 2, 13, 10, 45, 45, 255]);
  const body = Buffer.concat([
    Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\ntok\r\n'),
    Buffer.from(
      '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="b.onshibak"\r\nContent-Type: application/octet-stream\r\n\r\n',
    ),
    bin,
    Buffer.from('\r\n--XyZ--\r\n'),
  ]);
  const parts = parseMultipart(body, 'XyZ');
  t.equal(parts.get('_csrf')?.toString(), 'tok');
  t.same(parts.get('file'), bin);
});
