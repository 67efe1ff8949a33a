import t from 'tap';
import {
  eligibilityByNumbers,
  eligibilityByPerson,
  peopleRows,
  seedPopulation,
} from '../../src/sim/central/population.js';
import { insurerCheckDigitOk } from '../../src/oqs/index.js';

t.test('every seeded insurer number passes the check digit', async (t) => {
  for (const p of seedPopulation())
    for (const x of p.qualifications) t.ok(insurerCheckDigitOk(x.insurerNumber), `${p.id} ${x.insurerNumber}`);
});

t.test('the seed covers every validity and the awkward cases', async (t) => {
  const rows = peopleRows(seedPopulation(), '20250401');
  t.same([...new Set(rows.map((r) => r.expectedValidity))].sort(), ['1', '2', '3', '4', '5']);
  t.ok(
    rows.some((r) => r.insurerNumber.startsWith('39') && r.branch === ''),
    '後期高齢者 without 枝番',
  );
  t.ok(
    rows.some((r) => r.insurerNumber.length === 6),
    '6-digit 国保',
  );
  const names = seedPopulation()
    .map((p) => p.name)
    .join('');
  for (const ch of ['髙', '﨑', '\uE000', '\u{E0100}'])
    t.ok(names.includes(ch), `a name with U+${ch.codePointAt(0)!.toString(16)}`);
});

t.test('registration lag: a new qualification is invisible before central learns of it', async (t) => {
  const people = seedPopulation();
  const p = people.find((x) => x.id === 'P0000006')!;
  p.qualifications.push({
    insurerNumber: '01130012',
    symbol: 'ｱﾀﾗｼｲ',
    number: '9',
    branch: '00',
    insurerName: 'x',
    cardClassification: '01',
    personalFamily: '1',
    qualificationDate: '20250301',
    registeredOn: '20250405',
  });
  const oldQuery = {
    insurerNumber: '06270011',
    symbol: 'ﾑｺｳ',
    number: '606',
    branch: '00',
    birthdate: '19900202',
    limitConsent: '0' as const,
  };
  t.equal(eligibilityByNumbers(people, oldQuery, '20250401', '20250401').validity, '2', 'before registration: 無効');
  t.equal(
    eligibilityByNumbers(people, oldQuery, '20250401', '20250405').validity,
    '3',
    'after: 無効（新しい資格あり）',
  );
  t.equal(eligibilityByPerson(p, '20250401', '20250401').validity, '2');
  t.equal(eligibilityByPerson(p, '20250401', '20250405').validity, '1');
  t.equal(eligibilityByPerson(undefined, '20250401').validity, '4');
});
