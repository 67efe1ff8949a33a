import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DB_FILE, GatewayStore, type LookupInput } from '../../src/cache/index.js';
import { testdir } from '../helpers/testdir.js';

async function openStore(t: Test, outboxMax?: number): Promise<{ store: GatewayStore; dir: string }> {
  const dir = testdir(t);
  const store = await GatewayStore.open({ dir, ...(outboxMax ? { outboxMax } : {}) });
  t.teardown(() => store.close());
  return { store, dir };
}

t.test('FIFO: oldest first, marked inflight, only due entries', async (t) => {
  const { store } = await openStore(t);
  const ids: number[] = [];
  for (let i = 0; i < 5; i++)
    ids.push((await store.outbox.enqueue({ idempotencyKey: `k${i}`, kind: 'recheck', payload: { i } })).id);
  const first = await store.outbox.nextDue(3);
  t.same(
    first.map((e) => e.id),
    ids.slice(0, 3),
  );
  t.same(
    first.map((e) => e.payload),
    [{ i: 0 }, { i: 1 }, { i: 2 }],
  );
  t.ok(first.every((e) => e.attempts === 1 && e.kind === 'recheck'));
  t.same(
    (await store.outbox.nextDue(10)).map((e) => e.id),
    ids.slice(3),
    'inflight entries are not handed out twice',
  );
  t.same(await store.outbox.nextDue(10), []);
  t.equal(store.outbox.stats().depth, 5, 'inflight still counts in depth');

  // retry later: back to pending, due only at retryAt, keeps its place in line
  const now = Date.now();
  await store.outbox.complete(ids[0]!, { retryAt: new Date(now + 60_000), error: 'CENTRAL_TIMEOUT' });
  await store.outbox.complete(ids[1]!, { retryAt: new Date(now - 1), error: 'CENTRAL_TIMEOUT' });
  await store.outbox.complete(ids[2]!, 'done');
  t.same(
    (await store.outbox.nextDue(10, new Date(now))).map((e) => e.id),
    [ids[1]],
  );
  const later = await store.outbox.nextDue(10, new Date(now + 61_000));
  t.same(
    later.map((e) => [e.id, e.attempts, e.lastError]),
    [[ids[0], 2, 'CENTRAL_TIMEOUT']],
  );
  t.equal(store.outbox.stats().depth, 4);
  await t.rejects(store.outbox.complete(ids[2]!, 'done'), { code: 'OUTBOX_NOT_INFLIGHT' });
  await t.rejects(store.outbox.complete(12345, 'done'), { code: 'OUTBOX_NOT_FOUND' });
});

t.test('settleOutbox: the cache write and the outcome commit together, then the next entries are taken', async (t) => {
  const { store } = await openStore(t);
  const ids: number[] = [];
  for (let i = 0; i < 3; i++)
    ids.push((await store.outbox.enqueue({ idempotencyKey: `s${i}`, kind: 'numbers', payload: { i } })).id);
  const [first] = await store.outbox.nextDue(1);
  const person: LookupInput = { kind: 'numbers', insurerNumber: '06139999', number: '12345', birthdate: '19800101' };
  const write = store.eligibility.write(person, { validity: '1' }, new Date());
  const next = await store.outbox.settle(first!.id, 'done', { writes: [write], next: 2 });
  t.same(
    next.map((e) => [e.id, e.attempts]),
    [
      [ids[1], 1],
      [ids[2], 1],
    ],
    'the next ones, marked inflight',
  );
  t.same(store.eligibility.get(person, 60_000)?.answer, { validity: '1' }, 'the cache write is in');
  t.equal(store.outbox.stats().depth, 2, 'the first is done');
  // A refused outcome undoes the cache write of the same call: nothing of it stands.
  const other: LookupInput = { ...person, number: '99999' };
  await t.rejects(
    store.outbox.settle(first!.id, 'done', {
      writes: [store.eligibility.write(other, { validity: '1' }, new Date())],
      next: 1,
    }),
    { code: 'OUTBOX_NOT_INFLIGHT' },
  );
  t.equal(store.eligibility.get(other, 60_000), undefined, 'no cache write without its outcome');
  t.same(await store.outbox.settle(ids[1]!, 'done', { next: 0 }), [], 'next: 0 takes nothing');
});

