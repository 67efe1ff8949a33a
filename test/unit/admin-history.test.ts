import t from 'tap';
import { GatewayStore, HISTORY_STEP_MS, type HistoryRow, LATENCY_BOUNDS_MS } from '../../src/cache/index.js';
import { checksChart, hourly, latencyChart, latencyHourly, outages, quantile } from '../../src/admin/history-chart.js';
import type { LineEvent } from '../../src/admin/backend.js';
import { fmtSpan, lineSection, lineSegments, troubles } from '../../src/admin/line-timeline.js';
import { lineReasonText } from '../../src/admin/messages-ja.js';
import { lineEvent } from '../../src/admin/store-views.js';
import { validateConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { CheckParts } from '../../src/daemon/check-parts.js';
import { EventHub } from '../../src/protocol/events.js';
import type { CentralClient } from '../../src/sync/central-client.js';

const HOUR = 3_600_000;

t.test('the history counts checks by source per 5 minutes from the audit chain, and prunes old rows', async (t) => {
  const s = await GatewayStore.open({ dir: t.testdir() });
  t.teardown(() => s.close());
  const check = (source?: 'central' | 'cache') =>
    s.audit.append({
      kind: 'check',
      actor: 'b67fc45a',
      action: 'inquiry.numbers',
      mode: 'numbers',
      outcome: 'validity:1',
      ...(source ? { source } : {}),
    });
  await check('central');
  await check('cache');
  await check('cache');
  await check();
  await s.audit.append({ kind: 'admin', actor: 'admin', action: 'login', outcome: 'ok' });
  // sampled in the next interval: the one just past is recorded
  const row = await s.history.sample(3, Date.now() + HISTORY_STEP_MS);
  t.match(row, { central: 1, cache: 2, none: 1, outbox: 3 });
  t.same(s.history.list(0), [row]);
  await s.history.sample(0, Date.now() + HISTORY_STEP_MS, 30);
  t.same(s.history.list(0), [{ ...row, outbox: 0 }], 'sampling again replaces the row');
  await s.history.sample(0, Date.now() + 40 * 86_400_000, 30);
  t.equal(s.history.list(0).length, 1, 'rows older than the retention are pruned');
});

t.test('hourly buckets, outages and the chart', async (t) => {
  const now = Date.parse('2026-12-03T15:30:00Z');
  const at = (h: number, m: number): number => Date.parse('2026-12-03T00:00:00Z') + h * HOUR + m * 60_000;
  const rows: HistoryRow[] = [
    { at: at(13, 0), central: 5, cache: 0, none: 0, outbox: 0 },
    { at: at(14, 0), central: 0, cache: 2, none: 0, outbox: 2 },
    { at: at(14, 5), central: 0, cache: 1, none: 1, outbox: 4 },
    { at: at(14, 10), central: 3, cache: 0, none: 0, outbox: 1 },
  ];
  const b = hourly(rows, now, 24);
  t.equal(b.length, 24);
  t.match(b.at(-2), { central: 3, cache: 3, none: 1, outboxMax: 4 }, 'the 14:00 hour');
  t.match(b.at(-3), { central: 5, cache: 0 });
  t.same(outages(rows), [{ start: at(14, 0), end: at(14, 10), cache: 3, none: 1 }]);
  const svg = checksChart(b, 'ja').text;
  t.match(svg, /^<svg class="chart"/);
  t.equal((svg.match(/<rect /g) ?? []).length, 4, 'one bar part per non-zero source and hour');
  t.notMatch(svg, /<script|href=/, 'no script, no external reference');
});

t.test("central's answer times: counted per 5 minutes in the store, p50/p95 per hour from the buckets", async (t) => {
  const s = await GatewayStore.open({ dir: t.testdir() });
  t.teardown(() => s.close());
  const now = Date.now();
  for (const ms of [150, 250, 250, 250, 40_000]) s.history.observeLatency(ms, now);
  const row = await s.history.sample(0, now + HISTORY_STEP_MS);
  const expected = new Array(LATENCY_BOUNDS_MS.length + 1).fill(0);
  expected[1] = 1; // 100–200 ms
  expected[2] = 3; // 200–300 ms
  expected[LATENCY_BOUNDS_MS.length] = 1; // slower than the last bound
  t.same(row.latency, expected);
  t.same(s.history.list(0), [row], 'kept as the row');
  await s.history.sample(0, now + 2 * HISTORY_STEP_MS);
  t.notOk(s.history.list(0).at(-1)!.latency, 'an interval without answers has none');

  t.equal(quantile([], 0.5), undefined);
  t.equal(quantile([0, 0, 4], 0.5), 250, 'interpolated within 200–300 ms');
  t.equal(quantile([0, 0, 4], 0.95), 295);
  t.equal(quantile(expected, 0.1), 150, 'the first answer, in 100–200 ms');
  t.equal(quantile(expected, 0.99), LATENCY_BOUNDS_MS.at(-1), 'the slowest bucket answers its lower bound');
  const at = Date.parse('2026-12-03T14:00:00Z');
  const hours = latencyHourly(
    [
      { at, central: 2, cache: 0, none: 0, outbox: 0, latency: [0, 0, 2] },
      { at: at + HISTORY_STEP_MS, central: 2, cache: 0, none: 0, outbox: 0, latency: [0, 0, 0, 2] },
    ],
    at + 30 * 60_000,
    2,
  );
  t.match(hours, [{ n: 0 }, { at, n: 4, p50: 300, p95: 480 }], 'one hour: the sum of its rows');
  t.notOk('p50' in hours[0]!, 'an hour without answers has no median');
  const svg = latencyChart(hours, 'ja').text;
  t.match(svg, /class="c-p50"/);
  t.notMatch(svg, /<script|href=/);
});

t.test("the line's changes: audited by the daemon's check parts, read back for the timeline", async (t) => {
  const store = await GatewayStore.open({ dir: t.testdir() });
  t.teardown(() => store.close());
  const logger = createLogger({ level: 'error' });
  const parts = new CheckParts({
    config: validateConfig({}),
    store,
    central: {} as CentralClient,
    events: new EventHub(),
    logger,
  });
  const since = Date.now() - 1000;
  parts.link.recordFailure({ code: 'CENTRAL_TIMEOUT' });
  parts.link.recordFailure({ code: 'CENTRAL_TIMEOUT' });
  parts.link.recordFailure({ code: 'CENTRAL_TIMEOUT' });
  parts.link.recordSuccess(420);
  await store.audit.append({
    kind: 'admin',
    actor: 'system',
    action: 'line.tunnel.up',
    target: 'CHILD_SA installed',
    outcome: 'up',
  });
  await store.audit.append({ kind: 'admin', actor: 'admin', action: 'login', outcome: 'ok' });
  // the appends run in the background: wait until the four transitions are in
  for (let i = 0; i < 100 && store.history.lineEvents(since).length < 4; i++)
    await new Promise((r) => setTimeout(r, 20));
  const events = store.history.lineEvents(since).flatMap(lineEvent);
  t.match(events, [
    { kind: 'state', state: 'degraded', reason: '1 failure(s) (last: CENTRAL_TIMEOUT)' },
    { kind: 'state', state: 'down', reason: '3 failures in a row (last: CENTRAL_TIMEOUT)' },
    { kind: 'state', state: 'up', reason: 'central answered' },
    { kind: 'tunnel', state: 'up', reason: 'CHILD_SA installed' },
  ]);
  t.equal(events.length, 4, 'the login is not a line event');
  const later = store.history.lineEvents(Date.now() + 1000).flatMap(lineEvent);
  t.match(later, [{ kind: 'state', state: 'up' }], 'a later period starts with the state before it');
  const row = await store.history.sample(0, Date.now() + HISTORY_STEP_MS);
  t.equal(row.latency?.[LATENCY_BOUNDS_MS.findIndex((b) => 420 <= b)], 1, "central's answer time counted");
  t.same(
    lineEvents(events).map((e) => lineReasonText('ja', e.reason!)),
    ['1回失敗（最後: 時間内に応答なし）', '3回続けて失敗（最後: 時間内に応答なし）', '中央が応答', 'CHILD_SA 確立'],
    'the reasons in Japanese',
  );
});

const lineEvents = (e: LineEvent[]): LineEvent[] => e.filter((x) => x.reason);

t.test(
  'the timeline: states from the changes, unknown where the gateway was not running, now from the status',
  async (t) => {
    const H = 3_600_000;
    const from = Date.parse('2026-12-03T00:00:00Z');
    const to = from + 24 * H;
    const rowsFor = (a: number, b: number): HistoryRow[] => {
      const out: HistoryRow[] = [];
      for (let at = a; at < b; at += HISTORY_STEP_MS) out.push({ at, central: 1, cache: 0, none: 0, outbox: 0 });
      return out;
    };
    // ran from before the period until 10:00, stopped until 12:00, running since
    const rows = rowsFor(from - H, from + 10 * H);
    const events: LineEvent[] = [
      { at: from - 2 * H, kind: 'state', state: 'up', reason: 'starting' },
      { at: from + 2 * H, kind: 'state', state: 'down', reason: 'line down: CHILD_SA DELETING, IKE_SA ESTABLISHED' },
      { at: from + 2 * H + 60_000, kind: 'state', state: 'up', reason: 'central answered' },
      { at: from + 12 * H, kind: 'state', state: 'up', reason: 'starting' },
    ];
    const segs = lineSegments(events, rows, from, to, {
      state: 'down',
      since: to - H,
      startedAt: from + 12 * H,
      code: 'CENTRAL_TIMEOUT',
    });
    t.same(
      segs.map((s) => [s.state, (s.start - from) / 60_000, (s.end - from) / 60_000]),
      [
        ['up', 0, 120],
        ['down', 120, 121],
        ['up', 121, 600],
        ['unknown', 600, 720],
        ['up', 720, 1380],
        ['down', 1380, 1440],
      ],
    );
    t.equal(segs.at(-1)!.reason, 'CENTRAL_TIMEOUT', 'the live state says why with the status code');
    t.same(
      troubles(segs).map((s) => s.state),
      ['down', 'down'],
      'newest first',
    );
    t.equal(fmtSpan(60_000, 'ja'), '60秒');
    t.equal(fmtSpan(125 * 60_000, 'ja'), '2時間5分');
    t.equal(fmtSpan(20 * 60_000, 'en'), '20 min');
    const html = lineSection('ja', {
      events,
      rows,
      from,
      to,
      now: { state: 'down', since: to - H, startedAt: from + 12 * H },
    }).text;
    t.match(html, /<rect class="s-unknown"/);
    t.match(html, /継続中/, 'the cut going on now');
    t.match(html, /回線断: CHILD_SA 削除中, IKE_SA 確立/);
    t.notMatch(html, /<script|href=/);
  },
);
