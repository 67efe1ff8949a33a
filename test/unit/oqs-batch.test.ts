/**
 * The batch inquiry (一括照会) codecs: the spec's §10.4 round trip in real Shift_JIS / UTF-8 bytes,
 * the JSON form, and what a strict reader refuses.
 */
import t, { type Test } from 'tap';
import iconv from 'iconv-lite';
import { isDeepStrictEqual } from 'node:util';
import { errorOf } from '../helpers/oqs.js';
import {
  batchFetchFromTree,
  batchOutcome,
  batchReceiptFromTree,
  batchResultFromTree,
  batchResultToTree,
  batchSubmitFromTree,
  batchSubmitToTree,
  decodeBatchFetchJson,
  decodeBatchFetchXml,
  decodeBatchReceiptJson,
  decodeBatchReceiptXml,
  decodeBatchResultJson,
  decodeBatchResultXml,
  decodeBatchSubmitJson,
  decodeBatchSubmitXml,
  encodeBatchFetchJson,
  encodeBatchFetchXml,
  encodeBatchReceiptJson,
  encodeBatchReceiptXml,
  encodeBatchResultJson,
  encodeBatchResultXml,
  encodeBatchSubmitJson,
  encodeBatchSubmitXml,
  pairBatchResults,
  padInsurerNumber,
  parseXmlDocument,
  type BatchResult,
  type BatchSubmitRequest,
  type NumbersQuery,
  type OqsErrorCode,
  type XmlTree,
} from '../../src/oqs/index.js';

const sjis = (s: string): Buffer => iconv.encode(s, 'cp932');
const u8 = (s: string): Buffer => Buffer.from(s, 'utf8');

function failsAt(
  t: Test,
  fn: () => unknown,
  path: string,
  reason: string,
  code: OqsErrorCode = 'OQS_MESSAGE_INVALID',
): void {
  const e = errorOf(t, fn);
  t.strictSame(
    e && { code: e.code, path: e.details.path, reason: e.details.reason },
    { code, path, reason },
    `${code} ${reason} at ${path}`,
  );
}

// Spec §10.4, written out (the spec elides the echoes and the declaration).
const SUBMIT_10_4 = `<?xml version="1.0" encoding="Shift_JIS" standalone="no"?>
<XmlMsg><MessageHeader><QualificationConfirmationDate>20250402</QualificationConfirmationDate>
<MedicalInstitutionCode>1319999994</MedicalInstitutionCode><ArbitraryFileIdentifier>B20250401-0002</ArbitraryFileIdentifier></MessageHeader>
<MessageBody>
<QualificationConfirmSearchInfo><InsurerNumber>06139992</InsurerNumber><InsuredCardSymbol>テスト</InsuredCardSymbol>
 <InsuredIdentificationNumber>12345</InsuredIdentificationNumber><InsuredBranchNumber>00</InsuredBranchNumber><Birthdate>19800401</Birthdate>
 <LimitApplicationCertificateRelatedConsFlg>0</LimitApplicationCertificateRelatedConsFlg><ArbitraryIdentifier>P000123_1</ArbitraryIdentifier></QualificationConfirmSearchInfo>
<QualificationConfirmSearchInfo><InsurerNumber>  139998</InsurerNumber><InsuredCardSymbol>ﾃｽﾄ</InsuredCardSymbol>
 <InsuredIdentificationNumber>7777</InsuredIdentificationNumber><InsuredBranchNumber>01</InsuredBranchNumber><Birthdate>19900101</Birthdate>
 <LimitApplicationCertificateRelatedConsFlg>0</LimitApplicationCertificateRelatedConsFlg><ArbitraryIdentifier>P000789_2</ArbitraryIdentifier></QualificationConfirmSearchInfo>
</MessageBody></XmlMsg>`;

const RECEIPT_10_4 = `<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<XmlMsg><MessageHeader><ProcessExecutionTime>20250401180000</ProcessExecutionTime><MedicalInstitutionCode>1319999994</MedicalInstitutionCode>
<ArbitraryFileIdentifier>B20250401-0002</ArbitraryFileIdentifier><SegmentOfResult>1</SegmentOfResult><CharacterCodeIdentifier>0</CharacterCodeIdentifier></MessageHeader>
<MessageBody><ReceptionNumber>R0000000001</ReceptionNumber><ReceptionDateTime>20250401180000</ReceptionDateTime></MessageBody></XmlMsg>`;