t.test(
  'an entry that cannot be decrypted is parked as dead; after settleOutbox the error says the outcome stood',
  async (t) => {
    const { store, dir } = await openStore(t);
    const ids: number[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await store.outbox.enqueue({ idempotencyKey: `c${i}`, kind: 'numbers', payload: { i } })).id);
    const raw = new Database(join(dir, DB_FILE));
    raw.prepare('UPDATE outbox SET payload = ? WHERE id IN (?, ?)').run(Buffer.alloc(40, 1), ids[1], ids[2]);
    raw.close();
    const [first] = await store.outbox.nextDue(1);
    t.equal(first?.id, ids[0], 'the readable one is handed out');
    await t.rejects(store.outbox.settle(first!.id, 'done', { next: 1 }), {
      code: 'STORE_CORRUPT',
      details: { ids: [ids[1]], settled: true },
    });
    t.match(store.outbox.stats(), { depth: 1, dead: 1 }, 'the first is done, the bad one dead');
    const e = await store.outbox
      .nextDue(1)
      .catch((x: unknown) => x as { code: string; details: Record<string, unknown> });
    t.match(e, { code: 'STORE_CORRUPT', details: { ids: [ids[2]] } });
    t.notOk('settled' in (e as { details: Record<string, unknown> }).details, 'nextDue alone settles nothing');
  },
);

t.test('the idempotency key is unique: a duplicate returns the existing id, no second row', async (t) => {
  const { store, dir } = await openStore(t);
  const a = await store.outbox.enqueue({ idempotencyKey: 'same', kind: 'recheck', payload: { v: 1 } });
  const b = await store.outbox.enqueue({ idempotencyKey: 'same', kind: 'recheck', payload: { v: 2 } });
  t.same(a, { id: a.id, depth: 1, duplicate: false });
  t.same(b, { id: a.id, depth: 1, duplicate: true });
  const [both1, both2] = await Promise.all([
    store.outbox.enqueue({ idempotencyKey: 'race', kind: 'k', payload: 1 }),
    store.outbox.enqueue({ idempotencyKey: 'race', kind: 'k', payload: 2 }),
  ]);
  t.equal(both1.id, both2.id, 'concurrent duplicates too');
  const due = await store.outbox.nextDue(10);
  t.same(
    due.map((e) => e.payload),
    [{ v: 1 }, 1],
    'the first payload is kept',
  );
  await store.outbox.complete(a.id, 'done');
  t.same(
    await store.outbox.enqueue({ idempotencyKey: 'same', kind: 'recheck', payload: {} }),
    { id: a.id, depth: 1, duplicate: true },
    'even once done',
  );
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  t.equal(db.prepare('SELECT COUNT(*) FROM outbox').pluck().get(), 2);
  db.close();
});

