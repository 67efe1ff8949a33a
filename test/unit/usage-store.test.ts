import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  addMonths,
  cardShare,
  daysOf,
  GatewayStore,
  HISTORY_STEP_MS,
  jstDay,
  jstMonth,
  USAGE_PATIENT_MONTHS,
} from '../../src/cache/index.js';
import { checkMethod, usageOf } from '../../src/daemon/audit.js';
import { auditDetailText } from '../../src/admin/messages-ja.js';

const TARO = { insurerNumber: '06139998', symbol: 'ＡＢ　12', number: '9876543', branch: '1', birthdate: '19800101' };
const HANAKO = { insurerNumber: '06139998', symbol: 'AB12', number: '5550123', branch: '02', birthdate: '19850505' };

t.test('days and months are JST: 23:30 UTC on the last day of a month is the next month', async (t) => {
  const late = Date.parse('2026-10-31T23:30:00Z');
  t.equal(jstDay(late), '2026-11-01');
  t.equal(jstMonth(late), '2026-11');
  t.equal(jstDay(Date.parse('2026-10-31T14:59:59Z')), '2026-10-31', '23:59:59 JST is still the 31st');
  t.equal(jstDay(Date.parse('2026-12-31T15:00:00Z')), '2027-01-01', 'a year boundary too');
  t.equal(addMonths('2026-01', -1), '2025-12');
  t.equal(addMonths('2026-11', 2), '2027-01');
  t.equal(addMonths('2026-03', 1 - USAGE_PATIENT_MONTHS), '2025-03');
  t.equal(daysOf('2028-02').length, 29, 'a leap February');
  t.equal(daysOf('2026-11').at(-1), '2026-11-30');

  const s = await GatewayStore.open({ dir: t.testdir() });
  t.teardown(() => s.close());
  await s.usage.record({ method: 'card_pin', patient: TARO }, late);
  await s.usage.record({ method: 'numbers', patient: HANAKO }, Date.parse('2026-10-31T14:00:00Z'));
  t.same(
    s.usage.months().map((m) => [m.month, m.cardPin, m.numbers, m.patients]),
    [
      ['2026-10', 0, 1, 1],
      ['2026-11', 1, 0, 1],
    ],
  );
  t.match(s.usage.days('2026-11')[0], { day: '2026-11-01', cardPin: 1, patients: 1, cardPatients: 1 });
  t.match(s.usage.days('2026-10').at(-1), { day: '2026-10-31', numbers: 1, patients: 1, cardPatients: 0 });
});

t.test('counts by method, distinct patients per day and month, and the card share', async (t) => {
  const dir = t.testdir();
  const s = await GatewayStore.open({ dir });
  t.teardown(() => s.close());
  const day1 = Date.parse('2026-11-02T01:00:00Z');
  const day2 = Date.parse('2026-11-03T01:00:00Z');
  await s.usage.record({ method: 'numbers', patient: TARO }, day1);
  // the same patient, the symbol in another width and the branch unpadded: one patient
  await s.usage.record({ method: 'card_pin', patient: { ...TARO, symbol: 'AB12', branch: '01' } }, day1);
  await s.usage.record({ method: 'card_visual', patient: HANAKO }, day1);
  await s.usage.record({ method: 'numbers', patient: TARO }, day2);
  await s.usage.record({ method: 'numbers' }, day2); // an answer that named no one: counted, no patient
  const days = s.usage.days('2026-11');
  t.equal(days.length, 30);
  t.same(days[1], { day: '2026-11-02', cardPin: 1, cardVisual: 1, numbers: 1, patients: 2, cardPatients: 2 });
  t.same(days[2], { day: '2026-11-03', cardPin: 0, cardVisual: 0, numbers: 2, patients: 1, cardPatients: 0 });
  t.same(days[0], { day: '2026-11-01', cardPin: 0, cardVisual: 0, numbers: 0, patients: 0, cardPatients: 0 });
  const [nov] = s.usage.months();
  t.same(nov, { month: '2026-11', cardPin: 1, cardVisual: 1, numbers: 3, patients: 2, cardPatients: 2 });
  t.equal(cardShare(nov!), 2 / 5);
  t.equal(cardShare({ cardPin: 0, cardVisual: 0, numbers: 0, patients: 0, cardPatients: 0 }), undefined);

  // nothing identifying in clear in the data directory (the hashes only)
  await s.close();
  for (const f of readdirSync(dir)) {
    const bytes = readFileSync(join(dir, f)).toString('latin1');
    for (const v of [TARO.number, HANAKO.number, TARO.insurerNumber, TARO.birthdate])
      t.notOk(bytes.includes(v), `${f} does not hold ${v} in clear`);
  }
});

