import t from 'tap';
import fc from 'fast-check';
import iconv from 'iconv-lite';
import { isDeepStrictEqual } from 'node:util';
import {
  decodeRequestJson,
  decodeRequestXml,
  decodeResponseJson,
  decodeResponseXml,
  encodeRequestJson,
  encodeRequestXml,
  encodeResponseJson,
  encodeResponseXml,
  insurerCheckDigitOk,
  OqsError,
  type CharacterCode,
  type QualificationRequest,
  type QualificationResponse,
  type XmlTree,
} from '../../src/oqs/index.js';

const RUNS = { numRuns: 150 };

// ---- text -----------------------------------------------------------------------------------

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Names that turn into ● elsewhere, markup characters, whitespace that must survive verbatim. */
const SPECIAL = [
  '髙',
  '﨑',
  '葛\u{E0100}',
  '\uE000',
  '①',
  'テ',
  'ﾃ',
  '　',
  ' ',
  '&',
  '<',
  '>',
  ']]>',
  '\r',
  '\r\n',
  '\n',
  '\t',
  '𠮷',
  '"',
  "'",
];
const utf8Unit = fc.oneof(
  fc.constantFrom(...SPECIAL),
  fc
    .integer({ min: 0x20, max: 0x10ffff })
    .filter((cp) => isXmlChar(cp))
    .map((cp) => String.fromCodePoint(cp)),
);

/** Every character of the cp932 repertoire that iconv-lite writes back to itself. */
function sjisRepertoire(): string[] {
  const out = new Set<string>(['\t', '\n', '\r']);
  for (let c = 0x20; c < 0x7f; c++) out.add(String.fromCharCode(c));
  for (let c = 0xa1; c <= 0xdf; c++) out.add(iconv.decode(Buffer.from([c]), 'cp932'));
  for (let lead = 0x81; lead <= 0xfc; lead++) {
    for (let trail = 0x40; trail <= 0xfc; trail++) {
      const ch = iconv.decode(Buffer.from([lead, trail]), 'cp932');
      if ([...ch].length === 1 && ch !== '\uFFFD' && iconv.decode(iconv.encode(ch, 'cp932'), 'cp932') === ch)
        out.add(ch);
    }
  }
  return [...out];
}
const SJIS_CHARS = sjisRepertoire();
const sjisUnit = fc.oneof(
  fc.constantFrom('髙', '﨑', '①', '　', '&', '<', ']]>', '\r\n'),
  fc.constantFrom(...SJIS_CHARS),
);

type Unit = fc.Arbitrary<string>;
const text = (unit: Unit, maxLength = 12): fc.Arbitrary<string> => fc.string({ unit, minLength: 1, maxLength });

// ---- values ---------------------------------------------------------------------------------

const digits = (n: number): fc.Arbitrary<string> =>
  fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((a) => a.join(''));
/** An independent implementation of spec §9 so that generated numbers are valid. */
function withCheckDigit(body: string): string {
  let sum = 0;
  [...body].reverse().forEach((d, i) => {
    const p = Number(d) * (i % 2 === 0 ? 2 : 1);
    sum += Math.floor(p / 10) + (p % 10);
  });
  return body + String((10 - (sum % 10)) % 10);
}
// 8-digit numbers never start with 00 (法別番号 00 does not exist; the codec reads "00dddddd" as a padded 国保 number).
const insurer = fc
  .oneof(
    digits(5),
    digits(7).filter((b) => !b.startsWith('00')),
  )
  .map((b) => withCheckDigit(b).padStart(8, ' '));
const date = fc
  .date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString().slice(0, 10).replace(/-/g, ''));
const timestamp = fc
  .tuple(date, fc.integer({ min: 0, max: 235959 }))
  .map(([d, hms]) => d + String(hms).padStart(6, '0'));
const ascii = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 50,
});
const opts = { noNullPrototype: true } as const;

function request(unit: Unit): fc.Arbitrary<QualificationRequest> {
  const query = fc.record(
    {
      insurerNumber: insurer,
      symbol: text(unit, 10),
      number: text(unit, 10),
      branch: digits(2),
      birthdate: date,
      limitConsent: fc.constantFrom('0' as const, '1' as const),
      arbitraryId: text(unit),
    },
    { ...opts, requiredKeys: ['insurerNumber', 'number', 'birthdate', 'limitConsent'] },
  );
  return fc.record(
    { confirmationDate: date, institutionCode: digits(10), fileId: ascii, query },
    { ...opts, requiredKeys: ['confirmationDate', 'institutionCode', 'query'] },
  );
}

