import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { DB_FILE, GatewayStore } from '../../src/cache/index.js';
import {
  BatchRunner,
  type BatchRunnerStore,
  type BatchCentral,
  type BatchEntryResult,
  type BatchProgress,
} from '../../src/checks/batch-runner.js';
import { CentralError } from '../../src/sync/central-client.js';
import type { BatchReceipt, BatchResult, BatchSubmitRequest, NumbersQuery } from '../../src/oqs/index.js';
import { testdir } from '../helpers/testdir.js';

const INST = '1319999994';

async function openStore(t: Test): Promise<{ store: GatewayStore; dir: string }> {
  const dir = testdir(t);
  const store = await GatewayStore.open({ dir });
  t.teardown(async () => {
    await store.close();
  });
  return { store, dir };
}

const entry = (i: number): { arbitraryId: string; query: NumbersQuery } => ({
  arbitraryId: `P${String(i).padStart(5, '0')}_1`,
  query: {
    insurerNumber: '06139992',
    symbol: 'テスト',
    number: String(10000 + i),
    branch: '00',
    birthdate: '19800401',
    limitConsent: '0',
    arbitraryId: `P${String(i).padStart(5, '0')}_1`,
  },
});

async function addBatch(
  store: GatewayStore,
  n: number,
  chunkSize: number,
  o: { batchId?: string; run?: 'now' | 'scheduled' } = {},
): Promise<string> {
  const batchId = o.batchId ?? 'b000000000000001';
  await store.batches.append({
    batchId,
    client: 'c1',
    create: { confirmationDate: '20250402', run: o.run ?? 'now' },
    entries: Array.from({ length: n }, (_, i) => entry(i)),
    close: { chunkSize },
    maxEntries: 10_000,
  });
  return batchId;
}

interface FakeOptions {
  /** fetches answered 処理中 before the answer */
  pendingFetches?: number;
  /** arbitraryIds central leaves out of its answer */
  drop?: Set<string>;
  /** arbitraryIds answered with a per-person error */
  personError?: Set<string>;
  /** refuse these file ids with SegmentOfResult 9 */
  refuse?: Set<string>;
  /** transient failures before each submit succeeds */
  submitFailures?: number;
  /** reception numbers that never finish */
  stuck?: Set<string>;
}

class FakeCentral implements BatchCentral {
  submits: { fileId: string; key: string; entries: number }[] = [];
  fetches: string[] = [];
  inFlight = new Set<string>();
  maxInFlight = 0;
  private readonly batches = new Map<string, { req: BatchSubmitRequest; pendingLeft: number }>();
  private readonly byKey = new Map<string, string>();
  private failuresLeft: number;
  private seq = 0;

  constructor(
    readonly o: FakeOptions = {},
    readonly prefix = 'R',
  ) {
    this.failuresLeft = o.submitFailures ?? 0;
  }

  async submitBatch(req: BatchSubmitRequest, call: { idempotencyKey?: string }): Promise<BatchReceipt> {
    await tick();
    const header = {
      processTime: '20250401120000',
      institutionCode: INST,
      segmentOfResult: '1' as const,
      characterCode: '0' as const,
      fileId: req.fileId!,
    };
    if (this.failuresLeft-- > 0)
      throw new CentralError('CENTRAL_UNAVAILABLE', 'central is unavailable (503)', { retryable: true });
    this.submits.push({ fileId: req.fileId!, key: call.idempotencyKey!, entries: req.entries.length });
    if (this.o.refuse?.has(req.fileId!))
      return { header: { ...header, segmentOfResult: '9', errorCode: 'TOO-LARGE', errorMessage: '上限超過' } };
    const known = this.byKey.get(call.idempotencyKey!);
    const rn = known ?? `${this.prefix}${++this.seq}`;
    this.byKey.set(call.idempotencyKey!, rn);
    this.batches.set(rn, { req, pendingLeft: this.o.pendingFetches ?? 0 });
    this.inFlight.add(rn);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
    return { header, receptionNumber: rn, receptionTime: '20250401120000' };
  }

