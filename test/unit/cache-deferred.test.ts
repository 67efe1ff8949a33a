/**
 * Deferred writes (CallOptions.defer): a write nobody waits for may wait up to DEFER_MS to share a
 * commit; a foreground request takes the waiting ones along; close commits them; order is kept.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayStore, type LookupInput } from '../../src/cache/index.js';
import { DEFER_MS } from '../../src/cache/store/writer-channel.js';

async function openStore(t: Test): Promise<{ store: GatewayStore; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'onshi-defer-'));
  const store = await GatewayStore.open({ dir });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, dir };
}

const person = (n: number): LookupInput => ({
  kind: 'numbers',
  insurerNumber: '06139992',
  number: String(10000 + n),
  birthdate: '19800401',
});
const audit = (i: number) => ({ kind: 'check' as const, actor: 'c1', action: 'inquiry.numbers', outcome: `n${i}` });

t.test('a deferred write is not committed at once, and is within DEFER_MS', async (t) => {
  const { store } = await openStore(t);
  const done = store.eligibility.put(person(1), { validity: '1' }, new Date(), 'central', { defer: true });
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.equal(store.eligibility.get(person(1), 60_000), undefined, 'not yet committed after two turns');
  await done;
  t.same(store.eligibility.get(person(1), 60_000)?.answer, { validity: '1' }, 'committed once it resolves');
});

t.test('a foreground write takes the waiting ones along, in call order', async (t) => {
  const { store } = await openStore(t);
  const deferred = [1, 2, 3].map((i) => store.audit.append(audit(i), new Date(), { defer: true }));
  const t0 = performance.now();
  const fg = await store.audit.append(audit(4));
  const seqs = await Promise.all(deferred);
  t.ok(performance.now() - t0 < DEFER_MS * 20, 'the foreground write did not wait for the timer');
  t.same(
    seqs.map((s) => s.seq),
    [1, 2, 3],
    'the deferred entries came first',
  );
  t.equal(fg.seq, 4);
  t.same(
    store.audit.list({ limit: 10 }).map((e) => e.outcome),
    ['n1', 'n2', 'n3', 'n4'],
  );
});

t.test('close commits what is deferred', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'onshi-defer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = await GatewayStore.open({ dir });
  const pending = store.eligibility.put(person(2), { validity: '1' }, new Date(), 'central', { defer: true });
  await store.close();
  await pending;
  const again = await GatewayStore.open({ dir });
  t.teardown(() => again.close());
  t.same(again.eligibility.get(person(2), 60_000)?.answer, { validity: '1' }, 'it is in the file');
});

t.test('many deferred writes go without waiting for the timer', async (t) => {
  const { store } = await openStore(t);
  const writes = Array.from({ length: 64 }, (_, i) => store.audit.append(audit(i), new Date(), { defer: true }));
  const got = await Promise.all(writes);
  t.equal(got.length, 64);
  t.equal(store.audit.list({ limit: 100 }).length, 64);
});
