/**
 * The event log from a real daemon (issue 19): the line cut at the fault proxy and restored, then
 * the gateway restarted. What the admin page's event log and audit filter read back from the store
 * (store-views.ts): the cut with its end, the start with the new cache key, the stop and the
 * second start; the checks answered from the cache during the cut, found by kind and range.
 */
import t from 'tap';
import { storeAdminViews } from '../../src/admin/store-views.js';
import { EventHub } from '../../src/protocol/events.js';
import { OutageHarness } from '../helpers/outage.js';

t.setTimeout(120_000);

t.test('a cut and a restart, as the event log shows them', async (t) => {
  const h = await OutageHarness.start();
  t.teardown(() => h.close());
  const rows = h.rows().slice(0, 2);
  for (const r of rows) t.equal((await h.check(r)).result?.source, 'central', 'warm the cache');

  h.setLine({ kind: 'down' });
  const cutAt = Date.now();
  await h.waitLink('down');
  const during = await h.check(rows[0]!);
  t.equal(during.result?.source, 'cache', 'answered from the cache during the cut');
  h.setLine({ kind: 'up' });
  await h.waitLink('up');
  const upAt = Date.now();
  await h.waitDrained();
  await h.restartGateway();

  const views = storeAdminViews(h.gateway.store, new EventHub());
  const events = await views.listEvents({ limit: 50 });
  const outages = events.filter((e) => e.kind === 'outage');
  t.ok(outages.length >= 1, 'the cut is an outage');
  const cut = outages.find((e) => e.action === 'line.state.down');
  t.ok(cut, 'the line went down');
  const start = Date.parse(cut!.at);
  const end = Date.parse(cut!.endedAt ?? '');
  t.ok(start >= cutAt - 1000 && start <= upAt, 'it started after the cut');
  t.ok(end > start && end <= upAt + 1000, 'and ended when the line came back: its length is known');
  t.same(
    events.filter((e) => e.kind === 'restart').map((e) => e.action),
    ['gateway.start', 'gateway.stop', 'gateway.start'],
    'the restart: started, stopped, started again (newest first)',
  );
  t.ok(
    events.some((e) => e.kind === 'store' && e.target === 'STORE_KEY_CREATED'),
    "the first start's new cache key",
  );

  const checks = await views.listAudit({ limit: 100, kind: 'check', from: start, to: end + 1 });
  t.ok(
    checks.some((c) => c.detail?.includes('cache')),
    'the check answered from the cache, found by kind and range',
  );
  t.ok(
    checks.every((c) => Date.parse(c.at) >= start && Date.parse(c.at) <= end),
    'and only checks in the range',
  );
});