  async fetchBatch(rn: string): Promise<BatchResult> {
    await tick();
    this.fetches.push(rn);
    const header = {
      processTime: '20250402070000',
      institutionCode: INST,
      receptionNumber: rn,
      characterCode: '0' as const,
    };
    const b = this.batches.get(rn);
    if (!b) return { header: { ...header, segmentOfResult: '9', errorCode: 'UNKNOWN' }, units: [] };
    if (this.o.stuck?.has(rn) || b.pendingLeft-- > 0) return { header: { ...header, segmentOfResult: '2' }, units: [] };
    this.inFlight.delete(rn);
    const units = b.req.entries
      .filter((q) => !this.o.drop?.has(q.arbitraryId!))
      .reverse()
      .map((q) =>
        this.o.personError?.has(q.arbitraryId!)
          ? { query: q, status: '2' as const, resultCode: 'E1', resultMessage: '該当なし', results: [] }
          : { query: q, status: '1' as const, validity: '1' as const, results: [] },
      );
    const errors = units.filter((u) => u.status === '2').length;
    return {
      header: {
        ...header,
        segmentOfResult: '1',
        confirmationDate: '20250402',
        total: units.length,
        normal: units.length - errors,
        errors,
      },
      units,
    };
  }
}

function runner(store: BatchRunnerStore, central: BatchCentral, concurrency = 2): BatchRunner {
  return new BatchRunner({
    store,
    central,
    institutionCode: INST,
    concurrency,
    pollMs: 1,
    pollMaxMs: 4,
    timeoutMs: 1000,
    sleep: async () => {
      await tick();
    },
  });
}

const done = (r: BatchRunner): Promise<BatchProgress> => new Promise((resolve) => r.once('done', resolve));

t.test(
  'chunks with bounded concurrency; one result per entry keyed by arbitraryId; per-entry errors typed',
  async (t) => {
    const { store, dir } = await openStore(t);
    const id = await addBatch(store, 25, 10);
    t.same(
      store.batches.chunks(id).map((c) => [c.chunk, c.state, c.entries]),
      [
        [0, 'pending', 10],
        [1, 'pending', 10],
        [2, 'pending', 5],
      ],
    );
    const central = new FakeCentral({
      pendingFetches: 2,
      drop: new Set(['P00003_1']),
      personError: new Set(['P00012_1']),
    });
    const r = runner(store, central, 2);
    const progress: BatchProgress[] = [];
    const results: BatchEntryResult[] = [];
    r.on('progress', (p: BatchProgress) => progress.push(p));
    r.on('results', (e: { results: BatchEntryResult[] }) => results.push(...e.results));
    const finished = done(r);
    r.start();
    const last = await finished;
    await r.stop();

    t.equal(central.maxInFlight, 2, 'never more than `concurrency` chunks at central at once');
    t.same(central.submits.map((s) => [s.fileId, s.key, s.entries]).sort(), [
      [`B${id}-0`, `batch-${id}-0`, 10],
      [`B${id}-1`, `batch-${id}-1`, 10],
      [`B${id}-2`, `batch-${id}-2`, 5],
    ]);
    t.equal(central.fetches.length, 9, 'each chunk fetched until central stopped saying 処理中');
    t.match(last, { batchId: id, state: 'done', total: 25, finished: 25, errors: 2, chunks: 3 });
    t.same(
      progress.map((p) => p.finished),
      [...new Set(progress.map((p) => p.finished))].sort((a, b) => a - b),
      'progress counts only grow',
    );
    t.equal(progress[progress.length - 1]!.finished, 25);
    t.equal(progress.length, 3);

    const page = store.batches.entries(id, 0, 100);
    t.equal(page.length, 25);
    t.same(
      page.map((e) => e.arbitraryId),
      Array.from({ length: 25 }, (_, i) => entry(i).arbitraryId),
      'in submission order, whatever order central answered in',
    );
    t.ok(
      page.every((e) => e.state !== 'pending' && e.result !== undefined),
      'every entry holds a result',
    );
    const byId = new Map(page.map((e) => [e.arbitraryId, e.result as BatchEntryResult]));
    t.match(byId.get('P00003_1'), { state: 'error', error: { code: 'BATCH_ENTRY_UNANSWERED' } });
    t.match(byId.get('P00012_1'), { state: 'answered', result: { status: '2', resultCode: 'E1' } });
    t.match(byId.get('P00000_1'), {
      state: 'answered',
      result: { status: '1', validity: '1', validityLabel: String, source: 'central' },
    });
    t.same(
      results.map((e) => e.arbitraryId).sort(),
      page.map((e) => e.arbitraryId).sort(),
      'results events carry each entry once',
    );
    t.match(store.batches.list(), [
      { id, state: 'done', total: 25, done: 25, errors: 2, client: 'c1', finishedAt: String, submittedAt: String },
    ]);

    await store.close();
    const raw = readFileSync(join(dir, DB_FILE));
    t.notOk(raw.includes(Buffer.from('P00012_1')), 'arbitraryIds are not in the database file in clear');
    t.notOk(raw.includes(Buffer.from('10012')), 'the insured numbers are not either');
  },
);