/** Unmodelled elements: names that cannot collide with modelled ones or look like consents. */
function extraTree(unit: Unit): fc.Arbitrary<XmlTree> {
  const name = fc.stringMatching(/^Ext[A-Za-z0-9]{0,4}$/);
  const leaf = fc.oneof(text(unit), fc.constant(''));
  const node = fc.dictionary(fc.stringMatching(/^[A-Z][a-z]{0,3}$/), leaf, { ...opts, minKeys: 1, maxKeys: 3 });
  const value = fc.oneof(leaf, node, fc.array(fc.oneof(leaf, node), { minLength: 2, maxLength: 3 }));
  return fc.dictionary(name, value, { ...opts, minKeys: 1, maxKeys: 3 });
}
const MEDICAL: XmlTree = {
  PublicExpenseResultList: {
    MedicalTicketInfo: [
      { TicketType: '01', IssueNumber: '1' },
      { TicketType: '02', Remarks1: ' ' },
    ],
  },
};

const nonEmpty = <T extends object>(a: fc.Arbitrary<T>): fc.Arbitrary<T> => a.filter((o) => Object.keys(o).length > 0);

function result(unit: Unit) {
  const consent = (flags: string[]) =>
    fc.record(
      { flag: fc.constantFrom(...flags), time: timestamp, availableTime: timestamp },
      { ...opts, requiredKeys: ['flag'] },
    );
  const code = (...c: string[]) => fc.constantFrom(...c);
  return fc.record(
    {
      cardClassification: code('01', '02', '03', '04', '05', '06', '07', 'A1'),
      insurerNumber: text(unit, 8),
      symbol: text(unit, 10),
      number: text(unit, 10),
      branch: digits(2),
      personalFamily: code('1', '2'),
      insuredName: text(unit),
      name: text(unit),
      nameKana: text(unit),
      nameOfOther: text(unit),
      nameOfOtherKana: text(unit),
      sex1: code('1', '2', '3'),
      sex2: code('1', '2', '3'),
      birthdate: date,
      address: text(unit, 30),
      postNumber: text(unit, 8),
      qualificationDate: date,
      disqualificationDate: date,
      certificateIssuanceDate: date,
      cardValidDate: date,
      cardExpirationDate: date,
      partialContributionRatio: code('010', '020', '030'),
      preschool: code('1'),
      reasonOfLoss: code('01', '02', '03', '99'),
      insurerName: text(unit),
      elderly: nonEmpty(
        fc.record(
          { issueDate: date, validStartDate: date, validEndDate: date, contributionRatio: code('020', '30') },
          { ...opts, requiredKeys: [] },
        ),
      ),
      limitConsent: consent(['0', '1']),
      limitInfo: nonEmpty(
        fc.record(
          {
            classification: code('01', '02', '03'),
            classificationFlag: code('A01', 'A06', 'B01', 'B10'),
            issueDate: date,
            validStartDate: date,
            validEndDate: date,
            longTermDate: date,
          },
          { ...opts, requiredKeys: [] },
        ),
      ),
      specificDiseasesConsent: consent(['0', '1', '2', '3']),
      specificDiseases: fc.array(
        nonEmpty(
          fc.record(
            {
              category: code('1', '2', '3'),
              certificateDate: date,
              validStartDate: date,
              validEndDate: date,
              selfPay: code('10000', '20000'),
            },
            { ...opts, requiredKeys: [] },
          ),
        ),
        { minLength: 1, maxLength: 2 },
      ),
      consents: fc.dictionary(
        fc.constantFrom(
          'PharmacistsInfo',
          'SpecificHealthCheckupsInfo',
          'DiagnosisInfo',
          'OperationInfo',
          'AllergyInfo',
          'DiagnosisName',
        ),
        consent(['0', '1', '2', '3']),
        { ...opts, maxKeys: 4 },
      ),
      referenceNumber: text(unit),
      extra: fc.oneof(fc.constant(MEDICAL), extraTree(unit)),
    },
    { ...opts, requiredKeys: ['cardClassification', 'name', 'sex1', 'birthdate', 'insurerName', 'consents'] },
  );
}

