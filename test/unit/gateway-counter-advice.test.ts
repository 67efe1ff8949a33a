/**
 * The counter advice in results (counter-advice.ts, withAdvice, cacheable): typed warnings, the
 * name fallback, the misregistration guard withholding medical consents, 複数該当 candidates, the
 * consent echo, and that none of it is cached with central's answer.
 */
import t from 'tap';
import { adviseAnswer } from '../../src/checks/counter-advice.js';
import { withAdvice, type InquiryResult } from '../../src/checks/result.js';
import { cacheable } from '../../src/checks/outage.js';
import type { QualificationResult } from '../../src/oqs/types.js';

const base: QualificationResult = {
  cardClassification: '01',
  insurerNumber: '06279996',
  number: '1',
  name: '割合　十三',
  nameKana: 'ﾜﾘｱｲ ｼﾞｭｳｻﾝ',
  sex1: '1',
  birthdate: '19530909',
  insurerName: 'テスト健康保険組合',
  consents: {
    PharmacistsInfo: { flag: '1', time: '20261201090000' },
    DiagnosisInfo: { flag: '0' },
    Other: { flag: '1' },
  },
  limitConsent: { flag: '1' },
};

const central = (results: QualificationResult[], validity: InquiryResult['validity'] = '1'): InquiryResult => ({
  referenceClassification: '2',
  source: 'central',
  answeredAt: '2026-12-01T00:00:00Z',
  verifiedAt: '2026-12-01T00:00:00Z',
  confirmationDate: '20261201',
  status: '1',
  ...(validity ? { validity } : {}),
  notices: [],
  results,
  warnings: [],
});

t.test('ratio warnings name the result they are about', async (t) => {
  const ok = { ...base, elderly: { contributionRatio: '20' }, limitInfo: { classificationFlag: 'B04' } };
  const bad = { ...base, elderly: { contributionRatio: '10' }, limitInfo: { classificationFlag: 'B03' } };
  const { advice } = adviseAnswer({ validity: '1', results: [bad], consent: {}, sentToCentral: [] });
  t.match(advice.warnings, [
    {
      code: 'RATIO_LIMIT_INCONSISTENT',
      resultIndex: 0,
      message: /confirm the amount with the insurer/,
      details: { ratio: 1, ratioSource: 'elderly', classificationFlag: 'B03' },
    },
  ]);
  t.same(adviseAnswer({ validity: '1', results: [ok], consent: {}, sentToCentral: [] }).advice.warnings, []);
});

t.test('name fallback per result and per name field; lossy names warn', async (t) => {
  const r = { ...base, name: '髙橋　一郎', insuredName: '山﨑　太郎', nameOfOther: '\uE000' };
  const { advice } = adviseAnswer({ validity: '1', results: [r], consent: {}, sentToCentral: [] });
  t.equal(advice.nameTarget, 'shift_jis');
  t.match(advice.nameFallback[0], {
    resultIndex: 0,
    name: { fallback: '高橋　一郎' },
    insuredName: { fallback: '山崎　太郎' },
    nameOfOther: { fallback: '〓', substitutions: [{ kind: 'unrepresentable' }] },
    nameKana: { lossless: true },
  });
  t.match(advice.warnings, [
    {
      code: 'NAME_FALLBACK_LOSSY',
      resultIndex: 0,
      details: { unrepresentable: true },
      message: /髙→高.*﨑→崎.*U\+E000/,
    },
  ]);
  t.equal(
    adviseAnswer({ validity: '1', results: [r], consent: {}, sentToCentral: [], nameTarget: 'cp932' }).advice
      .nameFallback[0]!.name.lossless,
    true,
    'cp932 holds 髙',
  );
});

t.test('misregistration: flagged, and the medical consent blocks are withheld from the results', async (t) => {
  const { advice, results } = adviseAnswer({
    validity: '1',
    results: [base],
    knownFacts: { birthdate: '1953-09-09', sex: '2' },
    consent: { medication: true },
    sentToCentral: ['limit'],
  });
  t.equal(advice.possibleMisregistration, true);
  t.same(advice.knownFacts, { compared: ['birthdate', 'sex'], mismatched: ['sex'] });
  t.match(advice.warnings, [{ code: 'POSSIBLE_MISREGISTRATION', details: { mismatched: ['sex'] } }]);
  t.same(Object.keys(results[0]!.consents), ['Other'], 'PharmacistsInfo and DiagnosisInfo removed; others kept');
  t.ok(base.consents.PharmacistsInfo, 'the input is not changed');
  t.match(advice.consent, {
    withheld: { reason: 'POSSIBLE_MISREGISTRATION' },
    answered: { medication: '1', treatment: '0', limit: '1' },
  });
  const none = adviseAnswer({ validity: '1', results: [base], knownFacts: {}, consent: {}, sentToCentral: [] }).advice;
  t.equal(none.knownFacts, undefined, 'nothing known: nothing compared');
  t.equal(none.possibleMisregistration, false);
});

t.test('複数該当: candidates, each compared; no misregistration flag', async (t) => {
  const a = { ...base, name: '重複　九', nameKana: 'ｼﾞｭｳﾌｸ ｷｭｳ' };
  const b = { ...base, name: '重複　十', nameKana: 'ｼﾞｭｳﾌｸ ｼﾞｭｳ', sex1: '2' };
  const { advice } = adviseAnswer({
    validity: '5',
    results: [a, b],
    knownFacts: { nameKana: 'じゅうふく じゅう' },
    consent: {},
    sentToCentral: [],
  });
  t.match(advice.multipleMatches, {
    candidates: [
      { index: 0, knownFacts: { mismatched: ['nameKana'] } },
      { index: 1, knownFacts: { mismatched: [] } },
    ],
  });
  t.same(advice.multipleMatches!.differingFields, ['name', 'nameKana', 'sex1']);
  t.equal(advice.possibleMisregistration, false);
  t.match(advice.warnings, [{ code: 'MULTIPLE_MATCHES', details: { count: 2 } }]);
});

t.test('consent echo: requested, sent, answered', async (t) => {
  const { advice } = adviseAnswer({
    validity: '1',
    results: [base],
    consent: { medication: true, limit: true },
    sentToCentral: ['limit'],
  });
  t.same(advice.consent, {
    requested: { medication: true, healthCheck: false, treatment: false, surgery: false, limit: true },
    sentToCentral: ['limit'],
    answered: { medication: '1', treatment: '0', limit: '1' },
  });
});

t.test(
  'withAdvice keeps extra warnings first; nothing known gets warnings only; cacheable drops the advice',
  async (t) => {
    const r = withAdvice(central([base]), { consent: {} }, [], [{ code: 'CARD_CERT_EXPIRED_GRACE', message: 'renew' }]);
    t.equal(r.warnings[0]!.code, 'CARD_CERT_EXPIRED_GRACE');
    t.ok(r.nameFallback);
    const cached = cacheable(r) as Record<string, unknown>;
    for (const f of ['warnings', 'nameFallback', 'nameTarget', 'possibleMisregistration', 'consent'])
      t.notOk(f in cached, `${f} is not cached`);
    t.ok(cached.results, "central's answer is");
    const none = withAdvice({ ...central([]), source: 'none' }, { consent: {} }, []);
    t.same(none.warnings, []);
    t.equal(none.nameFallback, undefined);
  },
);
