import t from 'tap';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DB_FILE, GatewayStore, type LookupInput } from '../../src/cache/index.js';
import { CacheKeys } from '../../src/cache/crypto.js';
import { testdir } from '../helpers/testdir.js';

const taro: LookupInput = {
  kind: 'numbers',
  insurerNumber: '06139992',
  symbol: 'テスト',
  number: '12345',
  branch: '00',
  birthdate: '19800401',
};
const hanako: LookupInput = { ...taro, number: '67890', branch: '01' };
const secrets = ['髙橋　一郎', '髙橋', 'タカハシ', '06139992', '139992', '12345', '67890', '19800401', 'テスト'];

t.test('the key file is created 0600, reused, and never in the database', async (t) => {
  const dir = testdir(t);
  const s1 = await GatewayStore.open({ dir });
  const keyPath = join(dir, 'cache.key');
  t.equal(s1.keyPath, keyPath);
  t.ok(s1.startupAlerts.some((a) => a.code === 'STORE_KEY_CREATED'));
  t.equal(statSync(keyPath).mode & 0o777, 0o600, 'key file is private');
  t.equal(statSync(join(dir, DB_FILE)).mode & 0o777, 0o600, 'database file is private');
  const key = readFileSync(keyPath);
  t.equal(key.length, 32);
  await s1.eligibility.put(taro, { ok: 1 }, new Date());
  await s1.close();
  t.notOk(readFileSync(join(dir, DB_FILE)).includes(key), 'key bytes are not in the database');
  t.notOk(readFileSync(join(dir, DB_FILE)).includes(Buffer.from(key.toString('hex'))), 'nor its hex');

  const s2 = await GatewayStore.open({ dir });
  t.notOk(
    s2.startupAlerts.some((a) => a.code === 'STORE_KEY_CREATED'),
    'no new key',
  );
  t.same(readFileSync(keyPath), key, 'the same key is reused');
  t.same(s2.eligibility.get(taro, 60_000)?.answer, { ok: 1 });
  await s2.close();
});

t.test('a short, malformed or wrong key is STORE_KEY_INVALID and changes nothing', async (t) => {
  const dir = testdir(t);
  const s = await GatewayStore.open({ dir });
  await s.outbox.enqueue({ idempotencyKey: 'k1', kind: 'recheck', payload: { a: 1 } });
  await s.close();
  const keyPath = join(dir, 'cache.key');
  const good = readFileSync(keyPath);
  const before = readFileSync(join(dir, DB_FILE));

  writeFileSync(keyPath, good.subarray(0, 16));
  await t.rejects(GatewayStore.open({ dir }), { code: 'STORE_KEY_INVALID' }, 'short key');
  writeFileSync(keyPath, 'not a key at all\n');
  await t.rejects(GatewayStore.open({ dir }), { code: 'STORE_KEY_INVALID' }, 'malformed key');
  writeFileSync(keyPath, randomBytes(32));
  await t.rejects(GatewayStore.open({ dir }), { code: 'STORE_KEY_INVALID' }, 'another valid key');
  t.same(readFileSync(join(dir, DB_FILE)), before, 'the database was not touched');
  t.same(
    readdirSync(dir).filter((f) => f.includes('.corrupt-')),
    [],
    'nothing was moved aside',
  );

  writeFileSync(keyPath, `${good.toString('hex')}\n`);
  const again = await GatewayStore.open({ dir });
  t.equal(again.outbox.stats().depth, 1, 'the key as 64 hex digits works');
  await again.close();
});

t.test('the key comes from $CREDENTIALS_DIRECTORY/cache.key when present, or from keyFile', async (t) => {
  const root = testdir(t, { state: {}, creds: {}, other: {} });
  const dir = join(root, 'state');
  const creds = join(root, 'creds');
  const saved = process.env.CREDENTIALS_DIRECTORY;
  t.teardown(() => {
    if (saved === undefined) delete process.env.CREDENTIALS_DIRECTORY;
    else process.env.CREDENTIALS_DIRECTORY = saved;
  });
  const key = randomBytes(32);
  writeFileSync(join(creds, 'cache.key'), key, { mode: 0o400 });
  process.env.CREDENTIALS_DIRECTORY = creds;
  const s = await GatewayStore.open({ dir });
  t.equal(s.keyPath, join(creds, 'cache.key'));
  t.notOk(existsSync(join(dir, 'cache.key')), 'no key file in the state dir');
  await s.close();
  delete process.env.CREDENTIALS_DIRECTORY;
  const explicit = join(root, 'other', 'k');
  writeFileSync(explicit, key.toString('hex'), { mode: 0o600 });
  const s2 = await GatewayStore.open({ dir, keyFile: explicit });
  t.equal(s2.keyPath, explicit, 'the same key from another place opens the same database');
  await s2.close();
});