t.test(
  'restart: a submitted chunk is fetched by its reception number, a finished one is never touched again',
  async (t) => {
    const dir = testdir(t);
    const first = await GatewayStore.open({ dir });
    const id = await addBatch(first, 30, 10);
    // chunk 1 (R2) never finishes before the "crash"; concurrency 2 → chunk 2 is never submitted
    const c1 = new FakeCentral({ stuck: new Set(['R2']) });
    const r1 = runner(first, c1, 2);
    const progressed = new Promise<void>((resolve) => r1.on('progress', () => resolve()));
    r1.start();
    await progressed;
    // let chunk 2 be taken by the freed worker, then stop "mid-batch"
    while (c1.submits.length < 3) await tick();
    await r1.stop();
    await first.close();
    const chunkStates = (s: GatewayStore) =>
      s.batches.chunks(id).map((c) => [c.chunk, c.state, c.receptionNumber ?? null]);

    const second = await GatewayStore.open({ dir });
    t.teardown(() => second.close());
    t.same(
      chunkStates(second),
      [
        [0, 'done', 'R1'],
        [1, 'submitted', 'R2'],
        [2, 'submitted', 'R3'],
      ],
      'the durable state after the stop',
    );
    const before = second.batches.entries(id, 0, 10).map((e) => JSON.stringify(e.result));

    // the same central, now finishing everything
    c1.o.stuck?.clear();
    c1.submits = [];
    c1.fetches = [];
    const r2 = runner(second, c1, 2);
    const finished = done(r2);
    r2.start();
    const last = await finished;
    await r2.stop();
    t.same(c1.submits, [], 'nothing was submitted again');
    t.notOk(c1.fetches.includes('R1'), 'the finished chunk was not fetched again');
    t.ok(
      c1.fetches.includes('R2') && c1.fetches.includes('R3'),
      'the submitted chunks were fetched by their reception numbers',
    );
    t.match(last, { state: 'done', total: 30, finished: 30, errors: 0 });
    t.same(
      second.batches.entries(id, 0, 10).map((e) => JSON.stringify(e.result)),
      before,
      'the finished chunk kept its results',
    );
    t.equal(second.batches.entries(id, 0, 100).filter((e) => e.result !== undefined).length, 30);
    t.same(second.batches.runnable(), []);
  },
);