function response(unit: Unit, characterCode: CharacterCode): fc.Arbitrary<QualificationResponse> {
  const header = fc.record(
    {
      processTime: timestamp,
      confirmationDate: date,
      institutionCode: digits(10),
      fileId: text(unit),
      referenceClassification: fc.constantFrom('1' as const, '2' as const),
      segmentOfResult: fc.constantFrom('1' as const, '2' as const, '9' as const),
      errorCode: ascii,
      errorMessage: text(unit),
      characterCode: fc.constant(characterCode),
      extra: extraTree(unit),
    },
    {
      ...opts,
      requiredKeys: [
        'processTime',
        'confirmationDate',
        'institutionCode',
        'referenceClassification',
        'segmentOfResult',
        'characterCode',
      ],
    },
  );
  const query = request(unit).map((r) => r.query);
  const body = fc.record(
    {
      query,
      status: fc.constantFrom('1' as const, '2' as const),
      resultCode: ascii,
      resultMessage: text(unit),
      validity: fc.constantFrom('1' as const, '2' as const, '3' as const, '4' as const, '5' as const, '6' as const),
      prescriptionIssueSelect: fc.constantFrom('1', '2'),
      results: fc.array(result(unit), { maxLength: 3 }),
      extra: extraTree(unit),
      statusMissing: fc.constant(true),
    },
    { ...opts, requiredKeys: ['status', 'results'] },
  );
  // Make the pair consistent the way a decoder would see it (pure: builds new objects).
  return fc.tuple(header, body).map(([h, b]) => {
    const out = { ...b };
    if (out.statusMissing === true && h.segmentOfResult !== '1') out.status = '2';
    else delete out.statusMissing;
    if (out.status === '1' && out.validity === undefined) out.validity = '1';
    return { header: h, body: out };
  });
}

// ---- properties -----------------------------------------------------------------------------

t.test('the Shift_JIS repertoire holds the names that matter', async (t) => {
  for (const ch of ['髙', '﨑', '①', '　', 'ﾃ', '～', '∥']) t.ok(SJIS_CHARS.includes(ch), ch);
  for (const ch of ['\uE000', '〜', '¥'])
    t.notOk(SJIS_CHARS.includes(ch), `${ch} is not (iconv-lite will not write it back)`);
  t.ok(SJIS_CHARS.length > 7000, `${SJIS_CHARS.length} characters`);
});

t.test('generated insurer numbers are valid', async (t) => {
  fc.assert(
    fc.property(insurer, (n) => insurerCheckDigitOk(n)),
    RUNS,
  );
  t.pass();
});

t.test('request round trips', async (t) => {
  fc.assert(
    fc.property(request(utf8Unit), (req) =>
      isDeepStrictEqual(decodeRequestXml(encodeRequestXml(req, 'UTF-8')), { request: req, encoding: 'UTF-8' }),
    ),
    RUNS,
  );
  t.pass('XML UTF-8');
  fc.assert(
    fc.property(request(sjisUnit), (req) =>
      isDeepStrictEqual(decodeRequestXml(encodeRequestXml(req, 'Shift_JIS')), { request: req, encoding: 'Shift_JIS' }),
    ),
    RUNS,
  );
  t.pass('XML Shift_JIS');
  fc.assert(
    fc.property(request(utf8Unit), (req) =>
      isDeepStrictEqual(decodeRequestJson(JSON.parse(JSON.stringify(encodeRequestJson(req)))), req),
    ),
    RUNS,
  );
  t.pass('JSON');
});

t.test('response round trips', async (t) => {
  fc.assert(
    fc.property(response(utf8Unit, '0'), (res) => isDeepStrictEqual(decodeResponseXml(encodeResponseXml(res)), res)),
    RUNS,
  );
  t.pass('XML UTF-8');
  fc.assert(
    fc.property(response(sjisUnit, '1'), (res) => isDeepStrictEqual(decodeResponseXml(encodeResponseXml(res)), res)),
    RUNS,
  );
  t.pass('XML Shift_JIS');
  fc.assert(
    fc.property(response(utf8Unit, '0'), (res) =>
      isDeepStrictEqual(decodeResponseJson(JSON.parse(JSON.stringify(encodeResponseJson(res)))), res),
    ),
    RUNS,
  );
  t.pass('JSON');
});

t.test('Shift_JIS output refuses what it cannot hold, UTF-8 keeps it', async (t) => {
  const outside = fc.constantFrom('葛\u{E0100}', '\uE000', '𠮷', '¥', '〜', 'é');
  fc.assert(
    fc.property(response(sjisUnit, '1'), outside, fc.nat(), (res, ch, at) => {
      if (res.body.results.length === 0) return true;
      const r = res.body.results[0] as QualificationResponse['body']['results'][number];
      const name = r.name.slice(0, at % (r.name.length + 1)) + ch;
      const bad = { ...res, body: { ...res.body, results: [{ ...r, name }, ...res.body.results.slice(1)] } };
      try {
        encodeResponseXml(bad);
        return false;
      } catch (e) {
        if (!(e instanceof OqsError) || e.code !== 'OQS_ENCODING_UNREPRESENTABLE') return false;
      }
      const utf = { ...bad, header: { ...bad.header, characterCode: '0' as const } };
      return decodeResponseXml(encodeResponseXml(utf)).body.results[0]?.name === name;
    }),
    RUNS,
  );
  t.pass();
});
