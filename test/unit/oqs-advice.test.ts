/**
 * What the gateway adds to an answer: the 負担割合 / 限度額 consistency warning, the Shift_JIS name
 * fallback with every change listed, the known-facts guard, and 複数該当 as a list.
 */
import t from 'tap';
import iconv from 'iconv-lite';
import {
  ITAIJI,
  checkKnownFacts,
  checkRatioConsistency,
  multipleMatches,
  nameFallback,
  normalizeKanaName,
  type QualificationResult,
} from '../../src/oqs/index.js';
import { eligibilityByNumbers, seedPopulation, toResult } from '../../src/sim/central/population.js';
import { errorOf } from '../helpers/oqs.js';

const base: QualificationResult = {
  cardClassification: '01',
  name: 'テスト　太郎',
  nameKana: 'ﾃｽﾄ ﾀﾛｳ',
  sex1: '1',
  birthdate: '19800401',
  insurerName: 'テスト健康保険組合',
  consents: {},
};
const elderly = (ratio: string, flag: string | undefined): QualificationResult => ({
  ...base,
  elderly: { contributionRatio: ratio },
  ...(flag !== undefined ? { limitInfo: { classification: '01', classificationFlag: flag } } : {}),
});

t.test('負担割合 vs 限度額適用区分', async (t) => {
  const flagged: Array<[string, string]> = [
    ['10', 'B03'],
    ['010', 'B01'],
    ['20', 'B02'],
    ['30', 'B04'],
    ['30', 'B09'],
    ['30', 'B10'],
    ['030', 'B05'],
    ['30', 'B06'],
    ['30', 'B07'],
    ['30', 'B08'],
  ];
  for (const [ratio, flag] of flagged) {
    const a = checkRatioConsistency(elderly(ratio, flag));
    t.match(
      a,
      { code: 'RATIO_LIMIT_INCONSISTENT', ratio: Number(ratio) / 10, ratioSource: 'elderly', classificationFlag: flag },
      `${ratio}% + ${flag}`,
    );
    t.match(a?.message, /保険者に負担額を確認/);
  }
  t.equal(checkRatioConsistency(elderly('20', 'B03'))?.classificationLabel, '現役並みⅠ');
  const fine: Array<[string, string]> = [
    ['30', 'B01'],
    ['30', 'B03'],
    ['20', 'B04'],
    ['10', 'B05'],
    ['20', 'B09'],
    ['20', 'A03'],
  ];
  for (const [ratio, flag] of fine)
    t.equal(checkRatioConsistency(elderly(ratio, flag)), undefined, `${ratio}% + ${flag} is consistent`);
  t.equal(
    checkRatioConsistency(elderly('20', undefined)),
    undefined,
    'no 限度額 information (no consent): nothing to compare',
  );
  t.equal(checkRatioConsistency(elderly('abc', 'B03')), undefined, 'an unreadable ratio is not guessed');
  t.equal(checkRatioConsistency(base), undefined);
  const kouki = { ...base, partialContributionRatio: '010', limitInfo: { classificationFlag: 'B01' } };
  t.match(checkRatioConsistency(kouki), { ratio: 1, ratioSource: 'partial' }, '後期高齢者: the 一部負担金割合');
  t.match(
    checkRatioConsistency({ ...kouki, elderly: { contributionRatio: '30' } }),
    undefined,
    'the 高齢受給者証 ratio wins when both are present',
  );
});

t.test(
  'the simulator has a person for each inconsistent combination, and the seed stays consistent elsewhere',
  async (t) => {
    const people = seedPopulation();
    const flagged = people
      .filter((p) => p.qualifications.some((x) => checkRatioConsistency(toResult(p, x, true)) !== undefined))
      .map((p) => p.id);
    t.strictSame(flagged, ['P0000013', 'P0000014', 'P0000015', 'P0000016', 'P0000017']);
    const combos = flagged.map((id) => {
      const p = people.find((x) => x.id === id)!;
      const a = checkRatioConsistency(toResult(p, p.qualifications[0]!, true))!;
      return `${a.ratio}:${a.classificationLabel}`;
    });
    t.ok(
      combos.some((c) => c.startsWith('1:現役並み')) && combos.some((c) => c.startsWith('2:現役並み')),
      '1割 and 2割 with 現役並み',
    );
    t.ok(combos.includes('3:一般') && combos.some((c) => c.startsWith('3:低所得')), '3割 with 一般 and with 低所得');
    const p = people.find((x) => x.id === 'P0000013')!;
    t.equal(
      checkRatioConsistency(toResult(p, p.qualifications[0]!, false)),
      undefined,
      'without 限度額 consent the answer has no 適用区分',
    );
  },
);

