import t, { type Test } from 'tap';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DB_FILE, GatewayStore, type LookupInput } from '../../src/cache/index.js';
import { testdir } from '../helpers/testdir.js';

async function openStore(t: Test, outboxMax?: number): Promise<{ store: GatewayStore; dir: string }> {
  const dir = testdir(t);
  const store = await GatewayStore.open({ dir, ...(outboxMax ? { outboxMax } : {}) });
  t.teardown(() => store.close());
  return { store, dir };
}

const person: LookupInput = {
  kind: 'numbers',
  insurerNumber: '  139998',
  symbol: 'テスト',
  number: '12345',
  branch: '00',
  birthdate: '19800401',
};
const answer = { validity: '1', name: '髙橋　一郎', nameKana: 'タカハシ イチロウ', insurerNumber: '06139992' };

t.test('an answer round-trips, and maxAge is honoured', async (t) => {
  const { store } = await openStore(t);
  const verifiedAt = new Date(Date.now() - 60_000);
  await store.eligibility.put(person, answer, verifiedAt);
  const got = store.eligibility.get(person, 120_000);
  t.same(got?.answer, answer);
  t.equal(got?.verifiedAt.getTime(), verifiedAt.getTime());
  t.equal(got?.source, 'central');
  t.equal(store.eligibility.get(person, 30_000), undefined, 'older than maxAge: a miss');
  t.equal(store.eligibility.get({ ...person, number: '12346' }, 120_000), undefined, 'another person: a miss');
});

t.test('lookups are normalized', async (t) => {
  const { store } = await openStore(t);
  await store.eligibility.put(person, answer, new Date());
  const same: LookupInput[] = [
    { ...person, insurerNumber: '139998' },
    { ...person, insurerNumber: '１３９９９８ ' },
    { ...person, number: '１２３４５' },
    { ...person, symbol: ' ﾃｽﾄ' },
    { ...person, branch: '00' },
    { ...person, birthdate: '1980-04-01' },
  ];
  for (const l of same) t.same(store.eligibility.get(l, 60_000)?.answer, answer, JSON.stringify(l));
  t.equal(store.eligibility.get({ ...person, branch: '01' }, 60_000), undefined, 'another branch is another person');
  t.equal(store.eligibility.get({ ...person, symbol: undefined }, 60_000), undefined, 'no symbol ≠ a symbol');

  const card: LookupInput = { kind: 'card', certSerial: '0A:1B:2C', issuer: 'CN=JPKI' };
  await store.eligibility.put(card, { validity: '1' }, new Date());
  t.same(store.eligibility.get({ kind: 'card', certSerial: 'a1b2c', issuer: ' CN=JPKI ' }, 60_000)?.answer, {
    validity: '1',
  });
  t.equal(store.eligibility.get({ kind: 'card', certSerial: 'a1b2c', issuer: 'CN=other' }, 60_000), undefined);

  t.throws(() => store.eligibility.get({ ...person, insurerNumber: '13x998' }, 1), { code: 'STORE_INPUT_INVALID' });
  t.throws(() => store.eligibility.get({ ...person, birthdate: '1980041' }, 1), { code: 'STORE_INPUT_INVALID' });
  await t.rejects(store.eligibility.put(person, undefined, new Date()), { code: 'STORE_INPUT_INVALID' });
  await t.rejects(store.eligibility.put(person, answer, new Date(NaN)), { code: 'STORE_INPUT_INVALID' });
});

t.test('a late, older answer does not replace a fresher one', async (t) => {
  const { store } = await openStore(t);
  const now = Date.now();
  await store.eligibility.put(person, { v: 'new' }, new Date(now));
  await store.eligibility.put(person, { v: 'old' }, new Date(now - 3_600_000), 'batch');
  t.same(store.eligibility.get(person, 60_000)?.answer, { v: 'new' });
  await store.eligibility.put(person, { v: 'newer' }, new Date(now + 1000));
  t.same(store.eligibility.get(person, 60_000)?.answer, { v: 'newer' });
});

