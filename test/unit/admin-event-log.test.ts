// The event log's facts from a real store (outages with their end, kinds, range, cursor, dead
// letters merged by time), its words in Japanese, and the audit CSV's encoding.
import t from 'tap';
import type { AuditEntry } from '../../src/admin/backend.js';
import { auditCsv } from '../../src/admin/pages/audit-page.js';
import { listEvents } from '../../src/admin/pages/event-log.js';
import { eventText } from '../../src/admin/pages/events-page.js';
import { GatewayStore } from '../../src/cache/index.js';
import { testdir } from '../helpers/testdir.js';

const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const MIN = 60_000;

t.test('events from the audit chain and the outbox', async (t) => {
  const store = await GatewayStore.open({ dir: testdir(t) });
  t.teardown(() => store.close());
  const sys = (action: string, at: number, target?: string): Promise<unknown> =>
    store.audit.append({ kind: 'admin', actor: 'system', action, ...(target ? { target } : {}) }, new Date(at));
  await sys('gateway.start', T0, '1.0.0');
  await sys('line.state.up', T0, 'starting');
  await store.audit.append({ kind: 'admin', actor: 'admin', action: 'login', outcome: 'ok' }, new Date(T0 + MIN));
  await sys('line.state.degraded', T0 + 10 * MIN, '1 failure(s) (last: CENTRAL_TIMEOUT)');
  await sys('line.state.down', T0 + 11 * MIN, '3 failures in a row (last: CENTRAL_TIMEOUT)');
  await sys('line.state.up', T0 + 14 * MIN, 'central answered');
  await store.outbox.enqueue({ idempotencyKey: 'k', kind: 'numbers', payload: {} }, new Date(T0 + 12 * MIN));
  const [due] = await store.outbox.nextDue(1, new Date(T0 + 15 * MIN));
  await store.outbox.complete(due!.id, { dead: 'OQS_REFUSED' }, new Date(T0 + 15 * MIN));
  await sys('line.state.down', T0 + 20 * MIN, 'line down: CHILD_SA DELETING');

  const all = listEvents(store, { limit: 50 });
  t.same(
    all.map((e) => [e.kind, e.action]),
    [
      ['outage', 'line.state.down'],
      ['dead', 'outbox.dead'],
      ['outage', 'line.state.down'],
      ['outage', 'line.state.degraded'],
      ['restart', 'gateway.start'],
    ],
    'newest first; the login and the line coming up are not events of their own',
  );
  t.equal(all[0]!.endedAt, undefined, 'the last cut is still on');
  t.equal(all[2]!.endedAt, new Date(T0 + 14 * MIN).toISOString(), 'a cut ends at the next up');
  t.equal(all[3]!.endedAt, new Date(T0 + 14 * MIN).toISOString(), 'so does the slow spell before it');
  t.equal(all[1]!.target, 'OQS_REFUSED');

  t.same(
    listEvents(store, { limit: 50, kind: 'dead' }).map((e) => e.action),
    ['outbox.dead'],
  );
  t.same(
    listEvents(store, { limit: 50, from: T0 + 5 * MIN, to: T0 + 12 * MIN }).map((e) => e.action),
    ['line.state.down', 'line.state.degraded'],
    'the range',
  );
  const first = listEvents(store, { limit: 2 });
  t.same(
    listEvents(store, { limit: 50, before: first[1]!.cursor }).map((e) => e.action),
    ['line.state.down', 'line.state.degraded', 'gateway.start'],
    'the next page from the cursor',
  );
});

t.test('a page boundary inside one millisecond loses and repeats nothing', async (t) => {
  const store = await GatewayStore.open({ dir: testdir(t) });
  t.teardown(() => store.close());
  // a start with its alerts: written in the same millisecond
  for (const a of ['gateway.start', 'store.alert', 'cert.warning', 'gateway.stop'])
    await store.audit.append({ kind: 'admin', actor: 'system', action: a, target: 'x:1' }, new Date(T0));
  await store.outbox.enqueue({ idempotencyKey: 'k', kind: 'numbers', payload: {} }, new Date(T0));
  const [due] = await store.outbox.nextDue(1, new Date(T0));
  await store.outbox.complete(due!.id, { dead: 'OQS_REFUSED' }, new Date(T0));
  const seen: string[] = [];
  let before: string | undefined;
  for (let page = 0; page < 10; page++) {
    const items = listEvents(store, { limit: 2, ...(before ? { before } : {}) });
    if (!items.length) break;
    seen.push(...items.map((e) => e.action));
    before = items.at(-1)!.cursor;
  }
  t.same(
    seen,
    ['gateway.stop', 'cert.warning', 'store.alert', 'gateway.start', 'outbox.dead'],
    'every row once, in order',
  );
});

t.test('every kind in Japanese words', async (t) => {
  const at = new Date(T0).toISOString();
  const say = (kind: Parameters<typeof eventText>[1]['kind'], action: string, target: string): string => {
    const { what, detail } = eventText('ja', { cursor: '', kind, at, action, target });
    return `${what} ${typeof detail === 'string' ? detail : detail.text}`;
  };
  t.equal(
    say('cert', 'cert.warning', 'central-client:12'),
    '証明書の期限が近い 中央向けクライアント証明書の有効期限まであと12日',
  );
  t.equal(say('cert', 'cert.warning', 'central-ca:-1'), '証明書の期限が近い 中央の CA 証明書の有効期限切れ');
  t.match(say('store', 'store.alert', 'STORE_KEY_CREATED'), /キャッシュの暗号鍵を新しく作りました/);
  t.equal(say('restart', 'gateway.stop', ''), 'ゲートウェイ停止 ');
  t.equal(
    say('dead', 'outbox.dead', 'CENTRAL_REFUSED'),
    '再照会を中央が受け付けず、送信をやめました 理由: 中央が要求を拒否',
  );
  t.equal(
    say('dead', 'outbox.dead', 'SOMETHING_NEW'),
    '再照会を中央が受け付けず、送信をやめました 理由: <code>SOMETHING_NEW</code>',
    'a code without words stays a code',
  );
  t.match(say('outage', 'line.state.down', '3 failures in a row (last: CENTRAL_TIMEOUT)'), /回線が切断 3回続けて失敗/);
});

t.test('the CSV: a BOM, CRLF, quoting, no formulas', async (t) => {
  const entries: AuditEntry[] = [
    { at: new Date(T0).toISOString(), actor: 'b67fc45a', action: 'client.add', target: '受付, "1"', outcome: 'ok' },
    {
      at: new Date(T0).toISOString(),
      actor: 'admin',
      action: 'settings.save',
      target: '=HYPERLINK("x")',
      outcome: 'refused',
    },
  ];
  const csv = auditCsv(
    { lang: 'ja', path: '/audit.csv', clientName: (id) => (id === 'b67fc45a' ? '受付1' : id) },
    entries,
  );
  t.same([...csv.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
  const lines = csv.toString('utf8').slice(1).split('\r\n');
  t.equal(lines[0], '日時,誰が,操作,対象,結果,接続元');
  t.match(lines[1], /^[\d-]+ [\d:]+,受付1,レセコン接続の追加,"受付, ""1""",成功,$/);
  t.match(lines[2], /,"'=HYPERLINK\(""x""\)",拒否,$/, 'a formula is text');
  t.equal(lines[3], '', 'ends with CRLF');
});