t.test('names: exact plus a Shift_JIS fallback that lists every change', async (t) => {
  const plain = nameFallback('テスト　太郎');
  t.strictSame(plain, { exact: 'テスト　太郎', fallback: 'テスト　太郎', lossless: true, substitutions: [] });
  t.equal(nameFallback('ﾃｽﾄ ﾀﾛｳ').lossless, true, 'half-width kana is Shift_JIS (JIS X 0201)');

  const taka = nameFallback('髙橋　一郎');
  t.equal(taka.exact, '髙橋　一郎', 'the exact name is untouched');
  t.equal(taka.fallback, '高橋　一郎');
  t.strictSame(taka.substitutions, [
    {
      index: 0,
      length: 1,
      fallbackIndex: 0,
      original: '髙',
      replacement: '高',
      codePoints: ['U+9AD9'],
      kind: 'substituted',
      reasons: ['itaiji'],
    },
  ]);
  t.match(nameFallback('山﨑　花子'), {
    fallback: '山崎　花子',
    substitutions: [{ index: 1, original: '﨑', replacement: '崎', reasons: ['itaiji'] }],
  });

  const ivs = nameFallback('葛\u{E0100}飾　十二');
  t.equal(ivs.fallback, '葛飾　十二');
  t.strictSame(ivs.substitutions, [
    {
      index: 0,
      length: 3,
      fallbackIndex: 0,
      original: '葛\u{E0100}',
      replacement: '葛',
      codePoints: ['U+845B', 'U+E0100'],
      kind: 'substituted',
      reasons: ['variation-selector'],
    },
  ]);
  t.match(
    nameFallback('辻\uFE00').substitutions,
    [{ reasons: ['variation-selector'], replacement: '辻' }],
    'a standardized variation selector too',
  );

  const gaiji = nameFallback('\uE000川　三郎');
  t.equal(gaiji.fallback, '〓川　三郎', 'the placeholder, listed — not a silent ● or ?');
  t.strictSame(gaiji.substitutions, [
    {
      index: 0,
      length: 1,
      fallbackIndex: 0,
      original: '\uE000',
      replacement: '〓',
      codePoints: ['U+E000'],
      kind: 'unrepresentable',
      reasons: ['private-use'],
    },
  ]);
  t.equal(nameFallback('\uE000川', { placeholder: '＊' }).fallback, '＊川');
  t.equal(
    errorOf(t, () => nameFallback('x', { placeholder: '\uE000' }))?.code,
    'OQS_ENCODING_UNREPRESENTABLE',
    'the placeholder itself must be representable',
  );

  // Positions are UTF-16 offsets in both strings, also after an astral character.
  const mixed = nameFallback('𠮷野\u{E0101}髙\uE001');
  t.equal(mixed.fallback, '吉野高〓');
  t.strictSame(
    mixed.substitutions.map((s) => [s.index, s.length, s.fallbackIndex, s.replacement, s.kind]),
    [
      [0, 2, 0, '吉', 'substituted'],
      [2, 3, 1, '野', 'substituted'],
      [5, 1, 2, '高', 'substituted'],
      [6, 1, 3, '〓', 'unrepresentable'],
    ],
  );
  for (const s of mixed.substitutions) {
    t.equal(mixed.exact.slice(s.index, s.index + s.length), s.original, `original at ${s.index}`);
    t.equal(
      mixed.fallback.slice(s.fallbackIndex, s.fallbackIndex + s.replacement.length),
      s.replacement,
      `replacement at ${s.fallbackIndex}`,
    );
  }

  t.match(
    nameFallback('\uFA10本').substitutions,
    [{ original: '\uFA10', replacement: '\u585A', reasons: ['normalized'] }],
    'a compatibility ideograph → its unified form (NFC)',
  );
  t.match(
    nameFallback('\uFA15').substitutions,
    [{ replacement: '熙', reasons: ['normalized', 'itaiji'] }],
    'NFC, then the table',
  );
  t.match(
    nameFallback('か\u3099').substitutions,
    [{ replacement: 'が', reasons: ['normalized'] }],
    'a combining sound mark is composed',
  );
  t.match(
    nameFallback('①').substitutions,
    [{ kind: 'unrepresentable', reasons: ['not-in-target'] }],
    'NEC row 13 is not JIS X 0208',
  );
  t.match(
    nameFallback('彅').substitutions,
    [{ kind: 'unrepresentable', reasons: ['not-in-target'] }],
    'no guess where the table has no entry',
  );

  const cp = nameFallback('髙橋﨑①葛\u{E0100}', { target: 'cp932' });
  t.equal(cp.fallback, '髙橋﨑①葛', 'cp932 keeps 髙 﨑 ① (IBM / NEC extensions)');
  t.match(cp.substitutions, [{ original: '葛\u{E0100}', reasons: ['variation-selector'] }]);

  // Whatever the input, the fallback encodes losslessly and every difference is listed.
  for (const name of ['髙﨑𠮷\u{E0100}', '\uE000\uE001', '葛\u{E0100}\uFA10凞']) {
    const r = nameFallback(name);
    t.equal(iconv.decode(iconv.encode(r.fallback, 'cp932'), 'cp932'), r.fallback, `${r.fallback} survives Shift_JIS`);
    let rebuilt = '';
    let at = 0;
    for (const s of r.substitutions) {
      rebuilt += name.slice(at, s.index) + s.replacement;
      at = s.index + s.length;
    }
    t.equal(rebuilt + name.slice(at), r.fallback, 'exact + substitutions = fallback');
  }
});

