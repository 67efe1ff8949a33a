/**
 * End to end, as a new user would run it: the sandbox (real gateway daemon process, central
 * simulator over mutual TLS) driven by the real `onshi` CLI, for what the counter needs beyond a
 * raw answer (issue #5): time-lag rechecks with a simulated day 4, inconsistent ratios, names,
 * the misregistration guard, 複数該当 and consent flags — each against its simulator scenario.
 */
import t from 'tap';
import { GatewayClient } from '../../src/client/index.js';
import type { InquiryResult } from '../../src/checks/result.js';
import type { RecheckView } from '../../src/checks/rechecks.js';
import { seedPopulation, type SimPerson } from '../../src/sim/central/population.js';
import { startSandboxCli, type SandboxCli } from '../helpers/sandbox-cli.js';
import { waitFor } from '../helpers/gateway.js';

t.setTimeout(300_000);

let s: SandboxCli;
t.before(async () => {
  s = await startSandboxCli({ card: false });
});
t.teardown(() => s?.close());

const people = seedPopulation();
const person = (id: string): SimPerson => people.find((p) => p.id === id)!;
/** `--numbers … --birthdate …` for a person's qualification `i` */
const numbersArgs = (id: string, i = 0): string[] => {
  const p = person(id);
  const x = p.qualifications[i]!;
  return [
    '--numbers',
    [x.insurerNumber, x.symbol ?? '', x.number, x.branch ?? ''].join(','),
    '--birthdate',
    p.birthdate,
  ];
};
const inquiry = (args: string[]): Promise<InquiryResult> => s.json<InquiryResult>(['inquiry', ...args]);