t.test('no plaintext in the .db, -wal or -shm files (UTF-8 or UTF-16)', async (t) => {
  const dir = testdir(t);
  const s = await GatewayStore.open({ dir });
  const answer = {
    name: '髙橋　一郎',
    nameKana: 'タカハシ イチロウ',
    insurerNumber: '06139992',
    number: '12345',
    birthdate: '19800401',
    symbol: 'テスト',
  };
  await s.eligibility.put(taro, answer, new Date());
  await s.eligibility.put(hanako, { ...answer, number: '67890' }, new Date());
  await s.eligibility.put({ kind: 'card', certSerial: '12345', issuer: 'CN=JPKI' }, answer, new Date());
  const { id } = await s.outbox.enqueue({
    idempotencyKey: 'idem-1',
    kind: 'recheck',
    payload: { lookup: taro, answer },
  });
  await s.reconciliation.add({
    outboxId: id,
    before: answer,
    after: { ...answer, number: '67890' },
    changedFields: ['number'],
  });
  const files = [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`].map((f) => join(dir, f));
  const check = (when: string) => {
    for (const f of files) {
      if (!existsSync(f)) continue;
      const raw = readFileSync(f);
      for (const secret of secrets) {
        for (const enc of ['utf8', 'utf16le'] as const) {
          t.notOk(raw.includes(Buffer.from(secret, enc)), `${when}: ${secret} (${enc}) not in ${f.split('/').pop()}`);
        }
        t.notOk(
          raw.includes(Buffer.from(secret, 'utf16le').swap16()),
          `${when}: ${secret} (utf16be) not in ${f.split('/').pop()}`,
        );
      }
    }
  };
  t.ok(statSync(files[1]!).size > 0, 'the WAL holds the writes while open');
  check('open');
  await s.close();
  check('closed');
});

t.test("tampering is a typed error, never someone else's data", async (t) => {
  const dir = testdir(t);
  const s = await GatewayStore.open({ dir });
  const old = new Date(Date.now() - 7 * 86_400_000);
  await s.eligibility.put(taro, { who: 'taro' }, new Date());
  await s.eligibility.put(hanako, { who: 'hanako' }, new Date());
  const third: LookupInput = { ...taro, number: '55555' };
  await s.eligibility.put(third, { who: 'third' }, old);
  const fourth: LookupInput = { ...taro, number: '44444' };
  await s.eligibility.put(fourth, { who: 'fourth' }, new Date());
  const a = await s.outbox.enqueue({ idempotencyKey: 'a', kind: 'recheck', payload: { who: 'a' } });
  const b = await s.outbox.enqueue({ idempotencyKey: 'b', kind: 'recheck', payload: { who: 'b' } });
  const c = await s.outbox.enqueue({ idempotencyKey: 'c', kind: 'recheck', payload: { who: 'c' } });
  const r = await s.reconciliation.add({ outboxId: a.id, before: { x: 1 }, after: { x: 2 }, changedFields: ['x'] });
  await s.close();

  const keys = new CacheKeys(readFileSync(join(dir, 'cache.key')));
  const lk = (l: LookupInput) => keys.lookupKey(l);
  const db = new Database(join(dir, DB_FILE));
  const answerOf = (l: LookupInput) =>
    db.prepare('SELECT answer FROM eligibility WHERE lookup = ?').pluck().get(lk(l)) as Buffer;
  // flip one ciphertext byte of taro's answer
  const flipped = Buffer.from(answerOf(taro));
  flipped[flipped.length - 1]! ^= 0x01;
  db.prepare('UPDATE eligibility SET answer = ? WHERE lookup = ?').run(flipped, lk(taro));
  // give hanako's row fourth's (valid) ciphertext
  db.prepare('UPDATE eligibility SET answer = ? WHERE lookup = ?').run(answerOf(fourth), lk(hanako));
  // make a week-old entry look fresh
  db.prepare('UPDATE eligibility SET verified_at = ? WHERE lookup = ?').run(Date.now(), lk(third));
  // swap two outbox payloads
  const pl = db.prepare('SELECT payload FROM outbox WHERE id = ?').pluck();
  const pa = pl.get(a.id) as Buffer;
  const pb = pl.get(b.id) as Buffer;
  db.prepare('UPDATE outbox SET payload = ? WHERE id = ?').run(pb, a.id);
  db.prepare('UPDATE outbox SET payload = ? WHERE id = ?').run(pa, b.id);
  // move the "after" ciphertext into the "before" column
  db.prepare('UPDATE reconciliation SET before = after WHERE id = ?').run(r.id);
  db.close();

  const s2 = await GatewayStore.open({ dir });
  t.teardown(() => s2.close());
  t.throws(() => s2.eligibility.get(taro, 60_000), { code: 'STORE_CORRUPT' }, 'flipped byte');
  t.throws(() => s2.eligibility.get(hanako, 60_000), { code: 'STORE_CORRUPT' }, 'ciphertext moved to another row');
  t.throws(() => s2.eligibility.get(third, 60_000), { code: 'STORE_CORRUPT' }, 'verified_at changed');
  t.same(s2.eligibility.get(fourth, 60_000)?.answer, { who: 'fourth' }, 'untouched rows still read');
  t.throws(() => s2.reconciliation.list(), { code: 'STORE_CORRUPT' }, 'column swap');

  await t.rejects(
    s2.outbox.nextDue(10),
    { code: 'STORE_CORRUPT', details: { ids: [a.id, b.id] } },
    'swapped outbox payloads',
  );
  t.equal(s2.outbox.stats().dead, 2, 'the tampered entries are kept as dead');
  const due = await s2.outbox.nextDue(10);
  t.same(
    due.map((e) => [e.id, e.payload]),
    [[c.id, { who: 'c' }]],
    'the queue is not blocked',
  );
});
