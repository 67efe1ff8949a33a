import t from 'tap';
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DB_FILE, GatewayStore, LATEST_VERSION } from '../../src/cache/index.js';
import { CacheKeys } from '../../src/cache/crypto.js';
import { MIGRATIONS, migrate } from '../../src/cache/schema.js';
import { AAD } from '../../src/cache/writer-ops.js';
import { testdir } from '../helpers/testdir.js';

t.test('migrations are numbered from 1, strictly increasing', async (t) => {
  // Versions are reserved per branch (5: batches, 6: rechecks), so one branch may hold a gap until merged.
  const versions = MIGRATIONS.map((m) => m.version);
  t.equal(versions[0], 1);
  t.ok(
    versions.every((v, i) => i === 0 || v > versions[i - 1]!),
    `increasing: ${versions.join(', ')}`,
  );
  t.equal(LATEST_VERSION, versions[versions.length - 1]);
  t.ok(LATEST_VERSION >= 2);
});

t.test('a v1 database with data migrates to the latest version, data intact', async (t) => {
  const dir = testdir(t);
  const key = randomBytes(32);
  writeFileSync(join(dir, 'cache.key'), key, { mode: 0o600 });
  const keys = new CacheKeys(key);
  const v1 = new Database(join(dir, DB_FILE));
  v1.pragma('journal_mode = WAL');
  t.same(migrate(v1, 1), [1]);
  t.equal(v1.pragma('user_version', { simple: true }), 1);
  // a v1 outbox row and cache row, written as v1 code would
  const now = Date.now();
  v1.prepare(
    `INSERT INTO outbox (id, idempotency_key, kind, payload, created_at, next_attempt_at, state, updated_at) VALUES (1, 'old', 'recheck', ?, ?, ?, 'pending', ?)`,
  ).run(keys.sealJson({ from: 'v1' }, AAD.outbox(1)), now, now, now);
  const person = { kind: 'numbers', insurerNumber: '06139992', number: '12345', birthdate: '19800401' } as const;
  const lookup = keys.lookupKey(person);
  v1.prepare('INSERT INTO eligibility (lookup, answer, verified_at, source, stored_at) VALUES (?, ?, ?, ?, ?)').run(
    lookup,
    keys.sealJson({ v: 1 }, AAD.eligibility(lookup.toString('hex'), now, 'central')),
    now,
    'central',
    now,
  );
  v1.close();

  const store = await GatewayStore.open({ dir });
  t.teardown(() => store.close());
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  t.teardown(() => db.close());
  t.equal(db.pragma('user_version', { simple: true }), LATEST_VERSION);
  t.same(
    db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all(),
    MIGRATIONS.map((m) => m.version),
  );
  t.same(store.eligibility.get(person, 60_000)?.answer, { v: 1 }, 'v1 cache row reads');
  t.equal(store.outbox.stats().depth, 1, 'the depth counter (v6) starts from the entries already queued');
  t.equal(store.eligibility.count(), 1, 'the cache size (v8) starts from the answers already cached');
  const [e] = await store.outbox.nextDue(10);
  t.same([e?.id, e?.payload], [1, { from: 'v1' }], 'v1 outbox row is handed out');
  // v2 tables work
  await store.revocation.set(['ab'], new Date());
  t.ok(store.revocation.isRevoked('AB'));
  const { id } = await store.reconciliation.add({
    outboxId: 1,
    before: undefined,
    after: { v: 2 },
    changedFields: ['v'],
  });
  t.equal(store.reconciliation.list()[0]?.id, id);
});

t.test('a migration is all or nothing', async (t) => {
  const dir = testdir(t);
  const db = new Database(join(dir, DB_FILE));
  migrate(db, 1);
  db.exec('CREATE TABLE reconciliation (x)'); // makes step 2 fail half-way
  t.throws(() => migrate(db));
  t.equal(db.pragma('user_version', { simple: true }), 1, 'still at v1');
  t.equal(
    db.prepare(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'revoked_serials'`).pluck().get(),
    0,
    'no part of v2 stayed',
  );
  db.close();
});

t.test('a database newer than this build is refused, untouched', async (t) => {
  const dir = testdir(t);
  const s = await GatewayStore.open({ dir });
  await s.close();
  const db = new Database(join(dir, DB_FILE));
  db.pragma(`user_version = ${LATEST_VERSION + 1}`);
  db.close();
  const before = readFileSync(join(dir, DB_FILE));
  await t.rejects(GatewayStore.open({ dir }), { code: 'STORE_SCHEMA_NEWER' });
  t.same(readFileSync(join(dir, DB_FILE)), before);
});