t.test('reconciliation: add, list, mark handled', async (t) => {
  const { store } = await openStore(t);
  const { id: outboxId } = await store.outbox.enqueue({ idempotencyKey: 'r1', kind: 'recheck', payload: {} });
  const { id } = await store.reconciliation.add({
    outboxId,
    before: { validity: '1' },
    after: { validity: '2' },
    changedFields: ['validity'],
  });
  const { id: id2 } = await store.reconciliation.add({
    outboxId,
    before: undefined,
    after: answer,
    changedFields: ['name'],
  });
  const open = store.reconciliation.list();
  t.equal(open.length, 2);
  t.same(open[0], {
    id,
    outboxId,
    before: { validity: '1' },
    after: { validity: '2' },
    changedFields: ['validity'],
    createdAt: open[0]!.createdAt,
  });
  t.equal(open[1]?.before, undefined);
  t.same(open[1]?.after, answer);
  await store.reconciliation.markHandled(id);
  t.same(
    store.reconciliation.list().map((r) => r.id),
    [id2],
  );
  const all = store.reconciliation.list({ includeHandled: true });
  t.equal(all.length, 2);
  t.type(all[0]?.handledAt, Date);
  await t.rejects(store.reconciliation.markHandled(999), { code: 'RECONCILIATION_NOT_FOUND' });
});

t.test('revocation list: replace, check, age', async (t) => {
  const { store } = await openStore(t);
  t.equal(store.revocation.age(), undefined, 'never fetched');
  t.equal(store.revocation.isRevoked('01'), false);
  const fetchedAt = new Date(Date.now() - 5000);
  t.same(
    await store.revocation.set(['0a:1b', 'FF', '00ff'], fetchedAt),
    { count: 2 },
    'duplicates after normalization count once',
  );
  t.ok(store.revocation.isRevoked('a1b'));
  t.ok(store.revocation.isRevoked('ff'));
  t.notOk(store.revocation.isRevoked('fe'));
  const age = store.revocation.age();
  t.ok(age !== undefined && age >= 5000 && age < 60_000, `age ${age}`);
  await store.revocation.set(['fe'], new Date());
  t.notOk(store.revocation.isRevoked('ff'), 'the list is replaced, not merged');
  t.ok(store.revocation.isRevoked('FE'));
});

t.test('meta values, reserved keys', async (t) => {
  const { store } = await openStore(t);
  t.equal(store.meta.get('sync.lastBatch'), undefined);
  await store.meta.set('sync.lastBatch', '2025-01-01');
  t.equal(store.meta.get('sync.lastBatch'), '2025-01-01');
  await t.rejects(store.meta.set('store.key_check', 'x'), { code: 'STORE_INPUT_INVALID' });
});

t.test('a closed store refuses with STORE_CLOSED; close is idempotent and drains queued writes', async (t) => {
  const dir = testdir(t);
  const store = await GatewayStore.open({ dir });
  const writes = Array.from({ length: 50 }, (_, i) =>
    store.outbox.enqueue({ idempotencyKey: `c${i}`, kind: 'k', payload: i }),
  );
  const closing = store.close();
  await Promise.all(writes);
  await Promise.all([closing, store.close()]);
  await t.rejects(store.outbox.enqueue({ idempotencyKey: 'late', kind: 'k', payload: 1 }), { code: 'STORE_CLOSED' });
  t.throws(() => store.eligibility.get(person, 1), { code: 'STORE_CLOSED' });
  t.throws(() => store.outbox.stats(), { code: 'STORE_CLOSED' });
  const again = await GatewayStore.open({ dir });
  t.equal(again.outbox.stats().depth, 50, 'every queued write was committed before close');
  await again.close();
});

t.test(
  'the cache size kept by triggers equals a count of the rows, through new answers and updates of old ones',
  async (t) => {
    const { store, dir } = await openStore(t);
    const other: LookupInput = { ...person, number: '99999' };
    const older = new Date(Date.now() - 60_000);
    await store.eligibility.put(person, answer, older);
    await store.eligibility.put(person, answer, new Date()); // the same person again: an update, not a row
    await store.eligibility.put(person, answer, older); // an older answer is not taken
    await store.eligibility.put(other, answer, new Date());
    const db = new Database(join(dir, DB_FILE), { readonly: true });
    t.teardown(() => db.close());
    t.equal(db.prepare('SELECT COUNT(*) FROM eligibility').pluck().get(), 2);
    t.equal(store.eligibility.count(), 2);
  },
);