const FETCH_10_4 = `<XmlMsg><MessageHeader><MedicalInstitutionCode>1319999994</MedicalInstitutionCode></MessageHeader>
<MessageBody><ReceptionNumber>R0000000001</ReceptionNumber></MessageBody></XmlMsg>`;

const ECHO_1 = `<QualificationConfirmSearchInfo><InsurerNumber>06139992</InsurerNumber><InsuredCardSymbol>テスト</InsuredCardSymbol>
 <InsuredIdentificationNumber>12345</InsuredIdentificationNumber><InsuredBranchNumber>00</InsuredBranchNumber><Birthdate>19800401</Birthdate>
 <LimitApplicationCertificateRelatedConsFlg>0</LimitApplicationCertificateRelatedConsFlg><ArbitraryIdentifier>P000123_1</ArbitraryIdentifier></QualificationConfirmSearchInfo>`;
const ECHO_2 = `<QualificationConfirmSearchInfo><InsurerNumber>  139998</InsurerNumber><InsuredCardSymbol>ﾃｽﾄ</InsuredCardSymbol>
 <InsuredIdentificationNumber>7777</InsuredIdentificationNumber><InsuredBranchNumber>01</InsuredBranchNumber><Birthdate>19900101</Birthdate>
 <LimitApplicationCertificateRelatedConsFlg>0</LimitApplicationCertificateRelatedConsFlg><ArbitraryIdentifier>P000789_2</ArbitraryIdentifier></QualificationConfirmSearchInfo>`;

const resultXml = (encoding: string, cc: string) => `<?xml version="1.0" encoding="${encoding}" standalone="no"?>
<XmlMsg><MessageHeader><ProcessExecutionTime>20250402070000</ProcessExecutionTime><QualificationConfirmationDate>20250402</QualificationConfirmationDate>
<MedicalInstitutionCode>1319999994</MedicalInstitutionCode><ArbitraryFileIdentifier>B20250401-0002</ArbitraryFileIdentifier>
<ReceptionNumber>R0000000001</ReceptionNumber><SegmentOfResult>1</SegmentOfResult><NumberOfProcessingResult>2</NumberOfProcessingResult>
<NumberOfNormalProcessing>1</NumberOfNormalProcessing><NumberOfError>1</NumberOfError><CharacterCodeIdentifier>${cc}</CharacterCodeIdentifier></MessageHeader>
<MessageBody>
<BulkConfirmUnit>
 ${ECHO_1}
 <ProcessingResultStatus>1</ProcessingResultStatus><QualificationValidity>1</QualificationValidity>
 <ResultOfQualificationConfirmation><InsuredCardClassification>01</InsuredCardClassification><InsurerNumber>06139992</InsurerNumber>
 <InsuredCardSymbol>テスト</InsuredCardSymbol><InsuredIdentificationNumber>12345</InsuredIdentificationNumber><InsuredBranchNumber>00</InsuredBranchNumber>
 <Name>テスト　太郎</Name><NameKana>ﾃｽﾄ ﾀﾛｳ</NameKana><Sex1>1</Sex1><Birthdate>19800401</Birthdate><InsurerName>テスト健康保険組合</InsurerName>
 </ResultOfQualificationConfirmation>
 <LimitApplicationCertificateChanged>0</LimitApplicationCertificateChanged>
</BulkConfirmUnit>
<BulkConfirmUnit>
 ${ECHO_2}
 <ProcessingResultStatus>2</ProcessingResultStatus><ProcessingResultCode>EQ0001</ProcessingResultCode>
 <ProcessingResultMessage>該当する資格情報が存在しません。</ProcessingResultMessage>
</BulkConfirmUnit>
</MessageBody></XmlMsg>`;

const E1: NumbersQuery = {
  insurerNumber: '06139992',
  symbol: 'テスト',
  number: '12345',
  branch: '00',
  birthdate: '19800401',
  limitConsent: '0',
  arbitraryId: 'P000123_1',
};
const E2: NumbersQuery = {
  insurerNumber: '  139998',
  symbol: 'ﾃｽﾄ',
  number: '7777',
  branch: '01',
  birthdate: '19900101',
  limitConsent: '0',
  arbitraryId: 'P000789_2',
};
const SUBMIT: BatchSubmitRequest = {
  confirmationDate: '20250402',
  institutionCode: '1319999994',
  fileId: 'B20250401-0002',
  entries: [E1, E2],
};

