/**
 * The batch API over the real WebSocket server, the real store and the central simulator over
 * mutual TLS (in-process daemon): parts, validation that names the entry, ownership, the
 * schedule, paged results under the frame limit, events only to the submitting client.
 */
import t from 'tap';
import { peopleRows } from '../../src/sim/central/population.js';
import type { GatewayEvent } from '../../src/protocol/events.js';
import { todayJst } from '../../src/oqs/dates.js';
import { startHarness, waitFor } from '../helpers/gateway.js';

t.setTimeout(120_000);

t.test('batch.submit, batch.status, batch.results and the batches events', async (t) => {
  const h = await startHarness({ batch: { chunkSize: 150, concurrency: 2, pollMs: 100, pollMaxMs: 400 } });
  t.teardown(() => h.close());
  h.central.batches.updateSettings({ readyAfterMs: 200 });
  const rows = peopleRows(h.central.people, todayJst());
  const entry = (i: number) => {
    const r = rows[i % rows.length]!;
    return {
      arbitraryId: `K${i}`,
      insurerNumber: r.insurerNumber,
      number: r.number,
      birthdate: r.birthdate,
      ...(r.symbol ? { symbol: r.symbol } : {}),
      ...(r.branch ? { branch: r.branch } : {}),
    };
  };
  const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => entry(from + i));
  const c = await h.connect();
  const events: GatewayEvent[] = [];
  c.on('message', (m: Record<string, unknown>) => {
    if (m.type === 'event') events.push(m as unknown as GatewayEvent);
  });
  await c.request({ type: 'subscribe', topics: ['batches'] });
  const other = await h.connect(h.clients.add('other-desk').token);
  const otherEvents: unknown[] = [];
  other.on('message', (m: Record<string, unknown>) => {
    if (m.type === 'event') otherEvents.push(m);
  });
  await other.request({ type: 'subscribe', topics: ['batches'] });
  const date = todayJst();

  await t.rejects(
    c.request({ type: 'batch.submit', entries: range(0, 2) }),
    { code: 'BATCH_INVALID' },
    'the first part needs the date',
  );
  await t.rejects(
    c.request({
      type: 'batch.submit',
      confirmationDate: date,
      entries: [entry(0), { ...entry(1), arbitraryId: undefined as unknown as string }], // invalid on purpose
    }),
    { code: 'INVALID_MESSAGE', message: /\/entries\/1/ },
    'an entry without arbitraryId is refused naming it',
  );

  // Three parts; the second has a bad entry and then a duplicate: both refusals name the index in the whole batch.
  const a = (await c.request({
    type: 'batch.submit',
    confirmationDate: date,
    final: false,
    entries: range(0, 200),
  })) as { batchId: string; total: number; state: string };
  t.match(a, { type: 'batch.accepted', total: 200, state: 'open', run: 'now' });
  await t.rejects(
    c.request({
      type: 'batch.submit',
      batchId: a.batchId,
      final: false,
      entries: [entry(200), { ...entry(201), birthdate: '19801340' }],
    }),
    { code: 'BATCH_ENTRY_INVALID', details: { index: 201, partIndex: 1, field: 'birthdate' } },
  );
  await t.rejects(
    c.request({ type: 'batch.submit', batchId: a.batchId, final: false, entries: [entry(200), entry(5)] }),
    { code: 'BATCH_ENTRY_INVALID', details: { index: 201, sameAs: 5, reason: 'duplicate-identifier' } },
  );
  await t.rejects(
    other.request({ type: 'batch.submit', batchId: a.batchId, entries: [entry(200)] }),
    { code: 'BATCH_NOT_FOUND' },
    'another client cannot add to it',
  );
  t.match(
    await c.request({ type: 'batch.submit', batchId: a.batchId, final: false, entries: range(200, 150) }),
    { total: 350, state: 'open' },
    'the refused parts left nothing behind',
  );
  t.equal(h.central.batches.stats.submits, 0, 'nothing goes to central while the batch is open');
  t.match(await c.request({ type: 'batch.submit', batchId: a.batchId, entries: range(350, 50) }), { total: 400 });

  await waitFor(
    async () =>
      ((await c.request({ type: 'batch.status', batchId: a.batchId })) as { batch: { state: string } }).batch.state ===
      'done',
    'the batch is done',
    60_000,
  );
  const { batch } = (await c.request({ type: 'batch.status', batchId: a.batchId })) as {
    batch: Record<string, unknown>;
  };
  t.match(batch, {
    batchId: a.batchId,
    state: 'done',
    total: 400,
    finished: 400,
    errors: 0,
    chunks: { total: 3, done: 3, pending: 0, submitted: 0, failed: 0 },
    confirmationDate: date,
  });
  await t.rejects(
    other.request({ type: 'batch.status', batchId: a.batchId }),
    { code: 'BATCH_NOT_FOUND' },
    'another client does not see it',
  );
  await t.rejects(other.request({ type: 'batch.results', batchId: a.batchId }), { code: 'BATCH_NOT_FOUND' });

  // Results in pages, each frame under 64 KiB, following `next`.
  const seen: string[] = [];
  let from: number | undefined = 0;
  let pages = 0;
  c.on('message', (m: Record<string, unknown>) => {
    if (m.type === 'batch.results') t.ok(JSON.stringify(m).length < 65_536, 'a results page fits the frame limit');
  });
  while (from !== undefined) {
    const p = (await c.request({ type: 'batch.results', batchId: a.batchId, from, limit: 500 })) as {
      results: { index: number; arbitraryId: string; state: string }[];
      next?: number;
    };
    t.ok(p.results.length > 0);
    t.equal(p.results[0]!.index, from, 'a page starts where asked');
    seen.push(...p.results.map((r) => r.arbitraryId));
    from = p.next;
    pages++;
  }
  t.ok(pages > 1, `the results came in ${pages} pages`);
  t.same(
    seen,
    range(0, 400).map((e) => e.arbitraryId),
    'every entry once, in order',
  );

  await waitFor(() => events.some((e) => e.event === 'batch.done'), 'batch.done event');
  t.match(
    events.find((e) => e.event === 'batch.done'),
    { topic: 'batches', data: { batchId: a.batchId, state: 'done', total: 400, finished: 400 } },
  );
  t.equal(events.filter((e) => e.event === 'batch.progress').length, 3, 'one progress event per chunk');
  const evResults = events
    .filter((e) => e.event === 'batch.results')
    .flatMap((e) => (e.data.results as { arbitraryId: string }[]).map((r) => r.arbitraryId));
  t.same(evResults.sort(), seen.slice().sort(), 'the results events carried every entry once');
  t.same(otherEvents, [], 'nothing about the batch reached another client');

  // A scheduled batch waits for batch.schedule.
  const s = (await c.request({
    type: 'batch.submit',
    confirmationDate: date,
    run: 'scheduled',
    entries: range(0, 3),
  })) as { batchId: string };
  t.match(s, { state: 'queued', run: 'scheduled' });
  const submitsBefore = h.central.batches.stats.submits;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(h.central.batches.stats.submits, submitsBefore, 'not sent before its schedule');
  t.match(h.gateway.store.batches.list(), [
    { id: s.batchId, state: 'queued', total: 3, done: 0 },
    { id: a.batchId, state: 'done', total: 400, done: 400, errors: 0 },
  ]);
});
