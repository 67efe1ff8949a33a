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
  await store.putEligibility(person, answer, verifiedAt);
  const got = store.getEligibility(person, 120_000);
  t.same(got?.answer, answer);
  t.equal(got?.verifiedAt.getTime(), verifiedAt.getTime());
  t.equal(got?.source, 'central');
  t.equal(store.getEligibility(person, 30_000), undefined, 'older than maxAge: a miss');
  t.equal(store.getEligibility({ ...person, number: '12346' }, 120_000), undefined, 'another person: a miss');
});

t.test('lookups are normalized', async (t) => {
  const { store } = await openStore(t);
  await store.putEligibility(person, answer, new Date());
  const same: LookupInput[] = [
    { ...person, insurerNumber: '139998' },
    { ...person, insurerNumber: '１３９９９８ ' },
    { ...person, number: '１２３４５' },
    { ...person, symbol: ' ﾃｽﾄ' },
    { ...person, branch: '00' },
    { ...person, birthdate: '1980-04-01' },
  ];
  for (const l of same) t.same(store.getEligibility(l, 60_000)?.answer, answer, JSON.stringify(l));
  t.equal(store.getEligibility({ ...person, branch: '01' }, 60_000), undefined, 'another branch is another person');
  t.equal(store.getEligibility({ ...person, symbol: undefined }, 60_000), undefined, 'no symbol ≠ a symbol');

  const card: LookupInput = { kind: 'card', certSerial: '0A:1B:2C', issuer: 'CN=JPKI' };
  await store.putEligibility(card, { validity: '1' }, new Date());
  t.same(store.getEligibility({ kind: 'card', certSerial: 'a1b2c', issuer: ' CN=JPKI ' }, 60_000)?.answer, {
    validity: '1',
  });
  t.equal(store.getEligibility({ kind: 'card', certSerial: 'a1b2c', issuer: 'CN=other' }, 60_000), undefined);

  t.throws(() => store.getEligibility({ ...person, insurerNumber: '13x998' }, 1), { code: 'STORE_INPUT_INVALID' });
  t.throws(() => store.getEligibility({ ...person, birthdate: '1980041' }, 1), { code: 'STORE_INPUT_INVALID' });
  await t.rejects(store.putEligibility(person, undefined, new Date()), { code: 'STORE_INPUT_INVALID' });
  await t.rejects(store.putEligibility(person, answer, new Date(NaN)), { code: 'STORE_INPUT_INVALID' });
});

t.test('a late, older answer does not replace a fresher one', async (t) => {
  const { store } = await openStore(t);
  const now = Date.now();
  await store.putEligibility(person, { v: 'new' }, new Date(now));
  await store.putEligibility(person, { v: 'old' }, new Date(now - 3_600_000), 'batch');
  t.same(store.getEligibility(person, 60_000)?.answer, { v: 'new' });
  await store.putEligibility(person, { v: 'newer' }, new Date(now + 1000));
  t.same(store.getEligibility(person, 60_000)?.answer, { v: 'newer' });
});

t.test('reconciliation: add, list, mark handled', async (t) => {
  const { store } = await openStore(t);
  const { id: outboxId } = await store.enqueue({ idempotencyKey: 'r1', kind: 'recheck', payload: {} });
  const { id } = await store.addReconciliation({
    outboxId,
    before: { validity: '1' },
    after: { validity: '2' },
    changedFields: ['validity'],
  });
  const { id: id2 } = await store.addReconciliation({
    outboxId,
    before: undefined,
    after: answer,
    changedFields: ['name'],
  });
  const open = store.listReconciliation();
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
  await store.markHandled(id);
  t.same(
    store.listReconciliation().map((r) => r.id),
    [id2],
  );
  const all = store.listReconciliation({ includeHandled: true });
  t.equal(all.length, 2);
  t.type(all[0]?.handledAt, Date);
  await t.rejects(store.markHandled(999), { code: 'RECONCILIATION_NOT_FOUND' });
});

t.test('revocation list: replace, check, age', async (t) => {
  const { store } = await openStore(t);
  t.equal(store.revocationAge(), undefined, 'never fetched');
  t.equal(store.isRevoked('01'), false);
  const fetchedAt = new Date(Date.now() - 5000);
  t.same(
    await store.setRevocationList(['0a:1b', 'FF', '00ff'], fetchedAt),
    { count: 2 },
    'duplicates after normalization count once',
  );
  t.ok(store.isRevoked('a1b'));
  t.ok(store.isRevoked('ff'));
  t.notOk(store.isRevoked('fe'));
  const age = store.revocationAge();
  t.ok(age !== undefined && age >= 5000 && age < 60_000, `age ${age}`);
  await store.setRevocationList(['fe'], new Date());
  t.notOk(store.isRevoked('ff'), 'the list is replaced, not merged');
  t.ok(store.isRevoked('FE'));
});

t.test('meta values, reserved keys', async (t) => {
  const { store } = await openStore(t);
  t.equal(store.getMeta('sync.lastBatch'), undefined);
  await store.setMeta('sync.lastBatch', '2025-01-01');
  t.equal(store.getMeta('sync.lastBatch'), '2025-01-01');
  await t.rejects(store.setMeta('store.key_check', 'x'), { code: 'STORE_INPUT_INVALID' });
});

t.test('a closed store refuses with STORE_CLOSED; close is idempotent and drains queued writes', async (t) => {
  const dir = testdir(t);
  const store = await GatewayStore.open({ dir });
  const writes = Array.from({ length: 50 }, (_, i) =>
    store.enqueue({ idempotencyKey: `c${i}`, kind: 'k', payload: i }),
  );
  const closing = store.close();
  await Promise.all(writes);
  await Promise.all([closing, store.close()]);
  await t.rejects(store.enqueue({ idempotencyKey: 'late', kind: 'k', payload: 1 }), { code: 'STORE_CLOSED' });
  t.throws(() => store.getEligibility(person, 1), { code: 'STORE_CLOSED' });
  t.throws(() => store.outboxStats(), { code: 'STORE_CLOSED' });
  const again = await GatewayStore.open({ dir });
  t.equal(again.outboxStats().depth, 50, 'every queued write was committed before close');
  await again.close();
});

t.test(
  'the cache size kept by triggers equals a count of the rows, through new answers and updates of old ones',
  async (t) => {
    const { store, dir } = await openStore(t);
    const other: LookupInput = { ...person, number: '99999' };
    const older = new Date(Date.now() - 60_000);
    await store.putEligibility(person, answer, older);
    await store.putEligibility(person, answer, new Date()); // the same person again: an update, not a row
    await store.putEligibility(person, answer, older); // an older answer is not taken
    await store.putEligibility(other, answer, new Date());
    const db = new Database(join(dir, DB_FILE), { readonly: true });
    t.teardown(() => db.close());
    t.equal(db.prepare('SELECT COUNT(*) FROM eligibility').pluck().get(), 2);
    t.equal(store.cacheEntries(), 2);
  },
);