t.test('§10.4 submit: real Shift_JIS bytes, each entry with its patient key', async (t) => {
  const { request, encoding } = decodeBatchSubmitXml(sjis(SUBMIT_10_4));
  t.equal(encoding, 'Shift_JIS');
  t.strictSame(request, SUBMIT);
  const again = encodeBatchSubmitXml(request, 'Shift_JIS');
  t.ok(again.includes(sjis('<InsurerNumber>  139998</InsurerNumber>')), '国保 number stays space-padded');
  t.strictSame(decodeBatchSubmitXml(again).request, request, 'Shift_JIS round trip');
  t.strictSame(decodeBatchSubmitXml(encodeBatchSubmitXml(request, 'UTF-8')).request, request, 'UTF-8 round trip');
  t.strictSame(
    decodeBatchSubmitJson(JSON.parse(JSON.stringify(encodeBatchSubmitJson(request)))),
    request,
    'JSON round trip',
  );
  const json = encodeBatchSubmitJson(request) as {
    XmlMsg: { MessageBody: { QualificationConfirmSearchInfo: unknown } };
  };
  t.ok(Array.isArray(json.XmlMsg.MessageBody.QualificationConfirmSearchInfo), 'repeated entries are a JSON array');
  const one = { ...SUBMIT, entries: [E1] };
  t.strictSame(decodeBatchSubmitXml(encodeBatchSubmitXml(one, 'UTF-8')).request, one, 'a batch of one');
});

t.test('submit: what is refused', async (t) => {
  const body = (tree: XmlTree): XmlTree => tree.MessageBody as XmlTree;
  const base = batchSubmitToTree(SUBMIT);
  failsAt(
    t,
    () => batchSubmitToTree({ ...SUBMIT, entries: [] }),
    'MessageBody/QualificationConfirmSearchInfo',
    'missing',
  );
  failsAt(t, () => batchSubmitFromTree({ ...base, MessageBody: {} }), 'MessageBody', 'missing');
  const { arbitraryId: _drop, ...noId } = E2;
  failsAt(
    t,
    () => batchSubmitToTree({ ...SUBMIT, entries: [E1, noId] }),
    'MessageBody/QualificationConfirmSearchInfo[2]/ArbitraryIdentifier',
    'missing',
  );
  failsAt(
    t,
    () => batchSubmitToTree({ ...SUBMIT, entries: [E1, { ...E2, arbitraryId: E1.arbitraryId! }] }),
    'MessageBody/QualificationConfirmSearchInfo[2]/ArbitraryIdentifier',
    'duplicate-identifier',
  );
  failsAt(
    t,
    () => batchSubmitToTree({ ...SUBMIT, entries: [{ ...E1, arbitraryId: 'a\u0007b' }] }),
    'MessageBody/QualificationConfirmSearchInfo/ArbitraryIdentifier',
    'format',
  );
  failsAt(
    t,
    () => batchSubmitToTree({ ...SUBMIT, entries: [E1, { ...E2, branch: '1' }] }),
    'MessageBody/QualificationConfirmSearchInfo[2]/InsuredBranchNumber',
    'format',
  );
  const extra = structuredClone(base);
  body(extra).Surprise = 'x';
  failsAt(t, () => batchSubmitFromTree(extra), 'MessageBody/Surprise', 'unknown-element');
  failsAt(
    t,
    () => batchSubmitToTree({ ...SUBMIT, confirmationDate: '2025-04-02' }),
    'MessageHeader/QualificationConfirmationDate',
    'date-format',
  );
  failsAt(
    t,
    () => batchSubmitToTree({ ...SUBMIT, fileId: 'ファイル' }),
    'MessageHeader/ArbitraryFileIdentifier',
    'format',
  );
  const e = errorOf(t, () =>
    encodeBatchSubmitXml({ ...SUBMIT, entries: [{ ...E1, symbol: '葛\u{E0100}' }] }, 'Shift_JIS'),
  );
  t.equal(e?.code, 'OQS_ENCODING_UNREPRESENTABLE', 'never a silent ? in a Shift_JIS request');
  t.equal(
    errorOf(t, () => decodeBatchSubmitXml(u8('<?xml version="1.0"?><!DOCTYPE XmlMsg [<!ENTITY x "y">]><XmlMsg/>')))
      ?.code,
    'OQS_XML_FORBIDDEN',
    'no DTD',
  );
  t.equal(
    errorOf(t, () => decodeBatchSubmitXml(u8(SUBMIT_10_4.replace('Shift_JIS', 'UTF-8')), { maxBytes: 100 }))?.code,
    'OQS_XML_TOO_LARGE',
    'size limit',
  );
});