t.test('the 異体字 table maps outside JIS X 0208 into it', async (t) => {
  for (const [from, to] of Object.entries(ITAIJI)) {
    t.match(
      nameFallback(from),
      { fallback: to, substitutions: [{ kind: 'substituted', reasons: ['itaiji'] }] },
      `${from} → ${to}`,
    );
    t.ok(nameFallback(to).lossless, `${to} is JIS X 0208`);
  }
});

t.test('known facts vs the answer', async (t) => {
  const answer: QualificationResult = { ...base, nameKana: 'ｼﾞｭｳﾌｸ ｷｭｳ', sex1: '1', birthdate: '20100101' };
  t.strictSame(checkKnownFacts({}, answer), { compared: [], mismatched: [] }, 'nothing known, nothing compared');
  t.strictSame(
    checkKnownFacts({ birthdate: '2010-01-01', nameKana: 'じゅうふく　きゅう', sex: '1' }, answer),
    { compared: ['birthdate', 'nameKana', 'sex'], mismatched: [] },
    'hiragana, full-width space, dashed date',
  );
  t.strictSame(checkKnownFacts({ nameKana: 'ジユウフクキユウ' }, answer).mismatched, [], 'small kana registered large');
  t.strictSame(checkKnownFacts({ nameKana: 'ｼﾞｭｳﾌｸ　ｷｭｳ' }, answer).mismatched, []);
  t.strictSame(
    checkKnownFacts({ nameKana: 'シユウフクキユウ' }, answer).mismatched,
    ['nameKana'],
    'a missing dakuten is a different name',
  );
  t.strictSame(checkKnownFacts({ birthdate: '20100102', nameKana: 'ﾃｽﾄ ﾀﾛｳ', sex: '2' }, answer), {
    compared: ['birthdate', 'nameKana', 'sex'],
    mismatched: ['birthdate', 'nameKana', 'sex'],
  });
  t.strictSame(checkKnownFacts({ sex: '3' }, answer).compared, [], '未設定 is not compared');
  t.strictSame(
    checkKnownFacts({ sex: '2' }, { ...answer, sex2: '2' }).mismatched,
    [],
    'Sex2 (the notation on the card) counts',
  );
  t.strictSame(
    checkKnownFacts({ nameKana: 'ﾂｳｼｮｳ' }, { ...answer, nameOfOtherKana: 'ﾂｳｼｮｳ' }).mismatched,
    [],
    'NameOfOtherKana counts',
  );
  const { nameKana: _n, ...noKana } = answer;
  t.strictSame(
    checkKnownFacts({ nameKana: 'ｼﾞｭｳﾌｸ ｷｭｳ' }, noKana).compared,
    [],
    'an answer without NameKana is not compared',
  );
  t.equal(errorOf(t, () => checkKnownFacts({ birthdate: '2010/1/1' }, answer))?.details.reason, 'date-format');
  t.equal(normalizeKanaName('ｳﾞｧｲｵﾘﾝ・ｽﾐｽ'), 'ヴアイオリンスミス');
});