t.test(
  'time-lag recheck: the new insurer registers on day 4; the receipt computer is told (event and list)',
  async (t) => {
    // A receipt computer listening on the rechecks topic.
    const client = await GatewayClient.connect(s.env.ONSHI_WS!, s.env.ONSHI_TOKEN!);
    t.teardown(() => client.close());
    const events: Array<{ event: string; data: Record<string, unknown> }> = [];
    client.on('message', (m: Record<string, unknown>) => {
      if (m.type === 'event' && m.topic === 'rechecks') events.push(m as never);
    });
    await client.request({ type: 'subscribe', topics: ['rechecks'] });

    t.match((await s.onshi(['sim', 'day'])).stdout, /^day 1: \d{8} \(day 1 = \d{8}\)/, 'the simulator starts on day 1');
    // The patient shows the new 資格確認書 (not yet registered: 該当資格なし) and the old card (無効).
    const byNew = await inquiry([...numbersArgs('P0000018', 1), '--changed-insurer']);
    t.equal(byNew.validity, '4', 'new insurer not registered yet: 該当資格なし');
    t.match(byNew.timeLagRecheck, { scheduled: true, id: Number, duplicate: false });
    const byOld = await inquiry([...numbersArgs('P0000018', 0), '--changed-insurer']);
    t.equal(byOld.validity, '2', 'old insurer: 無効, nothing newer known yet');
    t.match(byOld.timeLagRecheck, { scheduled: true });
    const until = Date.parse((byOld.timeLagRecheck as { until: string }).until);
    t.ok(Math.abs(until - Date.now() - 10 * 86_400_000) < 3600_000, 'the window is 10 days by default');
    const again = await inquiry([...numbersArgs('P0000018', 0), '--changed-insurer']);
    t.match(
      again.timeLagRecheck,
      { scheduled: true, id: (byOld.timeLagRecheck as { id: number }).id, duplicate: true },
      'one open recheck per patient',
    );

    // Not flagged (and rechecks.all off): a 無効 answer is not rechecked.
    const unflagged = await inquiry(numbersArgs('P0000006'));
    t.equal(unflagged.validity, '2');
    t.equal(unflagged.timeLagRecheck, undefined, 'no recheck without changedInsurer');

    await waitFor(
      () => events.filter((e) => e.event === 'recheck.scheduled').length === 2,
      'two recheck.scheduled events',
    );

    await s.onshi(['sim', 'day', '3']);
    const day3 = await s.onshi(['rechecks', 'run', '--json']);
    t.equal(day3.code, 0, day3.stderr);
    t.match(
      JSON.parse(day3.stdout),
      { checked: 2, found: 0, stillWaiting: 2, failed: 0 },
      'day 3: still not registered',
    );

    const day = await s.onshi(['sim', 'day', '+1']);
    t.match(day.stdout, /^day 4:/, 'the simulator advanced to day 4');
    const day4 = JSON.parse((await s.onshi(['rechecks', 'run', '--json'])).stdout) as Record<string, number>;
    t.match(day4, { checked: 2, found: 2, stillWaiting: 0 }, 'day 4: the new eligibility appeared for both');

    await waitFor(() => events.filter((e) => e.event === 'recheck.found').length === 2, 'two recheck.found events');
    const found = events.filter((e) => e.event === 'recheck.found').map((e) => e.data);
    t.match(
      found.find((d) => d.recheckId === (byNew.timeLagRecheck as { id: number }).id),
      {
        firstValidity: '4',
        validity: '1',
        inquiryId: String,
        confirmationDate: byNew.confirmationDate,
        found: { validity: '1', insurances: [{ insurerNumber: '01130020', insurerName: '全国健康保険協会東京支部' }] },
        message: /settle the difference/,
      },
      'by the new numbers: 有効 with the new insurer, for the day of the visit',
    );
    t.match(
      found.find((d) => d.recheckId === (byOld.timeLagRecheck as { id: number }).id),
      { firstValidity: '2', validity: '3' },
      'by the old numbers: 無効（新しい資格あり）',
    );

    const list = await s.json<RecheckView[]>(['rechecks', 'list', '--json']);
    t.equal(list.length, 2);
    for (const item of list) {
      t.match(
        item,
        {
          state: 'found',
          attempts: 2,
          from: 'numbers',
          client: String,
          settledAt: String,
          found: { validity: /^[13]$/ },
        },
        `recheck #${item.id} listed as found`,
      );
      t.equal(item.nextAt, undefined, 'a found recheck is not scheduled again');
    }
    const text = await s.onshi(['rechecks', 'list', '--state', 'found']);
    t.match(text.stdout, /#\d+ found {2}numbers check/, 'the human-readable list');
    const after = JSON.parse((await s.onshi(['rechecks', 'run', '--json'])).stdout) as Record<string, number>;
    t.match(after, { checked: 0, found: 0 }, 'nothing left to recheck');
    await s.onshi(['sim', 'day', 'today']);
  },
);

t.test(
  'inconsistent ratios: each combination carries "confirm the amount with the insurer"; a consistent one does not',
  async (t) => {
    for (const id of ['P0000013', 'P0000014', 'P0000015', 'P0000016', 'P0000017']) {
      const r = await inquiry([...numbersArgs(id), '--limit-consent']);
      t.equal(r.validity, '1', `${id}: still 有効`);
      t.match(
        r.warnings,
        [
          {
            code: 'RATIO_LIMIT_INCONSISTENT',
            resultIndex: 0,
            message: /confirm the amount with the insurer/,
            details: { ratio: Number, classificationFlag: /^B0[1-5]$/ },
          },
        ],
        `${id}: ${person(id).label}`,
      );
    }
    const ok = await inquiry([...numbersArgs('P0000011'), '--limit-consent']);
    t.same(
      ok.warnings.filter((w) => w.code === 'RATIO_LIMIT_INCONSISTENT'),
      [],
      '2割 + 一般 is consistent',
    );
    const noConsent = await inquiry(numbersArgs('P0000013'));
    t.same(noConsent.warnings, [], 'without 限度額 consent there is no 適用区分 to compare');
  },
);

t.test('names: exact as central sent them, plus a Shift_JIS fallback listing every substitution', async (t) => {
  const cases: Array<[string, string, number, string[]]> = [
    ['P0000002', '高橋　一郎', 0, ['itaiji']],
    ['P0000003', '山崎　花子', 1, ['itaiji']],
    ['P0000012', '葛飾　十二', 0, ['variation-selector']],
    ['P0000004', '〓川　三郎', 0, ['private-use']],
  ];
  for (const [id, fallback, index, reasons] of cases) {
    const r = await inquiry(numbersArgs(id));
    const p = person(id);
    t.equal(r.results[0]!.name, p.name, `${id}: the exact name, code point for code point`);
    const n = r.nameFallback![0]!.name;
    t.equal(n.exact, p.name);
    t.equal(n.fallback, fallback, `${id}: fallback ${fallback}`);
    t.equal(n.lossless, false);
    t.equal(n.substitutions.length, 1, `${id}: one character listed`);
    t.match(n.substitutions[0], { index, reasons });
    t.notMatch(n.fallback, /[?●]/, 'never a silent ? or ●');
    t.match(r.warnings, [{ code: 'NAME_FALLBACK_LOSSY', resultIndex: 0 }]);
  }
  const pua = (await inquiry(numbersArgs('P0000004'))).nameFallback![0]!.name.substitutions[0]!;
  t.match(
    pua,
    { kind: 'unrepresentable', codePoints: ['U+E000'], replacement: '〓' },
    'a private-use character is flagged with its code point',
  );
  const cp932 = await inquiry([...numbersArgs('P0000002'), '--name-target', 'cp932']);
  t.match(cp932.nameFallback![0]!.name, { lossless: true, fallback: person('P0000002').name }, 'Windows-31J holds 髙');
  const plain = await inquiry(numbersArgs('P0000001'));
  t.equal(plain.nameFallback![0]!.name.lossless, true);
  t.same(plain.warnings, []);
});

t.test(
  'misregistration guard: what the receipt computer knows disagrees → flagged, no medical information requested',
  async (t) => {
    const p = person('P0000001');
    const agree = await inquiry([
      ...numbersArgs('P0000001'),
      '--known-birthdate',
      p.birthdate,
      '--known-kana',
      'てすと たろう',
      '--known-sex',
      '1',
      '--consent',
      'medication',
    ]);
    t.equal(agree.possibleMisregistration, false);
    t.match(
      agree.knownFacts,
      { compared: ['birthdate', 'nameKana', 'sex'], mismatched: [] },
      'hiragana and spacing do not matter',
    );
    t.equal(agree.consent?.withheld, undefined);

    const disagree = await inquiry([
      ...numbersArgs('P0000001'),
      '--known-kana',
      'ﾔﾏﾀﾞ ﾊﾅｺ',
      '--known-sex',
      '2',
      '--consent',
      'medication,healthCheck,treatment',
    ]);
    t.equal(disagree.validity, '1', 'the answer itself stands');
    t.equal(disagree.possibleMisregistration, true);
    t.match(disagree.knownFacts, { mismatched: ['nameKana', 'sex'] });
    t.match(disagree.warnings, [{ code: 'POSSIBLE_MISREGISTRATION', details: { mismatched: ['nameKana', 'sex'] } }]);
    t.match(
      disagree.consent,
      {
        withheld: { reason: 'POSSIBLE_MISREGISTRATION', names: ['medication', 'healthCheck', 'treatment', 'surgery'] },
      },
      'medication, health-check and treatment information are not requested',
    );
  },
);

t.test('複数該当: every candidate listed for staff, nothing picked', async (t) => {
  const r = await inquiry([...numbersArgs('P0000009'), '--known-kana', 'ｼﾞｭｳﾌｸ ｼﾞｭｳ']);
  t.equal(r.validity, '5');
  t.equal(r.results.length, 2, 'both results delivered');
  t.match(
    r.multipleMatches,
    {
      candidates: [
        { index: 0, name: '重複　九', knownFacts: { mismatched: ['nameKana'] } },
        { index: 1, name: '重複　十', knownFacts: { mismatched: [] } },
      ],
    },
    "candidates in central's order, each compared with what the receipt computer knows",
  );
  t.ok(r.multipleMatches!.differingFields.includes('name'));
  t.match(r.warnings, [{ code: 'MULTIPLE_MATCHES', details: { count: 2 } }]);
  t.equal(r.possibleMisregistration, false, 'no single answer to flag');
});

t.test('consent flags: echoed; a check by numbers carries 限度額 only', async (t) => {
  const r = await inquiry([...numbersArgs('P0000001'), '--limit-consent', '--consent', 'medication,surgery']);
  t.same(r.consent?.requested, { medication: true, healthCheck: false, treatment: false, surgery: true, limit: true });
  t.same(r.consent?.sentToCentral, ['limit']);
  t.match(r.consent?.answered, { limit: '1' });
  t.ok(r.results[0]!.limitInfo, 'the 限度額 block came with the consent');
  const bad = await s.onshi(['inquiry', ...numbersArgs('P0000001'), '--consent', 'everything']);
  t.equal(bad.code, 1, 'an unknown consent is refused');
  t.match(JSON.parse(bad.stderr), { error: { code: 'INVALID_MESSAGE' } });
});

t.test(
  'by hand: any person can change insurer with a registration lag (onshi sim people change-insurer)',
  async (t) => {
    const changed = await s.onshi([
      'sim',
      'people',
      'change-insurer',
      'P0000005',
      '--numbers',
      '01130012,ｼﾝ,5005,00',
      '--registers-on-day',
      '3',
    ]);
    t.equal(changed.code, 0, changed.stderr);
    t.match(changed.stdout, /registered at central on day 3/);
    const byNew = await inquiry(['--numbers', '01130012,ｼﾝ,5005,00', '--birthdate', '19450505', '--changed-insurer']);
    t.equal(byNew.validity, '4', 'not registered yet');
    t.match(byNew.timeLagRecheck, { scheduled: true });
    t.equal((await inquiry(numbersArgs('P0000005'))).validity, '2', 'the old qualification ended today');
    await s.onshi(['sim', 'day', '3']);
    t.match(JSON.parse((await s.onshi(['rechecks', 'run', '--json'])).stdout), { found: 1 }, 'day 3: found');
    await s.onshi(['sim', 'day', 'today']);
  },
);