t.test('§10.4 receipt and fetch', async (t) => {
  const receipt = decodeBatchReceiptXml(u8(RECEIPT_10_4));
  t.strictSame(receipt, {
    header: {
      processTime: '20250401180000',
      institutionCode: '1319999994',
      fileId: 'B20250401-0002',
      segmentOfResult: '1',
      characterCode: '0',
    },
    receptionNumber: 'R0000000001',
    receptionTime: '20250401180000',
  });
  t.strictSame(decodeBatchReceiptXml(encodeBatchReceiptXml(receipt)), receipt);
  t.strictSame(decodeBatchReceiptJson(encodeBatchReceiptJson(receipt)), receipt);
  failsAt(
    t,
    () =>
      batchReceiptFromTree(
        parseXmlDocument(u8(RECEIPT_10_4.replace(/<ReceptionNumber>.*<\/ReceptionNumber>/, ''))).tree,
      ),
    'MessageBody/ReceptionNumber',
    'missing',
  );
  const refused = {
    header: { ...receipt.header, segmentOfResult: '9' as const, errorCode: 'E999', errorMessage: '件数超過' },
  };
  t.strictSame(
    decodeBatchReceiptJson(encodeBatchReceiptJson(refused)),
    refused,
    'a refused batch has no reception number',
  );
  t.equal(
    errorOf(t, () =>
      decodeBatchReceiptXml(u8(RECEIPT_10_4.replace('<CharacterCodeIdentifier>0', '<CharacterCodeIdentifier>1'))),
    )?.code,
    'OQS_ENCODING_MISMATCH',
  );
  failsAt(
    t,
    () => batchReceiptFromTree(parseXmlDocument(u8(RECEIPT_10_4.replace('R0000000001', 'R 1'))).tree),
    'MessageBody/ReceptionNumber',
    'format',
  );

  const { request } = decodeBatchFetchXml(u8(FETCH_10_4));
  t.strictSame(request, { institutionCode: '1319999994', receptionNumber: 'R0000000001' });
  t.strictSame(decodeBatchFetchXml(encodeBatchFetchXml(request, 'Shift_JIS')).request, request);
  t.strictSame(decodeBatchFetchJson(encodeBatchFetchJson(request)), request);
  failsAt(
    t,
    () => batchFetchFromTree({ MessageHeader: { MedicalInstitutionCode: '1319999994' }, MessageBody: {} }),
    'MessageBody',
    'missing',
  );
  failsAt(
    t,
    () =>
      batchFetchFromTree({
        MessageHeader: { MedicalInstitutionCode: '1319999994', X: '1' },
        MessageBody: { ReceptionNumber: 'R1' },
      }),
    'MessageHeader/X',
    'unknown-element',
  );
});

t.test('§10.4 results: a unit per entry, a per-entry error, order and wrapping do not matter', async (t) => {
  const result = decodeBatchResultXml(u8(resultXml('UTF-8', '0')));
  t.match(result.header, {
    processTime: '20250402070000',
    confirmationDate: '20250402',
    receptionNumber: 'R0000000001',
    fileId: 'B20250401-0002',
    segmentOfResult: '1',
    total: 2,
    normal: 1,
    errors: 1,
  });
  t.equal(result.units.length, 2);
  const [ok, bad] = result.units;
  t.strictSame(ok?.query, E1, 'the echo carries the patient key');
  t.equal(ok?.validity, '1');
  t.equal(ok?.results[0]?.name, 'テスト　太郎');
  t.equal(ok?.limitChanged, '0', 'OQSCD014 read into the unit');
  t.match(bad, { status: '2', resultCode: 'EQ0001', resultMessage: '該当する資格情報が存在しません。', results: [] });
  t.strictSame(bad?.query, E2);

  t.strictSame(decodeBatchResultXml(encodeBatchResultXml(result)), result, 'XML round trip');
  t.strictSame(
    decodeBatchResultJson(JSON.parse(JSON.stringify(encodeBatchResultJson(result)))),
    result,
    'JSON round trip',
  );
  const sj = decodeBatchResultXml(sjis(resultXml('Shift_JIS', '1')));
  t.strictSame(sj.units, result.units, 'the same in Shift_JIS');

  // Units in reverse order; results directly in the unit instead of in ResultList.
  const tree = parseXmlDocument(u8(resultXml('UTF-8', '0'))).tree;
  const units = ((tree.MessageBody as XmlTree).BulkConfirmUnit as XmlTree[]).slice().reverse();
  (tree.MessageBody as XmlTree).BulkConfirmUnit = units;
  t.strictSame(
    pairBatchResults([E1, E2], batchResultFromTree(tree).units).paired.map((p) => p.entry.arbitraryId),
    ['P000789_2', 'P000123_1'],
    'paired by ArbitraryIdentifier, not by position',
  );
  const wrapped = structuredClone(batchResultToTree(result));
  const u0 = ((wrapped.MessageBody as XmlTree).BulkConfirmUnit as XmlTree[])[0] as XmlTree;
  t.ok(u0.ResultList, 'written wrapped in ResultList');
  u0.ResultOfQualificationConfirmation = (u0.ResultList as XmlTree).ResultOfQualificationConfirmation as XmlTree;
  delete u0.ResultList;
  t.strictSame(batchResultFromTree(wrapped), result, 'found by name, wrapped or not');
});