t.test('a pending chunk after a crash is submitted under the same idempotency key', async (t) => {
  const { store } = await openStore(t);
  const id = await addBatch(store, 5, 5);
  const central = new FakeCentral({ submitFailures: 2 });
  const r = runner(store, central, 1);
  const finished = done(r);
  r.start();
  await finished;
  await r.stop();
  t.same(
    central.submits.map((s) => s.key),
    [`batch-${id}-0`],
    'two transient failures, then one submit',
  );
  t.equal(store.batches.chunks(id)[0]!.lastError, undefined, 'the last error is cleared once submitted');
  t.same(
    await store.batches.prune(new Date(Date.now() - 60_000)),
    { batches: 0, entries: 0 },
    'retention keeps a batch finished within the window',
  );
  t.same(
    await store.batches.prune(new Date(Date.now() + 60_000)),
    { batches: 1, entries: 5 },
    'and deletes it, entries and all, after it',
  );
  t.same([store.batches.get(id), store.batches.chunks(id), store.batches.entries(id, 0, 10)], [undefined, [], []]);
});

t.test('a chunk central refuses fails as a whole; every entry gets a typed error; the batch is failed', async (t) => {
  const { store } = await openStore(t);
  const id = await addBatch(store, 12, 5);
  const central = new FakeCentral({ refuse: new Set([`B${id}-1`]) });
  const r = runner(store, central, 3);
  const finished = done(r);
  r.start();
  const last = await finished;
  await r.stop();
  t.match(last, { state: 'failed', total: 12, finished: 12, errors: 5 });
  const rows = store.batches.entries(id, 5, 5);
  t.ok(rows.every((e) => (e.result as BatchEntryResult).state === 'error'));
  t.match(rows[0]!.result, { error: { code: 'BATCH_CHUNK_REFUSED', details: { centralCode: 'TOO-LARGE' } } });
  t.same(
    store.batches.chunks(id).map((c) => c.state),
    ['done', 'failed', 'done'],
  );
});

t.test('scheduled batches wait for the schedule; parts are validated across the whole batch', async (t) => {
  const { store } = await openStore(t);
  const id = 'b00000000000000a';
  await store.batches.append({
    batchId: id,
    client: 'c1',
    create: { confirmationDate: '20250402', run: 'scheduled' },
    entries: [entry(0), entry(1)],
    maxEntries: 4,
  });
  t.match(store.batches.get(id), { state: 'open', total: 2 });
  await t.rejects(
    store.batches.append({ batchId: id, client: 'c2', entries: [entry(2)], maxEntries: 4 }),
    { code: 'BATCH_NOT_FOUND' },
    "another client's batch is not found",
  );
  await t.rejects(store.batches.append({ batchId: id, client: 'c1', entries: [entry(2), entry(1)], maxEntries: 4 }), {
    code: 'BATCH_ENTRY_INVALID',
    details: { index: 3, sameAs: 1, reason: 'duplicate-identifier' },
  });
  t.equal(store.batches.get(id)!.total, 2, 'nothing of the refused part was kept');
  await t.rejects(
    store.batches.append({ batchId: id, client: 'c1', entries: [entry(2), entry(3), entry(4)], maxEntries: 4 }),
    { code: 'BATCH_TOO_LARGE' },
  );
  await store.batches.append({
    batchId: id,
    client: 'c1',
    entries: [entry(2)],
    close: { chunkSize: 2 },
    maxEntries: 4,
  });
  await t.rejects(store.batches.append({ batchId: id, client: 'c1', entries: [entry(3)], maxEntries: 4 }), {
    code: 'BATCH_NOT_OPEN',
  });
  t.same(store.batches.runnable(), [], 'a scheduled batch does not start by itself');
  t.same(store.batches.scheduled(), [id]);
  const central = new FakeCentral();
  const r = runner(store, central, 2);
  r.start();
  await tick();
  t.same(central.submits, []);
  const finished = done(r);
  t.equal(await r.runScheduled(), 1);
  t.match(await finished, { state: 'done', total: 3, chunks: 2 });
  await r.stop();
});