t.test('the size cap refuses explicitly and never drops old entries', async (t) => {
  const { store } = await openStore(t, 3);
  for (let i = 0; i < 3; i++) await store.outbox.enqueue({ idempotencyKey: `k${i}`, kind: 'k', payload: i });
  await t.rejects(store.outbox.enqueue({ idempotencyKey: 'k3', kind: 'k', payload: 3 }), {
    code: 'OUTBOX_FULL',
    retryable: true,
    details: { depth: 3, max: 3 },
  });
  t.same(store.outbox.stats(), { depth: 3, dead: 0, fillRatio: 1, oldestAt: store.outbox.stats().oldestAt });
  t.same(
    await store.outbox.enqueue({ idempotencyKey: 'k0', kind: 'k', payload: 0 }).then((r) => r.duplicate),
    true,
    'a duplicate is still answered when full',
  );
  const [e] = await store.outbox.nextDue(1);
  t.equal(e?.payload, 0, 'the oldest is still there');
  await store.outbox.complete(e!.id, 'done');
  t.equal(
    (await store.outbox.enqueue({ idempotencyKey: 'k3', kind: 'k', payload: 3 })).depth,
    3,
    'room again once one is done',
  );
  // a refusal inside a group commit does not undo the others of the batch
  await store.outbox.complete((await store.outbox.nextDue(1))[0]!.id, 'done');
  const results = await Promise.allSettled(
    [0, 1, 2].map((i) => store.outbox.enqueue({ idempotencyKey: `b${i}`, kind: 'k', payload: i })),
  );
  t.same(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'rejected'],
  );
  t.equal(store.outbox.stats().depth, 3);
});

t.test('dead entries are kept, counted, and not handed out; stats', async (t) => {
  const { store } = await openStore(t, 10);
  t.same(store.outbox.stats(), { depth: 0, dead: 0, fillRatio: 0 });
  const t0 = new Date(Date.now() - 10_000);
  await store.outbox.enqueue({ idempotencyKey: 'x', kind: 'k', payload: 1 }, t0);
  await store.outbox.enqueue({ idempotencyKey: 'y', kind: 'k', payload: 2 });
  const [x] = await store.outbox.nextDue(1);
  await store.outbox.complete(x!.id, { dead: 'CENTRAL_REJECTED' });
  const st = store.outbox.stats();
  t.equal(st.depth, 1);
  t.equal(st.dead, 1);
  t.equal(st.fillRatio, 0.1);
  t.ok(st.oldestAt && st.oldestAt.getTime() > t0.getTime(), 'oldestAt is the oldest live entry');
  t.same(
    (await store.outbox.nextDue(10)).map((e) => e.payload),
    [2],
  );
  t.equal(await store.outbox.prune(new Date(Date.now() + 1000)), 0, 'nothing done yet');
});

t.test('inflight entries left by a crash go back to pending at open', async (t) => {
  const dir = testdir(t);
  const s1 = await GatewayStore.open({ dir });
  await s1.outbox.enqueue({ idempotencyKey: 'a', kind: 'k', payload: 'a' });
  await s1.outbox.enqueue({ idempotencyKey: 'b', kind: 'k', payload: 'b' });
  t.equal((await s1.outbox.nextDue(10)).length, 2);
  await s1.close();
  const s2 = await GatewayStore.open({ dir });
  t.teardown(() => s2.close());
  t.ok(s2.startupAlerts.some((a) => a.code === 'OUTBOX_INFLIGHT_RESET' && a.details?.count === 2));
  const again = await s2.outbox.nextDue(10);
  t.same(
    again.map((e) => [e.payload, e.attempts]),
    [
      ['a', 2],
      ['b', 2],
    ],
  );
  for (const e of again) await s2.outbox.complete(e.id, 'done');
  t.equal(await s2.outbox.prune(new Date(Date.now() + 1000)), 2, 'done entries can be pruned');
});

