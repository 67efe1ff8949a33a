/**
 * The writer channel's messages: requests made in one turn of the event loop cross to the writer
 * in one message, even when separate I/O callbacks made them (each followed by its microtasks);
 * once FLUSH_MAX wait they leave without waiting for the end of the turn.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, stat } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayStore } from '../../src/cache/index.js';
import { FLUSH_MAX } from '../../src/cache/store/writer-channel.js';

async function openStore(t: Test): Promise<GatewayStore> {
  const dir = mkdtempSync(join(tmpdir(), 'onshi-channel-'));
  const store = await GatewayStore.open({ dir });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

/** The number of requests in each message posted to the writer from now on. */
function messages(store: GatewayStore): number[] {
  const worker = (store as unknown as { channel: { worker: { postMessage(m: unknown): void } } }).channel.worker;
  const sizes: number[] = [];
  const post = worker.postMessage.bind(worker);
  worker.postMessage = (m: unknown) => {
    const msg = m as { type: string; requests?: unknown[] };
    sizes.push(msg.type === 'req-batch' ? msg.requests!.length : 1);
    post(m);
  };
  return sizes;
}

const audit = (i: number) => ({ kind: 'check' as const, actor: 'c1', action: 'inquiry.numbers', outcome: `n${i}` });

t.test('requests from separate I/O callbacks of one turn cross in one message', async (t) => {
  const store = await openStore(t);
  const sizes = messages(store);
  const n = 6;
  const done: Promise<{ seq: number }>[] = [];
  const all = new Promise<void>((resolve) => {
    let left = n;
    for (let i = 0; i < n; i++) {
      // thread-pool callbacks: completed together, run one after the other in one poll phase, with
      // the microtasks drained after each (a microtask flush would send one message each)
      stat(tmpdir(), () => {
        done.push(store.audit.append(audit(i)));
        void Promise.resolve().then(() => undefined);
        if (--left === 0) resolve();
      });
    }
  });
  const until = Date.now() + 50;
  while (Date.now() < until); // let every stat finish before the loop polls
  await all;
  const seqs = await Promise.all(done);
  t.same(sizes, [n], `${n} requests, one message`);
  t.same(
    seqs.map((s) => s.seq),
    [1, 2, 3, 4, 5, 6],
    'each got its own answer, in call order',
  );
});

t.test(
  'from separate I/O callbacks, FLUSH_MAX waiting leave at once: a large burst does not wait for the end of the turn',
  async (t) => {
    const store = await openStore(t);
    const sizes = messages(store);
    const n = 2 * FLUSH_MAX + 5;
    const done: Promise<{ seq: number }>[] = [];
    const all = new Promise<void>((resolve) => {
      let left = n;
      for (let i = 0; i < n; i++)
        stat(tmpdir(), () => {
          done.push(store.audit.append(audit(i)));
          if (--left === 0) resolve();
        });
    });
    const until = Date.now() + 50;
    while (Date.now() < until);
    await all;
    t.same(sizes, [FLUSH_MAX, FLUSH_MAX], 'two full messages left within the turn');
    await Promise.all(done);
    t.same(sizes, [FLUSH_MAX, FLUSH_MAX, 5], 'the rest at its end');
    t.equal(store.audit.list({ limit: 100 }).length, n, 'all committed');
  },
);

t.test('a burst made in one go leaves at once, in one message', async (t) => {
  const store = await openStore(t);
  const sizes = messages(store);
  const n = FLUSH_MAX + 4;
  const writes = Array.from({ length: n }, (_, i) => store.audit.append(audit(i)));
  await Promise.resolve();
  t.same(sizes, [n], 'posted before the end of the turn');
  await Promise.all(writes);
  t.same(sizes, [n]);
});

t.test('deferred writes leave with the next foreground message', async (t) => {
  const store = await openStore(t);
  const sizes = messages(store);
  const deferred = [1, 2].map((i) => store.audit.append(audit(i), new Date(), { defer: true }));
  await new Promise((r) => setImmediate(r));
  t.same(sizes, [], 'nothing left for the deferred ones alone');
  await store.audit.append(audit(3));
  await Promise.all(deferred);
  t.same(sizes, [3], 'one message with the deferred ones first');
});