t.test('results: counts must match the units; 処理中 and failed answers', async (t) => {
  const tree = parseXmlDocument(u8(resultXml('UTF-8', '0'))).tree;
  const setHeader = (k: string, v: string): XmlTree => {
    const c = structuredClone(tree);
    (c.MessageHeader as XmlTree)[k] = v;
    return c;
  };
  failsAt(
    t,
    () => batchResultFromTree(setHeader('NumberOfProcessingResult', '3')),
    'MessageHeader/NumberOfProcessingResult',
    'count-mismatch',
  );
  failsAt(
    t,
    () => batchResultFromTree(setHeader('NumberOfError', '0')),
    'MessageHeader/NumberOfNormalProcessing',
    'count-mismatch',
  );
  // The encoder reads its own tree back unless told not to (only the simulator does: the gateway validates what it reads).
  const lost = batchResultFromTree(tree);
  const inconsistent = { ...lost, header: { ...lost.header, total: lost.units.length + 1 } };
  failsAt(t, () => encodeBatchResultJson(inconsistent), 'MessageHeader/NumberOfProcessingResult', 'count-mismatch');
  t.throws(
    () => decodeBatchResultJson(JSON.parse(JSON.stringify(encodeBatchResultJson(inconsistent, { check: false })))),
    'unchecked, it is still refused by the reader',
  );
  failsAt(t, () => batchResultFromTree(setHeader('NumberOfError', '-1')), 'MessageHeader/NumberOfError', 'format');
  const noCount = structuredClone(tree);
  delete (noCount.MessageHeader as XmlTree).NumberOfProcessingResult;
  failsAt(t, () => batchResultFromTree(noCount), 'MessageHeader/NumberOfProcessingResult', 'missing');
  const noStatus = structuredClone(tree);
  delete (((noStatus.MessageBody as XmlTree).BulkConfirmUnit as XmlTree[])[1] as XmlTree).ProcessingResultStatus;
  failsAt(t, () => batchResultFromTree(noStatus), 'MessageBody/BulkConfirmUnit[2]/ProcessingResultStatus', 'missing');
  const badValidity = structuredClone(tree);
  (((badValidity.MessageBody as XmlTree).BulkConfirmUnit as XmlTree[])[0] as XmlTree).QualificationValidity = '7';
  failsAt(
    t,
    () => batchResultFromTree(badValidity),
    'MessageBody/BulkConfirmUnit[1]/QualificationValidity',
    'unknown-code',
  );

  const pending: BatchResult = {
    header: {
      processTime: '20250401180500',
      institutionCode: '1319999994',
      receptionNumber: 'R0000000001',
      segmentOfResult: '2',
      characterCode: '0',
    },
    units: [],
  };
  const decoded = decodeBatchResultJson(encodeBatchResultJson(pending));
  t.strictSame(decoded, pending, '処理中 needs neither date nor counts');
  t.strictSame(batchOutcome(decoded), { state: 'pending' });
  const failed: BatchResult = {
    header: { ...pending.header, segmentOfResult: '9', errorCode: 'E1', errorMessage: 'だめ' },
    units: [],
  };
  t.strictSame(batchOutcome(decodeBatchResultJson(encodeBatchResultJson(failed))), {
    state: 'failed',
    errorCode: 'E1',
    errorMessage: 'だめ',
  });
  const done = decodeBatchResultXml(u8(resultXml('UTF-8', '0')));
  t.match(batchOutcome(done), { state: 'done', units: done.units });
  const withUnits = structuredClone(tree);
  (withUnits.MessageHeader as XmlTree).SegmentOfResult = '2';
  failsAt(t, () => batchResultFromTree(withUnits), 'MessageBody/BulkConfirmUnit', 'unexpected');
});