t.test('the depth kept by triggers equals a count of the open entries through every transition', async (t) => {
  const { store } = await openStore(t, 50);
  const db = new Database(store.dbPath, { readonly: true });
  t.teardown(() => db.close());
  const truth = (): number =>
    db.prepare(`SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'inflight')`).pluck().get() as number;
  const check = (what: string): void => {
    t.equal(store.outbox.stats().depth, truth(), what);
  };
  const ids: number[] = [];
  for (let i = 0; i < 12; i++)
    ids.push((await store.outbox.enqueue({ idempotencyKey: `d${i}`, kind: 'numbers', payload: { i } })).id);
  check('after enqueues');
  t.equal(truth(), 12);
  await store.outbox.enqueue({ idempotencyKey: 'd0', kind: 'numbers', payload: { i: 0 } });
  check('a duplicate adds nothing');
  await store.outbox.nextDue(6);
  check('pending → inflight');
  await store.outbox.complete(ids[0]!, 'done');
  await store.outbox.complete(ids[1]!, { dead: 'CENTRAL_REFUSED' });
  await store.outbox.complete(ids[2]!, { retryAt: new Date(Date.now() - 1), error: 'CENTRAL_TIMEOUT' });
  check('done, dead, retry');
  t.equal(truth(), 10);
  t.equal(await store.outbox.prune(new Date(Date.now() + 1000)), 1);
  check('prune of a done entry');
  // the cap uses the same counter: 10 open + 40 more fill it, the next is refused
  for (let i = 0; i < 40; i++) await store.outbox.enqueue({ idempotencyKey: `f${i}`, kind: 'numbers', payload: {} });
  await t.rejects(store.outbox.enqueue({ idempotencyKey: 'over', kind: 'numbers', payload: {} }), {
    code: 'OUTBOX_FULL',
  });
  check('a refused enqueue (savepoint rolled back) leaves the counter alone');
  t.equal(truth(), 50);
});

t.test('requests made in one go cross to the writer as one message and are answered each on its own', async (t) => {
  const { store } = await openStore(t, 30);
  const { Worker } = await import('node:worker_threads');
  const real = Worker.prototype.postMessage;
  let posts = 0;
  Worker.prototype.postMessage = function (this: InstanceType<typeof Worker>, ...a: Parameters<typeof real>) {
    posts++;
    return real.apply(this, a);
  };
  let answers: PromiseSettledResult<{ id: number; duplicate: boolean }>[];
  try {
    // 32 at once against a cap of 30: one message, one group commit, and the two over the cap refused alone.
    answers = await Promise.allSettled(
      Array.from({ length: 32 }, (_x, i) =>
        store.outbox.enqueue({ idempotencyKey: `b${i}`, kind: 'recheck', payload: { i } }),
      ),
    );
  } finally {
    Worker.prototype.postMessage = real;
  }
  t.equal(posts, 1, 'one message to the writer');
  const ok = answers
    .filter((a) => a.status === 'fulfilled')
    .map((a) => (a as PromiseFulfilledResult<{ id: number }>).value.id);
  t.equal(ok.length, 30);
  t.equal(new Set(ok).size, 30, 'each request got its own answer');
  t.match(answers.slice(30), [
    { status: 'rejected', reason: { code: 'OUTBOX_FULL' } },
    { status: 'rejected', reason: { code: 'OUTBOX_FULL' } },
  ]);
  t.equal(store.outbox.stats().depth, 30);
});

t.test('an entry taken but never sent goes back with its attempt given back and its last error kept', async (t) => {
  const { store, dir } = await openStore(t);
  const { id } = await store.outbox.enqueue({ idempotencyKey: 'u1', kind: 'recheck', payload: { u: 1 } });
  t.equal((await store.outbox.nextDue(1))[0]!.attempts, 1);
  await store.outbox.complete(id, { retryAt: new Date(Date.now() - 1), error: 'CENTRAL_TIMEOUT' }); // sent, and failed
  t.equal((await store.outbox.nextDue(1))[0]!.attempts, 2);
  await store.outbox.complete(id, { retryAt: new Date(Date.now() - 1), error: 'RELAY_PAUSED', unsent: true }); // taken, never sent
  const again = await store.outbox.nextDue(1);
  t.equal(again[0]!.attempts, 2, 'the unsent take did not count');
  t.equal(again[0]!.lastError, 'CENTRAL_TIMEOUT', 'the last real failure is what staff see');
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  t.teardown(() => db.close());
  t.same(db.prepare('SELECT state, attempts FROM outbox WHERE id = ?').get(id), { state: 'inflight', attempts: 2 });
});
