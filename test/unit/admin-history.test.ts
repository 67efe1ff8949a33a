import t from 'tap';
import { GatewayStore, HISTORY_STEP_MS, type HistoryRow } from '../../src/cache/index.js';
import { checksChart, hourly, outages } from '../../src/admin/history-chart.js';

const HOUR = 3_600_000;

t.test('the history counts checks by source per 5 minutes from the audit chain, and prunes old rows', async (t) => {
  const s = await GatewayStore.open({ dir: t.testdir() });
  t.teardown(() => s.close());
  const check = (source?: 'central' | 'cache') =>
    s.appendAudit({
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
  await s.appendAudit({ kind: 'admin', actor: 'admin', action: 'login', outcome: 'ok' });
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