t.test('pairing results with the submitted entries', async (t) => {
  const result = decodeBatchResultXml(u8(resultXml('UTF-8', '0')));
  const [u1, u2] = result.units as [(typeof result.units)[0], (typeof result.units)[0]];
  const E3: NumbersQuery = { ...E1, number: '3', arbitraryId: 'P3' };
  const stranger = { ...u2, query: { ...E2, arbitraryId: 'NOT-OURS' } };
  const noEcho = { status: '1' as const, validity: '4' as const, results: [] };
  const p = pairBatchResults([E1, E2, E3], [u1, u2, u1, stranger, noEcho]);
  t.strictSame(
    p.paired.map((x) => [x.entry.arbitraryId, x.unit]),
    [
      ['P000123_1', u1],
      ['P000789_2', u2],
    ],
  );
  t.strictSame(p.missing, [E3], 'an entry with no unit is not done');
  t.strictSame(p.unmatched, [u1, stranger, noEcho], 'a repeat, a stranger and a unit without echo are never bound');
});

t.test('property: any valid batch survives XML (both encodings) and JSON, and pairs back entry by entry', async (t) => {
  const { default: fc } = await import('fast-check');
  const digits = (n: number) =>
    fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((a) => a.join(''));
  const sjisText = fc.string({
    unit: fc.constantFrom('テ', 'ﾃ', '１', '髙', '﨑', '-', 'A', '9', '&', '<', '　'),
    minLength: 1,
    maxLength: 20,
  });
  const entry = fc
    .record({
      insurerNumber: fc.oneof(
        digits(8),
        digits(6),
        digits(6).map((d) => `  ${d}`),
      ),
      symbol: fc.option(sjisText, { nil: undefined }),
      number: sjisText,
      branch: fc.option(digits(2), { nil: undefined }),
      birthdate: digits(8),
      limitConsent: fc.constantFrom('0' as const, '1' as const),
    })
    .map((e) => Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined)) as unknown as NumbersQuery);
  const batchArb = fc
    .record({
      confirmationDate: digits(8),
      fileId: fc.option(fc.string({ unit: fc.constantFrom('B', '-', '0', '9', '_'), minLength: 1, maxLength: 50 }), {
        nil: undefined,
      }),
      entries: fc.array(entry, { minLength: 1, maxLength: 30 }),
    })
    .map(
      ({ confirmationDate, fileId, entries }): BatchSubmitRequest => ({
        confirmationDate,
        institutionCode: '1319999994',
        ...(fileId !== undefined ? { fileId } : {}),
        entries: entries.map((e, i) => ({ ...e, arbitraryId: `P${i}_${i % 7}` })),
      }),
    );
  // The wire form: 6-digit numbers space-padded, "00dddddd" folded to "  dddddd" (docs/oqs.md).
  const padded = (req: BatchSubmitRequest): BatchSubmitRequest => ({
    ...req,
    entries: req.entries.map((e) => ({ ...e, insurerNumber: padInsurerNumber(e.insurerNumber) })),
  });
  fc.assert(
    fc.property(batchArb, (req) => {
      const want = padded(req);
      for (const enc of ['UTF-8', 'Shift_JIS'] as const) {
        if (!isDeepStrictEqual(decodeBatchSubmitXml(encodeBatchSubmitXml(req, enc)).request, want)) return false;
      }
      if (!isDeepStrictEqual(decodeBatchSubmitJson(JSON.parse(JSON.stringify(encodeBatchSubmitJson(req)))), want))
        return false;
      const units = [...want.entries]
        .reverse()
        .map((query) => ({ query, status: '1' as const, validity: '4' as const, results: [] }));
      const result: BatchResult = {
        header: {
          processTime: '20250402070000',
          confirmationDate: req.confirmationDate,
          institutionCode: '1319999994',
          receptionNumber: 'R1',
          segmentOfResult: '1',
          characterCode: '1',
          total: units.length,
          normal: units.length,
          errors: 0,
        },
        units,
      };
      const back = decodeBatchResultXml(encodeBatchResultXml(result));
      const p = pairBatchResults(want.entries, back.units);
      return (
        isDeepStrictEqual(back, result) &&
        p.paired.length === want.entries.length &&
        p.paired.every((x) => x.unit.query?.arbitraryId === x.entry.arbitraryId)
      );
    }),
    { numRuns: 150 },
  );
  t.pass('150 random batches');
});
