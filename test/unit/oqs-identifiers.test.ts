import t, { type Test } from 'tap';
import {
  OqsError,
  OQSCD,
  VALIDITY_LABEL,
  codeLabel,
  insurerCheckDigitOk,
  institutionCodeWarning,
  isValidDate,
  normalizeInsurerNumber,
  padInsurerNumber,
  validateNumbersQuery,
  type NumbersQuery,
} from '../../src/oqs/index.js';

const base: NumbersQuery = {
  insurerNumber: '06139992',
  symbol: 'テスト',
  number: '12345',
  branch: '00',
  birthdate: '19800401',
  limitConsent: '1',
};

/** Asserts fn throws OQS_MESSAGE_INVALID naming `path` (and `reason`). */
function rejects(t: Test, fn: () => unknown, path: string, reason?: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  const got =
    err instanceof OqsError
      ? { code: err.code, path: err.details.path, reason: err.details.reason }
      : { error: String(err) };
  t.strictSame(
    got,
    { code: 'OQS_MESSAGE_INVALID', path, reason: reason ?? (got as { reason?: unknown }).reason },
    `rejects ${path}`,
  );
}

t.test('insurer check digit (spec §9 examples)', async (t) => {
  t.ok(insurerCheckDigitOk('01130012'));
  t.ok(insurerCheckDigitOk('01010016'));
  t.notOk(insurerCheckDigitOk('06139993'));
  t.ok(insurerCheckDigitOk('06139992'));
  t.ok(insurerCheckDigitOk('  139998'), '6-digit 国保, space-padded');
  t.ok(insurerCheckDigitOk('139998'));
  t.notOk(insurerCheckDigitOk('139997'));
  t.ok(insurerCheckDigitOk('39139993'), '後期高齢者 example from §10.3');
  t.notOk(insurerCheckDigitOk('1399981'), '7 digits');
  t.notOk(insurerCheckDigitOk('0613999２'), 'full-width digit');
  t.notOk(insurerCheckDigitOk(''));
});

t.test('padding and normalizing insurer numbers', async (t) => {
  t.equal(padInsurerNumber('139998'), '  139998');
  t.equal(padInsurerNumber(' 139998 '), '  139998');
  t.equal(padInsurerNumber('06139992'), '06139992');
  t.equal(padInsurerNumber('00139998'), '  139998', 'zero-padded 6-digit folds to the space-padded form');
  rejects(t, () => padInsurerNumber('13999'), 'insurerNumber', 'format');
  rejects(t, () => padInsurerNumber('1399X8'), 'insurerNumber', 'format');
  t.equal(normalizeInsurerNumber('  139998'), '139998');
  t.equal(normalizeInsurerNumber('00139998'), '139998');
  t.equal(normalizeInsurerNumber('06139992'), '06139992');
  t.equal(normalizeInsurerNumber(' 06139992'), '06139992');
});

t.test('validateNumbersQuery normalizes', async (t) => {
  const q = validateNumbersQuery({ ...base, insurerNumber: '139998', branch: '1' });
  t.equal(q.insurerNumber, '  139998');
  t.equal(q.branch, '01');
  t.equal(q.symbol, 'テスト', 'symbol kept as printed');
  const late = validateNumbersQuery({
    insurerNumber: '39139993',
    number: '99990001',
    birthdate: '19450505',
    limitConsent: '0',
  });
  t.equal(late.branch, undefined, '後期高齢者 without 枝番');
  t.equal(late.symbol, undefined);
  t.equal(validateNumbersQuery({ ...base, symbol: '', branch: '' }).symbol, undefined, 'empty symbol dropped');
  t.equal(
    validateNumbersQuery({ ...base, symbol: 'あ'.repeat(20) }).symbol?.length,
    20,
    '20 full-width chars are fine',
  );
});

t.test('validateNumbersQuery rejects with a path and reason', async (t) => {
  rejects(t, () => validateNumbersQuery({ ...base, insurerNumber: '06139993' }), 'insurerNumber', 'check-digit');
  rejects(t, () => validateNumbersQuery({ ...base, insurerNumber: '6139992' }), 'insurerNumber', 'format');
  rejects(t, () => validateNumbersQuery({ ...base, birthdate: '20230229' }), 'birthdate', 'date');
  rejects(t, () => validateNumbersQuery({ ...base, birthdate: '1980-04-01' }), 'birthdate', 'date');
  rejects(t, () => validateNumbersQuery({ ...base, branch: '100' }), 'branch', 'format');
  rejects(t, () => validateNumbersQuery({ ...base, branch: '-1' }), 'branch', 'format');
  rejects(t, () => validateNumbersQuery({ ...base, symbol: 'x'.repeat(21) }), 'symbol', 'too-long');
  rejects(t, () => validateNumbersQuery({ ...base, number: '1'.repeat(21) }), 'number', 'too-long');
  rejects(t, () => validateNumbersQuery({ ...base, number: '  ' }), 'number', 'missing');
  rejects(t, () => validateNumbersQuery({ ...base, number: '12\u000034' }), 'number', 'control-char');
  rejects(t, () => validateNumbersQuery({ ...base, limitConsent: '2' as '1' }), 'limitConsent', 'code');
  // details never carry the personal value
  try {
    validateNumbersQuery({ ...base, birthdate: '20230229' });
    t.fail('should throw');
  } catch (e) {
    t.notMatch(JSON.stringify((e as OqsError).toJSON()), /20230229/);
  }
});

t.test('isValidDate', async (t) => {
  t.ok(isValidDate('20240229'));
  t.ok(isValidDate('20000229'), '400-year leap');
  t.notOk(isValidDate('19000229'), '100-year non-leap');
  t.notOk(isValidDate('20230229'));
  t.notOk(isValidDate('20231301'));
  t.notOk(isValidDate('20230431'));
  t.notOk(isValidDate('20230100'));
  t.notOk(isValidDate('2023011'));
  t.notOk(isValidDate('２０２３０１０１'));
  t.ok(isValidDate('19450505'));
});

t.test('institution code: 10 digits required, check digit only warns', async (t) => {
  // mod 10 over 郡市区+番号 "999999" gives 6: the spec's fake example 1319999994 only warns.
  t.equal(institutionCodeWarning('1319999996'), undefined);
  t.equal(institutionCodeWarning('4110120014'), undefined, '調剤, 郡市区+番号 012001 → 4');
  t.match(institutionCodeWarning('1319999994') ?? '', /check digit/);
  t.match(institutionCodeWarning('1329999996') ?? '', /点数表/);
  rejects(t, () => institutionCodeWarning('131999999'), 'institutionCode', 'format');
  rejects(t, () => institutionCodeWarning('13199999９4'), 'institutionCode', 'format');
});

t.test('code tables', async (t) => {
  t.equal(codeLabel('006', '3'), '無効(新しい資格あり)');
  t.equal(codeLabel('012', 'B01'), '現役並みⅢ');
  t.equal(codeLabel('010', 'A1'), '医療扶助');
  t.equal(codeLabel('006', '7'), undefined);
  t.equal(codeLabel('999', '1'), undefined);
  t.equal(codeLabel('006', 'constructor'), undefined, 'no prototype leakage');
  t.equal(codeLabel('toString', '1'), undefined);
  for (let i = 1; i <= 28; i++) t.ok(OQSCD[String(i).padStart(3, '0')], `table ${i}`);
  t.equal(VALIDITY_LABEL['1'], '有効');
  t.equal(VALIDITY_LABEL['5'], '複数該当');
  t.same(Object.keys(VALIDITY_LABEL).sort(), Object.keys(OQSCD['006'] ?? {}).sort());
});