t.test('複数該当: the candidates as a list, never one picked', async (t) => {
  const people = seedPopulation();
  const e = eligibilityByNumbers(
    people,
    {
      insurerNumber: '27139997',
      symbol: 'ﾌｸｽｳ',
      number: '1001',
      branch: '00',
      birthdate: '20100101',
      limitConsent: '0',
    },
    '20250401',
  );
  t.equal(e.validity, '5', 'the seed has a 複数該当 pair');
  const results = e.matches.map((m) => toResult(m.person, m.qualification, false));
  const m = multipleMatches({ validity: e.validity, results });
  t.equal(m?.candidates.length, 2);
  t.strictSame(
    m?.candidates.map((c) => [c.index, c.result.name]),
    [
      [0, '重複　九'],
      [1, '重複　十'],
    ],
    'in the order central sent them',
  );
  t.strictSame(m?.differingFields, ['name', 'nameKana', 'sex1'], 'what staff should compare');
  t.equal(multipleMatches({ validity: '1', results: [results[0]!] }), undefined);
  t.equal(multipleMatches({ validity: '4', results: [] }), undefined);
  t.strictSame(
    multipleMatches({ validity: '5', results: [] }),
    { candidates: [], differingFields: [] },
    'validity 5 without results is still 複数該当',
  );
  t.equal(
    multipleMatches({ validity: '1', results })?.candidates.length,
    2,
    'more than one result is 複数該当 whatever the validity says',
  );
});

t.test(
  'property: any name → a fallback in JIS X 0208/0201 that differs from the exact name only where listed',
  async (t) => {
    const { default: fc } = await import('fast-check');
    // The oracle enumerates the Shift_JIS code space instead of encoding characters one by one.
    const jis = new Set<string>();
    for (let c = 0x20; c < 0x7f; c++) jis.add(String.fromCharCode(c));
    for (let c = 0xa1; c <= 0xdf; c++) jis.add(iconv.decode(Buffer.from([c]), 'cp932'));
    for (const lead of [...Array(0x9f - 0x81 + 1).keys()]
      .map((i) => i + 0x81)
      .filter((l) => l <= 0x84 || l >= 0x88)
      .concat([...Array(11).keys()].map((i) => 0xe0 + i))) {
      for (let trail = 0x40; trail <= 0xfc; trail++) {
        if (trail === 0x7f) continue;
        const ch = iconv.decode(Buffer.from([lead, trail]), 'cp932');
        if (ch !== '\uFFFD' && [...ch].length === 1) jis.add(ch);
      }
    }
    const tricky = [
      '髙',
      '﨑',
      '葛\u{E0100}',
      '辻\uFE00',
      '\uE000',
      '①',
      '𠮷',
      '\uFA10',
      '\uFA15',
      'か\u3099',
      '\u3099',
      'ﾃ',
      '　',
      '彅',
      ...Object.keys(ITAIJI),
    ];
    const unit = fc.oneof(
      fc.constantFrom(...tricky),
      fc
        .integer({ min: 0x20, max: 0x2ffff })
        .filter((cp) => cp < 0xd800 || cp > 0xdfff)
        .map((cp) => String.fromCodePoint(cp)),
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 10 }), (name) => {
        const r = nameFallback(name);
        if (r.exact !== name || ![...r.fallback].every((c) => jis.has(c))) return false;
        let rebuilt = '';
        let at = 0;
        for (const s of r.substitutions) {
          if (
            s.index < at ||
            name.slice(s.index, s.index + s.length) !== s.original ||
            (s.original === s.replacement && s.reasons.length === 0)
          )
            return false;
          if (rebuilt.length + (s.index - at) !== s.fallbackIndex) return false;
          rebuilt += name.slice(at, s.index) + s.replacement;
          at = s.index + s.length;
        }
        return rebuilt + name.slice(at) === r.fallback && r.lossless === (r.substitutions.length === 0);
      }),
      { numRuns: 300 },
    );
    t.pass('300 random names');
  },
);
