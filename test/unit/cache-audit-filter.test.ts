// The audit page's filter runs in SQL: kind, outcome, action prefixes, a search over action, actor
// and target (LIKE wildcards typed by staff match literally), actor ids found by name, a date range
// and the seq cursor; newest first, personal fields never read.
import t from 'tap';
import { GatewayStore, type AuditInput } from '../../src/cache/index.js';
import { auditFilterSql } from '../../src/cache/store/audit-log.js';
import { testdir } from '../helpers/testdir.js';

const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const ENTRIES: AuditInput[] = [
  { kind: 'admin', actor: 'admin', action: 'login', outcome: 'ok', remote: '192.168.1.20' },
  { kind: 'admin', actor: 'admin', action: 'login', outcome: 'refused', remote: '192.168.1.21' },
  {
    kind: 'check',
    actor: 'b67fc45a',
    action: 'inquiry.numbers',
    mode: 'numbers',
    outcome: 'validity:1',
    source: 'cache',
    personal: { requestId: 'r-1', name: '髙橋　一郎' },
  },
  { kind: 'check', actor: 'c0ffee00', action: 'inquiry.card', mode: 'card', outcome: 'CENTRAL_UNREACHABLE' },
  { kind: 'token', actor: 'admin', action: 'client.add', outcome: 'ok', target: '受付1 (b67fc45a)' },
  { kind: 'admin', actor: 'system', action: 'line.state.down', target: '3 failures in a row' },
  { kind: 'admin', actor: 'admin', action: 'settings.save', outcome: 'ok', target: '100%_done' },
];

t.test('filters in SQL, newest first', async (t) => {
  const store = await GatewayStore.open({ dir: testdir(t) });
  t.teardown(() => store.close());
  for (const [i, e] of ENTRIES.entries()) await store.audit.append(e, new Date(T0 + i * 60_000));
  const actions = (f: Parameters<typeof store.audit.query>[0]): string[] =>
    store.audit.query(f).map((e) => `${e.seq}:${e.action}`);

  t.same(actions({ limit: 3 }), ['7:settings.save', '6:line.state.down', '5:client.add'], 'newest first, limited');
  t.same(actions({ before: 3 }), ['2:login', '1:login'], 'the cursor: seq below it');
  t.same(actions({ kinds: ['check'] }), ['4:inquiry.card', '3:inquiry.numbers']);
  t.same(actions({ kinds: ['token', 'check'] }), ['5:client.add', '4:inquiry.card', '3:inquiry.numbers']);
  t.same(actions({ outcome: 'refused' }), ['2:login']);
  t.same(actions({ outcome: 'failed' }), ['4:inquiry.card'], 'an error code is a failure');
  t.same(
    actions({ outcome: 'ok' }),
    ['7:settings.save', '6:line.state.down', '5:client.add', '3:inquiry.numbers', '1:login'],
    'no outcome and a validity are ok',
  );
  t.same(actions({ actionPrefixes: ['line.state.', 'client.'] }), ['6:line.state.down', '5:client.add']);
  t.same(actions({ search: 'LOGIN' }), ['2:login', '1:login'], 'case-insensitive over the action');
  t.same(actions({ search: '受付1' }), ['5:client.add'], 'over the target');
  t.same(actions({ search: 'system' }), ['6:line.state.down'], 'over the actor');
  t.same(actions({ search: '%' }), ['7:settings.save'], 'a typed % matches itself, not everything');
  t.same(actions({ search: '_' }), ['7:settings.save'], 'so does _');
  t.same(actions({ actors: ['b67fc45a'] }), ['3:inquiry.numbers'], "a receipt computer's id found by its name");
  t.same(actions({ actions: ['client.add'] }), ['5:client.add'], 'actions whose words matched');
  t.same(
    actions({ search: 'settings', actors: ['c0ffee00'] }),
    ['7:settings.save', '4:inquiry.card'],
    'the text or the named actor',
  );
  t.same(actions({ from: T0 + 2 * 60_000, to: T0 + 4 * 60_000 }), ['4:inquiry.card', '3:inquiry.numbers'], 'the range');
  t.same(actions({ kinds: ['check'], outcome: 'ok', from: T0 }), ['3:inquiry.numbers'], 'filters combine');
  const check = store.audit.query({ kinds: ['check'], outcome: 'ok' })[0]!;
  t.equal(check.personal, undefined, 'personal fields are not read');
  t.equal(check.source, 'cache');
});

t.test('the SQL bounds the time first and caps the limit', async (t) => {
  const { sql, args } = auditFilterSql({ from: 1, to: 2, search: 'x', limit: 10_000_000 });
  t.match(sql, /WHERE at >= \? AND at < \? AND \(action LIKE/);
  t.equal(args.at(-1), 100_000);
});
