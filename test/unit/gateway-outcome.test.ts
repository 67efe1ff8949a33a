import t from 'tap';
import { compareOutcomes, summarize, type OutcomeSummary } from '../../src/checks/outcome.js';
import type { QualificationResult } from '../../src/oqs/types.js';

const person = (o: Partial<QualificationResult> = {}): QualificationResult =>
  ({
    cardClassification: '01',
    insurerNumber: '06139992',
    number: '12345',
    name: '山田　太郎',
    sex1: '1',
    birthdate: '19800401',
    insurerName: 'テスト健保',
    partialContributionRatio: '030',
    consents: {},
    ...o,
  }) as QualificationResult;
const told = (r: QualificationResult[], validity = '1'): OutcomeSummary =>
  summarize({ source: 'cache', status: '1', validity, results: r });
const now = (r: QualificationResult[], validity = '1'): OutcomeSummary =>
  summarize({ source: 'central', status: '1', validity, results: r });

t.test('nothing changed: no item', async (t) => {
  t.same(compareOutcomes(told([person()]), now([person()])), []);
  t.same(
    compareOutcomes(
      told([person({ partialContributionRatio: '30' })]),
      now([person({ partialContributionRatio: '030' })]),
    ),
    [],
    '"30" and "030" are both 3割',
  );
});

t.test('each change the issue names is detected', async (t) => {
  t.same(compareOutcomes(told([person()]), now([person()], '2')), ['validity'], 'valid → invalid');
  t.same(compareOutcomes(told([person()]), now([person({ insurerNumber: '01130012' })])), ['insurer'], 'a new insurer');
  t.same(
    compareOutcomes(told([person()]), now([person({ partialContributionRatio: '020' })])),
    ['ratio'],
    'a different 負担割合',
  );
  t.same(
    compareOutcomes(
      told([person({ elderly: { contributionRatio: '020' } })]),
      now([person({ elderly: { contributionRatio: '030' } })]),
    ),
    ['elderlyRatio'],
  );
  t.same(
    compareOutcomes(
      told([person({ limitInfo: { classificationFlag: 'A01' } })]),
      now([person({ limitInfo: { classificationFlag: 'A02' } })]),
    ),
    ['limitClass'],
  );
});

t.test('unavailable then known, and a card refused on re-verification', async (t) => {
  t.same(compareOutcomes({ source: 'none', insurances: [] }, now([person()])), ['available']);
  t.same(compareOutcomes(told([person()]), { source: 'central', refusedCode: 'CERT_REVOKED', insurances: [] }), [
    'card',
  ]);
});

t.test('the summary keeps who and the billing facts only', async (t) => {
  const s = summarize({
    source: 'central',
    status: '1',
    validity: '1',
    results: [person({ address: '東京都千代田区', insurerNumber: '  139998' })],
  });
  t.equal(s.name, '山田　太郎');
  t.equal(s.insurances[0]!.insurerNumber, '139998', 'wire padding trimmed');
  t.notOk(JSON.stringify(s).includes('千代田'), 'no address');
});