t.test('a patient in two months is counted in each; hashes are pruned after the retention, counts kept', async (t) => {
  const s = await GatewayStore.open({ dir: t.testdir() });
  t.teardown(() => s.close());
  const oct = Date.parse('2025-10-10T03:00:00Z');
  await s.usage.record({ method: 'card_pin', patient: TARO }, oct);
  await s.usage.record({ method: 'numbers', patient: HANAKO }, oct);
  await s.usage.record({ method: 'card_pin', patient: TARO }, Date.parse('2025-11-10T03:00:00Z'));
  t.same(
    s.usage.months().map((m) => [m.month, m.patients, m.cardPatients]),
    [
      ['2025-10', 2, 1],
      ['2025-11', 1, 1],
    ],
  );
  // 13 months after October 2025, its hashes go; its counts and patients stay
  await s.usage.record({ method: 'numbers', patient: HANAKO }, Date.parse('2026-11-02T03:00:00Z'));
  const months = s.usage.months();
  t.same(
    months.map((m) => [m.month, m.cardPin, m.numbers, m.patients, m.cardPatients]),
    [
      ['2025-10', 1, 1, 2, 1],
      ['2025-11', 1, 0, 1, 1],
      ['2026-11', 0, 1, 1, 0],
    ],
  );
  t.match(s.usage.days('2025-10')[9], { patients: 2, cardPatients: 1 }, "the day's distinct counts stay too");
});

t.test('old months are closed and pruned once a month, not on every count (again after a failed one)', async (t) => {
  const s = await GatewayStore.open({ dir: t.testdir() });
  t.teardown(() => s.close());
  const channel = (s as unknown as { channel: { call(op: string, args: unknown, o?: unknown): Promise<unknown> } })
    .channel;
  const asked: (string | undefined)[] = [];
  let failNext = false;
  const call = channel.call.bind(channel);
  channel.call = (op, args, o) => {
    if (op === 'usageRecord') {
      asked.push((args as { pruneBeforeDay?: string }).pruneBeforeDay);
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('refused'));
      }
    }
    return call(op, args, o);
  };
  const nov = Date.parse('2026-11-02T03:00:00Z');
  failNext = true;
  await t.rejects(s.usage.record({ method: 'numbers', patient: HANAKO }, nov));
  await s.usage.record({ method: 'numbers', patient: HANAKO }, nov);
  await s.usage.record({ method: 'card_pin', patient: TARO }, nov + 86_400_000);
  await s.usage.record({ method: 'card_pin', patient: TARO }, Date.parse('2026-12-01T03:00:00Z'));
  t.same(
    asked,
    ['2025-11-01', '2025-11-01', undefined, '2025-12-01'],
    'asked again after the failure, then next month',
  );
  t.same(
    s.usage.months().map((m) => [m.month, m.cardPin, m.numbers]),
    [
      ['2026-11', 1, 1],
      ['2026-12', 1, 0],
    ],
  );
});

t.test('the method of a check: audit mode, history counts, and what counts as a use', async (t) => {
  t.equal(checkMethod('numbers', { id: 'a' }), 'numbers');
  t.equal(checkMethod('card', { id: 'a', mode: 'pin' }), 'card_pin');
  t.equal(checkMethod('card', { id: 'a', mode: 'visual' }), 'card_visual');
  t.same(usageOf({ source: 'central', status: '1', results: [TARO] }), { patient: TARO });
  t.same(usageOf({ source: 'cache', status: '1', results: [] }), {}, 'a use without a patient');
  t.equal(usageOf({ source: 'central', status: '2' }), undefined, 'a per-person error is not a use');
  t.equal(
    usageOf({ source: 'central', status: '1', validity: '4', results: [] }),
    undefined,
    '該当資格なし is not a use',
  );
  t.same(
    usageOf({ source: 'central', status: '1', validity: '2', results: [TARO] }),
    { patient: TARO },
    '無効 is a use',
  );
  t.equal(usageOf({ source: 'none' }), undefined, 'unanswered is not a use');
  t.equal(usageOf(undefined), undefined, 'an error is not a use');

  const s = await GatewayStore.open({ dir: t.testdir() });
  t.teardown(() => s.close());
  const check = (mode: 'card' | 'card-visual' | 'numbers') =>
    s.audit.append({
      kind: 'check',
      actor: 'b67fc45a',
      action: `inquiry.${mode === 'numbers' ? 'numbers' : 'card'}`,
      mode,
      outcome: 'validity:1',
      source: 'central',
    });
  await check('card');
  await check('card-visual');
  await check('card-visual');
  await check('numbers');
  await t.rejects(s.audit.append({ kind: 'check', actor: 'x', action: 'inquiry.card', mode: 'face' as 'card' }), {
    code: 'STORE_INPUT_INVALID',
  });
  const row = await s.history.sample(0, Date.now() + HISTORY_STEP_MS);
  t.same(row.methods, { cardPin: 1, cardVisual: 2, numbers: 1 });
  t.same(s.history.list(0)[0]?.methods, row.methods);
  t.match(await s.audit.verify(), { ok: true, entries: 4 }, 'the chain verifies with the new mode');
  t.equal(auditDetailText('ja', 'card-visual'), 'カード（目視確認）', 'the audit page names the new mode in Japanese');
});