t.test('while the line is down nothing is sent; the batch goes on when it is back', async (t) => {
  const { store } = await openStore(t);
  const id = await addBatch(store, 4, 2);
  const central = new FakeCentral();
  let up = false;
  let waits = 0;
  const r = new BatchRunner({
    store,
    central,
    institutionCode: INST,
    concurrency: 2,
    pollMs: 1,
    pollMaxMs: 4,
    timeoutMs: 1000,
    allowRequest: () => up,
    sleep: async () => {
      waits++;
      await tick();
    },
  });
  const finished = done(r);
  r.start();
  while (waits < 20) await tick();
  t.same(central.submits, [], 'no submit while the line is down');
  t.same(
    store.batches.chunks(id).map((c) => c.state),
    ['pending', 'pending'],
  );
  up = true;
  t.match(await finished, { state: 'done', total: 4, finished: 4 });
  await r.stop();
});

t.test('stop() ends chunks that wait on central; their state stays for the next start', async (t) => {
  const { store } = await openStore(t);
  const id = await addBatch(store, 4, 2);
  const central = new FakeCentral({ stuck: new Set(['R1', 'R2']) });
  const r = new BatchRunner({
    store,
    central,
    institutionCode: INST,
    concurrency: 2,
    pollMs: 60_000,
    pollMaxMs: 60_000,
    timeoutMs: 1000,
  });
  r.start();
  while (central.submits.length < 2) await tick();
  await waitForChunks(store, id, 'submitted');
  await r.stop(); // real timers of a minute: stop must wake them
  t.equal(r.activeChunks, 0);
  t.same(
    store.batches.chunks(id).map((c) => c.state),
    ['submitted', 'submitted'],
  );
});

async function waitForChunks(store: GatewayStore, id: string, state: string): Promise<void> {
  while (!store.batches.chunks(id).every((c) => c.state === state)) await new Promise((r) => setTimeout(r, 5));
}

t.test('the next chunk is read while the current one waits for central, once', async (t) => {
  const { store } = await openStore(t);
  const id = await addBatch(store, 30, 10);
  const log: string[] = [];
  const reads = new Map<number, number>();
  // the runner takes only the batches facade: count its chunk reads there
  const counting = {
    batches: new Proxy(store.batches, {
      get(target, prop, receiver) {
        if (prop === 'chunkQueries') {
          return (batchId: string, chunk: number) => {
            log.push(`read ${chunk}`);
            reads.set(chunk, (reads.get(chunk) ?? 0) + 1);
            return target.chunkQueries(batchId, chunk);
          };
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }),
  };
  const fake = new FakeCentral({ pendingFetches: 1 });
  const central: BatchCentral = {
    submitBatch: async (req, call) => {
      log.push(`submit ${req.fileId!.split('-')[1]}`);
      return fake.submitBatch(req, call);
    },
    fetchBatch: async (rn) => {
      log.push('fetch');
      return fake.fetchBatch(rn);
    },
  };
  const r = runner(counting, central, 1);
  const finished = done(r);
  r.start();
  await finished;
  await r.stop();
  t.same(
    [...reads.entries()].sort(),
    [
      [0, 1],
      [1, 1],
      [2, 1],
    ],
    'each chunk read (decrypted) once',
  );
  // One slot: without reading ahead, a chunk would be read only after the one before had its
  // answer (its second fetch: central says 処理中 once). With it, chunk n+1 is read after chunk n's
  // submit and before chunk n's second fetch. Where the first fetch falls against the read depends
  // on when the writer thread confirms the submit, so it is not asserted.
  t.same(
    log.filter((l) => l !== 'fetch'),
    ['read 0', 'submit 0', 'read 1', 'submit 1', 'read 2', 'submit 2'],
    'reads and submits in chunk order',
  );
  for (const chunk of [1, 2]) {
    const submitted = log.indexOf(`submit ${chunk - 1}`);
    const fetches = log.flatMap((l, i) => (l === 'fetch' && i > submitted ? [i] : []));
    t.ok(
      log.indexOf(`read ${chunk}`) < fetches[1]!,
      `chunk ${chunk} read before chunk ${chunk - 1}'s answer came (its slot still busy): ${log.join(', ')}`,
    );
  }
  t.equal(log.filter((l) => l === 'fetch').length, 6, 'two fetches a chunk');
  t.equal(store.batches.entries(id, 0, 100).filter((e) => e.state !== 'pending').length, 30);
});
