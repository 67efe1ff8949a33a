import t, { type Test } from 'tap';
import { errorOf } from '../helpers/oqs.js';
import iconv from 'iconv-lite';
import { readFileSync } from 'node:fs';
import {
  decodeRequestJson,
  decodeRequestXml,
  decodeResponseJson,
  decodeResponseXml,
  encodeRequestJson,
  encodeRequestXml,
  encodeResponseJson,
  encodeResponseXml,
  fromJsonForm,
  parseXmlDocument,
  requestFromTree,
  requestToTree,
  responseFromTree,
  responseToTree,
  serializeXmlDocument,
  toJsonForm,
  type OqsErrorCode,
  type QualificationResponse,
  type XmlTree,
} from '../../src/oqs/index.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/oqs/${name}`, import.meta.url));
const u8 = (s: string): Buffer => Buffer.from(s, 'utf8');

function invalidAt(
  t: Test,
  fn: () => unknown,
  path: string,
  reason?: string,
  code: OqsErrorCode = 'OQS_MESSAGE_INVALID',
): void {
  const e = errorOf(t, fn);
  t.strictSame(
    e === undefined
      ? undefined
      : { code: e.code, path: e.details.path, ...(reason ? { reason: e.details.reason } : {}) },
    { code, path, ...(reason ? { reason } : {}) },
    `${code} at ${path}`,
  );
}

/** Reverses the child order of every element: decoding must not depend on position. */
function shuffled(v: XmlTree): XmlTree {
  const out: XmlTree = {};
  for (const [k, c] of Object.entries(v).reverse()) {
    out[k] =
      typeof c === 'string'
        ? c
        : Array.isArray(c)
          ? c.map((x) => (typeof x === 'object' && !Array.isArray(x) ? shuffled(x) : x))
          : shuffled(c);
  }
  return out;
}

const treeOf = (buf: Buffer): XmlTree => parseXmlDocument(buf).tree;
/** A response tree with `edit` applied to its first result. */
function editResult(base: XmlTree, edit: (r: XmlTree) => void): XmlTree {
  const copy = structuredClone(base);
  const body = copy.MessageBody as XmlTree;
  edit((body.ResultList as XmlTree).ResultOfQualificationConfirmation as XmlTree);
  return copy;
}

t.test('§10.1 request: real Shift_JIS bytes', async (t) => {
  const bytes = fixture('req-10.1.sjis.xml');
  t.ok(bytes.equals(iconv.encode(fixture('req-10.1.xml').toString('utf8'), 'cp932')), 'fixture holds Shift_JIS bytes');
  t.notOk(bytes.includes(u8('テスト')), 'not UTF-8');
  const { request, encoding } = decodeRequestXml(bytes);
  t.equal(encoding, 'Shift_JIS');
  t.strictSame(request, {
    confirmationDate: '20250401',
    institutionCode: '1319999994',
    fileId: '20250401093000123-a1b2c3d4',
    query: {
      insurerNumber: '06139992',
      symbol: 'テスト',
      number: '12345',
      branch: '00',
      birthdate: '19800401',
      limitConsent: '1',
      arbitraryId: 'P000123_1',
    },
  });
  const again = encodeRequestXml(request, 'Shift_JIS');
  t.strictSame(decodeRequestXml(again).request, request);
  t.ok(again.includes(iconv.encode('<InsuredCardSymbol>テスト</InsuredCardSymbol>', 'cp932')));
  t.strictSame(decodeRequestXml(encodeRequestXml(request, 'UTF-8')), { request, encoding: 'UTF-8' });
  t.strictSame(decodeRequestJson(JSON.parse(JSON.stringify(encodeRequestJson(request)))), request);
  t.strictSame(requestFromTree(shuffled(treeOf(bytes))), request, 'order does not matter');
  t.strictSame(
    Object.keys((requestToTree(request).MessageBody as XmlTree).QualificationConfirmSearchInfo as XmlTree),
    [
      'InsurerNumber',
      'InsuredCardSymbol',
      'InsuredIdentificationNumber',
      'InsuredBranchNumber',
      'Birthdate',
      'LimitApplicationCertificateRelatedConsFlg',
      'ArbitraryIdentifier',
    ],
    'encoded in the spec order',
  );
});

t.test('request encoding', async (t) => {
  const { request } = decodeRequestXml(fixture('req-10.1.sjis.xml'));
  const kokuho = { ...request, query: { ...request.query, insurerNumber: '139998' } };
  t.match(
    encodeRequestXml(kokuho, 'UTF-8').toString(),
    '<InsurerNumber>  139998</InsurerNumber>',
    '国保 number space-padded',
  );
  t.equal(
    decodeRequestXml(encodeRequestXml(kokuho, 'UTF-8')).request.query.insurerNumber,
    '  139998',
    'kept verbatim on decode',
  );
  const late = {
    ...request,
    query: { insurerNumber: '39139993', number: '99990001', birthdate: '19450505', limitConsent: '0' as const },
  };
  const tree = requestToTree(late);
  t.notOk(
    Object.hasOwn((tree.MessageBody as XmlTree).QualificationConfirmSearchInfo as XmlTree, 'InsuredBranchNumber'),
    'no 枝番 element',
  );
  t.strictSame(requestFromTree(tree), late);
  const e = errorOf(t, () =>
    encodeRequestXml({ ...request, query: { ...request.query, symbol: '葛\u{E0100}' } }, 'Shift_JIS'),
  );
  t.equal(e?.code, 'OQS_ENCODING_UNREPRESENTABLE');
  t.equal(e?.details.path, 'MessageBody/QualificationConfirmSearchInfo/InsuredCardSymbol');
  invalidAt(
    t,
    () => requestToTree({ ...request, confirmationDate: '2025-04-01' }),
    'MessageHeader/QualificationConfirmationDate',
    'date-format',
  );
  invalidAt(
    t,
    () => requestToTree({ ...request, fileId: 'x'.repeat(51) }),
    'MessageHeader/ArbitraryFileIdentifier',
    'format',
  );
});

t.test('request validation names the path', async (t) => {
  const tree = treeOf(fixture('req-10.1.sjis.xml'));
  const without = (path: string[]): XmlTree => {
    const copy = structuredClone(tree);
    let node = copy;
    for (const p of path.slice(0, -1)) node = node[p] as XmlTree;
    delete node[path[path.length - 1] as string];
    return copy;
  };
  const Q = ['MessageBody', 'QualificationConfirmSearchInfo'];
  invalidAt(
    t,
    () => requestFromTree(without([...Q, 'InsurerNumber'])),
    'MessageBody/QualificationConfirmSearchInfo/InsurerNumber',
    'missing',
  );
  invalidAt(
    t,
    () => requestFromTree(without([...Q, 'Birthdate'])),
    'MessageBody/QualificationConfirmSearchInfo/Birthdate',
    'missing',
  );
  invalidAt(
    t,
    () => requestFromTree(without([...Q, 'LimitApplicationCertificateRelatedConsFlg'])),
    'MessageBody/QualificationConfirmSearchInfo/LimitApplicationCertificateRelatedConsFlg',
    'missing',
  );
  invalidAt(
    t,
    () => requestFromTree(without(['MessageHeader', 'MedicalInstitutionCode'])),
    'MessageHeader/MedicalInstitutionCode',
    'missing',
  );
  invalidAt(t, () => requestFromTree(without(['MessageBody'])), 'MessageBody', 'missing');
  t.ok(requestFromTree(without([...Q, 'InsuredCardSymbol'])), 'symbol is optional');
  t.ok(requestFromTree(without([...Q, 'InsuredBranchNumber'])), 'branch is optional');
  const set = (path: string[], v: string): XmlTree => {
    const copy = structuredClone(tree);
    let node = copy;
    for (const p of path.slice(0, -1)) node = node[p] as XmlTree;
    node[path[path.length - 1] as string] = v;
    return copy;
  };
  invalidAt(
    t,
    () => requestFromTree(set([...Q, 'LimitApplicationCertificateRelatedConsFlg'], '2')),
    'MessageBody/QualificationConfirmSearchInfo/LimitApplicationCertificateRelatedConsFlg',
    'unknown-code',
  );
  invalidAt(
    t,
    () => requestFromTree(set([...Q, 'Birthdate'], '1980041')),
    'MessageBody/QualificationConfirmSearchInfo/Birthdate',
    'date-format',
  );
  invalidAt(
    t,
    () => requestFromTree(set([...Q, 'InsuredBranchNumber'], '1')),
    'MessageBody/QualificationConfirmSearchInfo/InsuredBranchNumber',
    'format',
  );
  invalidAt(
    t,
    () => requestFromTree(set([...Q, 'InsurerNumber'], '0613999')),
    'MessageBody/QualificationConfirmSearchInfo/InsurerNumber',
    'format',
  );
  invalidAt(
    t,
    () => requestFromTree(set(['MessageHeader', 'MedicalInstitutionCode'], '131999999')),
    'MessageHeader/MedicalInstitutionCode',
    'format',
  );
  invalidAt(
    t,
    () => requestFromTree(set([...Q, 'Surprise'], 'x')),
    'MessageBody/QualificationConfirmSearchInfo/Surprise',
    'unknown-element',
  );
  const twice = structuredClone(tree);
  (twice.MessageBody as XmlTree).QualificationConfirmSearchInfo = [
    (tree.MessageBody as XmlTree).QualificationConfirmSearchInfo as XmlTree,
    (tree.MessageBody as XmlTree).QualificationConfirmSearchInfo as XmlTree,
  ];
  invalidAt(t, () => requestFromTree(twice), 'MessageBody/QualificationConfirmSearchInfo', 'repeated');
  invalidAt(t, () => decodeRequestXml(u8('<Other><MessageHeader/></Other>')), '', 'root');
  const e = errorOf(t, () => requestFromTree(set([...Q, 'Birthdate'], '19800431x')));
  t.notMatch(JSON.stringify(e?.toJSON()), /19800431/, 'the value is not echoed');
});

t.test('§10.2 response (echo filled in)', async (t) => {
  const res = decodeResponseXml(fixture('res-10.2.xml'));
  t.strictSame(res.header, {
    processTime: '20250401093004',
    confirmationDate: '20250401',
    institutionCode: '1319999994',
    fileId: '20250401093000123-a1b2c3d4',
    referenceClassification: '2',
    segmentOfResult: '1',
    characterCode: '0',
  });
  t.equal(res.body.status, '1');
  t.equal(res.body.validity, '1');
  t.equal(res.body.query?.insurerNumber, '06139992');
  t.equal(res.body.query?.arbitraryId, 'P000123_1');
  t.equal(res.body.results.length, 1);
  const r = res.body.results[0];
  t.equal(r?.name, 'テスト　太郎');
  t.equal(r?.nameKana, 'ﾃｽﾄ ﾀﾛｳ');
  t.equal(r?.cardClassification, '01');
  t.strictSame(r?.limitConsent, { flag: '1', time: '20250401093004' });
  t.strictSame(r?.limitInfo, { classification: '01', classificationFlag: 'A03', validStartDate: '20240901' });
  t.strictSame(r?.consents, {});
  t.equal(r?.extra, undefined);
  const xml = encodeResponseXml(res);
  t.strictSame(decodeResponseXml(xml), res, 'XML round trip');
  t.strictSame(decodeResponseJson(JSON.parse(JSON.stringify(encodeResponseJson(res)))), res, 'JSON round trip');
  t.strictSame(responseFromTree(shuffled(treeOf(fixture('res-10.2.xml')))), res, 'order does not matter');
  const h = responseToTree(res).MessageHeader as XmlTree;
  t.strictSame(
    Object.keys(h),
    [
      'ProcessExecutionTime',
      'QualificationConfirmationDate',
      'MedicalInstitutionCode',
      'ArbitraryFileIdentifier',
      'ReferenceClassification',
      'SegmentOfResult',
      'CharacterCodeIdentifier',
    ],
    'header in the spec order',
  );
  const b = responseToTree(res).MessageBody as XmlTree;
  t.strictSame(
    Object.keys(b),
    ['QualificationConfirmSearchInfo', 'ProcessingResultStatus', 'QualificationValidity', 'ResultList'],
    'body in the spec order',
  );
  const names = Object.keys((b.ResultList as XmlTree).ResultOfQualificationConfirmation as XmlTree);
  t.ok(
    names.indexOf('InsuredCardClassification') === 0 &&
      names.indexOf('InsurerName') < names.indexOf('LimitApplicationCertificateRelatedInfo'),
    'result in the spec order',
  );
});

t.test('§10.3 face result (後期高齢者, 薬剤情報 consent)', async (t) => {
  const res = decodeResponseXml(fixture('res-10.3-face.xml'));
  t.equal(res.header.referenceClassification, '1');
  t.equal(res.body.query, undefined);
  const r = res.body.results[0];
  t.equal(r?.insurerNumber, '39139993');
  t.equal(r?.branch, undefined);
  t.equal(r?.partialContributionRatio, '010');
  t.equal(r?.referenceNumber, 'P000456');
  t.strictSame(r?.consents, {
    PharmacistsInfo: { flag: '1', time: '20250401100512', availableTime: '20250402100512' },
    SpecificHealthCheckupsInfo: { flag: '0' },
  });
  t.strictSame(decodeResponseXml(encodeResponseXml(res)), res);
  t.strictSame(decodeResponseJson(encodeResponseJson(res)), res);
});

t.test('consents: flat, nested, reserved, generic', async (t) => {
  const base = treeOf(fixture('res-10.3-face.xml'));
  const nested = editResult(base, (r) => {
    delete r.PharmacistsInfoConsFlg;
    delete r.PharmacistsInfoConsTime;
    delete r.PharmacistsInfoAvailableTime;
    r.PharmacistsInfo = {
      PharmacistsInfoConsFlg: '1',
      PharmacistsInfoConsTime: '20250401100512',
      PharmacistsInfoAvailableTime: '20250402100512',
    };
    r.AllergyInfoConsFlg = '3';
    r.SpecificDiseasesCertificateRelatedConsFlg = '1';
    r.SpecificDiseasesCertificateRelatedConsTime = '20250401100512';
  });
  const r = responseFromTree(nested).body.results[0];
  t.strictSame(
    r?.consents.PharmacistsInfo,
    { flag: '1', time: '20250401100512', availableTime: '20250402100512' },
    'nested block',
  );
  t.strictSame(r?.consents.AllergyInfo, { flag: '3' }, 'any *ConsFlg is a consent');
  t.strictSame(r?.specificDiseasesConsent, { flag: '1', time: '20250401100512' });
  t.notOk(r && 'SpecificDiseasesCertificateRelated' in r.consents);
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (x) => {
          x.PharmacistsInfoConsFlg = '7';
        }),
      ),
    'MessageBody/ResultList/ResultOfQualificationConfirmation/PharmacistsInfoConsFlg',
    'unknown-code',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (x) => {
          delete x.PharmacistsInfoConsFlg;
        }),
      ),
    'MessageBody/ResultList/ResultOfQualificationConfirmation/PharmacistsInfoConsFlg',
    'missing',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (x) => {
          x.PharmacistsInfoConsTime = '202504011005';
        }),
      ),
    'MessageBody/ResultList/ResultOfQualificationConfirmation/PharmacistsInfoConsTime',
    'timestamp-format',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (x) => {
          x.LimitApplicationCertificateRelatedConsFlg = '2';
        }),
      ),
    'MessageBody/ResultList/ResultOfQualificationConfirmation/LimitApplicationCertificateRelatedConsFlg',
    'unknown-code',
    'OQS_MESSAGE_INVALID',
  );
});

t.test('results: in ResultList or directly in the body, one or many; extras kept verbatim', async (t) => {
  const base = treeOf(fixture('res-10.3-face.xml'));
  const one = ((base.MessageBody as XmlTree).ResultList as XmlTree).ResultOfQualificationConfirmation as XmlTree;
  const direct = structuredClone(base);
  delete (direct.MessageBody as XmlTree).ResultList;
  (direct.MessageBody as XmlTree).ResultOfQualificationConfirmation = one;
  t.strictSame(responseFromTree(direct), responseFromTree(base), 'found directly in the body');

  const medical: XmlTree = {
    PublicExpenseResultList: {
      MedicalTicketInfo: [
        { TicketType: '01', IssueNumber: '0001', Remarks1: '  備考 ' },
        { TicketType: '02', IssueNumber: '0002', InjuryName1: '' },
      ],
    },
  };
  const second = {
    ...structuredClone(one),
    Name: '髙﨑　①子',
    InsuredCardClassification: 'A1',
    ...structuredClone(medical),
    FutureElement: 'x',
    PrescriptionIssueSelect: '1',
  };
  const many = structuredClone(base);
  (many.MessageBody as XmlTree).QualificationValidity = '5';
  (many.MessageBody as XmlTree).ResultList = { ResultOfQualificationConfirmation: [one, second] };
  const res = responseFromTree(many);
  t.equal(res.body.validity, '5');
  t.equal(res.body.results.length, 2);
  t.equal(res.body.results[1]?.name, '髙﨑　①子');
  t.strictSame(
    res.body.results[1]?.extra,
    { ...medical, FutureElement: 'x', PrescriptionIssueSelect: '1' },
    'unmodelled elements verbatim',
  );
  t.equal(res.body.prescriptionIssueSelect, '1', 'nested PrescriptionIssueSelect is lifted to the body');
  for (const enc of ['0', '1'] as const) {
    const r2: QualificationResponse = { ...res, header: { ...res.header, characterCode: enc } };
    const xml = encodeResponseXml(r2);
    t.strictSame(decodeResponseXml(xml), r2, `lossless through XML (${enc === '0' ? 'UTF-8' : 'Shift_JIS'})`);
  }
  t.strictSame(decodeResponseJson(JSON.parse(JSON.stringify(encodeResponseJson(res)))), res, 'lossless through JSON');
  const tree = responseToTree(res);
  const secondOut = Object.keys(
    (
      ((tree.MessageBody as XmlTree).ResultList as XmlTree).ResultOfQualificationConfirmation as XmlTree[]
    )[1] as XmlTree,
  );
  t.ok(
    secondOut.indexOf('PublicExpenseResultList') < secondOut.indexOf('SpecificHealthCheckupsInfoConsFlg'),
    '医療扶助 before the consent blocks, as documented',
  );
  t.ok(secondOut.indexOf('ReferenceNumber') < secondOut.indexOf('FutureElement'), 'unknown extras last');

  const empty = structuredClone(base);
  (empty.MessageBody as XmlTree).ResultList = '';
  (empty.MessageBody as XmlTree).QualificationValidity = '4';
  t.strictSame(responseFromTree(empty).body.results, [], 'empty ResultList');
  invalidAt(
    t,
    () =>
      responseFromTree({
        ...structuredClone(base),
        MessageBody: { ...(base.MessageBody as XmlTree), ResultList: { Other: 'x' } },
      }),
    'MessageBody/ResultList/Other',
    'unknown-element',
  );
});

t.test('nested blocks', async (t) => {
  const base = treeOf(fixture('res-10.2.xml'));
  const tree = editResult(base, (r) => {
    r.ElderlyRecipientCertificateInfo = {
      ElderlyRecipientCertificateDate: '20240801',
      ElderlyRecipientValidStartDate: '20240801',
      ElderlyRecipientValidEndDate: '20250731',
      ElderlyRecipientContributionRatio: '020',
      NewField: 'n',
    };
    r.SpecificDiseasesCertificateList = {
      SpecificDiseasesCertificateInfo: [
        { SpecificDiseasesDiseaseCategory: '1', SpecificDiseasesSelfPay: '10000' },
        { SpecificDiseasesDiseaseCategory: '2', SpecificDiseasesValidStartDate: '20240101' },
      ],
    };
  });
  const r = responseFromTree(tree).body.results[0];
  t.strictSame(r?.elderly, {
    issueDate: '20240801',
    validStartDate: '20240801',
    validEndDate: '20250731',
    contributionRatio: '020',
    extra: { NewField: 'n' },
  });
  t.strictSame(r?.specificDiseases, [
    { category: '1', selfPay: '10000' },
    { category: '2', validStartDate: '20240101' },
  ]);
  const res = responseFromTree(tree);
  t.strictSame(decodeResponseXml(encodeResponseXml(res)), res);
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (x) => {
          (x.LimitApplicationCertificateRelatedInfo as XmlTree).LimitApplicationCertificateClassificationFlag = 'C01';
        }),
      ),
    'MessageBody/ResultList/ResultOfQualificationConfirmation/LimitApplicationCertificateRelatedInfo/LimitApplicationCertificateClassificationFlag',
    'unknown-code',
  );
});

t.test('response validation', async (t) => {
  const base = treeOf(fixture('res-10.2.xml'));
  const R = 'MessageBody/ResultList/ResultOfQualificationConfirmation';
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (r) => {
          delete r.Name;
        }),
      ),
    `${R}/Name`,
    'missing',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (r) => {
          r.Name = '';
        }),
      ),
    `${R}/Name`,
    'missing',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (r) => {
          delete r.InsurerName;
        }),
      ),
    `${R}/InsurerName`,
    'missing',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (r) => {
          r.Sex1 = '4';
        }),
      ),
    `${R}/Sex1`,
    'unknown-code',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (r) => {
          r.InsuredCardClassification = '99';
        }),
      ),
    `${R}/InsuredCardClassification`,
    'unknown-code',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (r) => {
          r.Birthdate = '1980/4/1';
        }),
      ),
    `${R}/Birthdate`,
    'date-format',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (r) => {
          r.Name = ['a', 'b'];
        }),
      ),
    `${R}/Name`,
    'repeated',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        editResult(base, (r) => {
          r.Name = { X: 'a' };
        }),
      ),
    `${R}/Name`,
    'expected-text',
  );
  const withHeader = (k: string, v: string | undefined): XmlTree => {
    const c = structuredClone(base);
    const h = c.MessageHeader as XmlTree;
    if (v === undefined) delete h[k];
    else h[k] = v;
    return c;
  };
  invalidAt(
    t,
    () => responseFromTree(withHeader('SegmentOfResult', '3')),
    'MessageHeader/SegmentOfResult',
    'unknown-code',
  );
  invalidAt(
    t,
    () => responseFromTree(withHeader('ProcessExecutionTime', '20250401')),
    'MessageHeader/ProcessExecutionTime',
    'timestamp-format',
  );
  invalidAt(
    t,
    () => responseFromTree(withHeader('CharacterCodeIdentifier', undefined)),
    'MessageHeader/CharacterCodeIdentifier',
    'missing',
  );
  invalidAt(
    t,
    () => responseFromTree(withHeader('ReferenceClassification', '3')),
    'MessageHeader/ReferenceClassification',
    'unknown-code',
  );
  const body = (edit: (b: XmlTree) => void): XmlTree => {
    const c = structuredClone(base);
    edit(c.MessageBody as XmlTree);
    return c;
  };
  invalidAt(
    t,
    () =>
      responseFromTree(
        body((b) => {
          delete b.ProcessingResultStatus;
        }),
      ),
    'MessageBody/ProcessingResultStatus',
    'missing',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        body((b) => {
          delete b.QualificationValidity;
        }),
      ),
    'MessageBody/QualificationValidity',
    'missing',
  );
  invalidAt(
    t,
    () =>
      responseFromTree(
        body((b) => {
          b.QualificationValidity = '7';
        }),
      ),
    'MessageBody/QualificationValidity',
    'unknown-code',
  );
  // opaque codes pass through
  const err = responseFromTree(
    body((b) => {
      b.ProcessingResultStatus = '2';
      b.ProcessingResultCode = 'EQ99-999';
      b.ProcessingResultMessage = '該当者なし';
      delete b.QualificationValidity;
    }),
  );
  t.equal(err.body.resultCode, 'EQ99-999');
  t.equal(err.body.validity, undefined);
});

t.test('file-level error without a body part', async (t) => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?><XmlMsg><MessageHeader>
<ProcessExecutionTime>20250401093004</ProcessExecutionTime><QualificationConfirmationDate>20250401</QualificationConfirmationDate>
<MedicalInstitutionCode>1319999994</MedicalInstitutionCode><ReferenceClassification>2</ReferenceClassification>
<SegmentOfResult>9</SegmentOfResult><ErrorCode>XX0001</ErrorCode><ErrorMessage>要求ファイル不正</ErrorMessage>
<CharacterCodeIdentifier>0</CharacterCodeIdentifier><FutureHeader>f</FutureHeader></MessageHeader><MessageBody/></XmlMsg>`;
  const res = decodeResponseXml(u8(xml));
  t.equal(res.header.segmentOfResult, '9');
  t.equal(res.header.errorCode, 'XX0001');
  t.strictSame(res.header.extra, { FutureHeader: 'f' });
  t.strictSame(res.body, { status: '2', statusMissing: true, results: [] });
  const back = encodeResponseXml(res);
  t.notMatch(back.toString(), /ProcessingResultStatus/, 'no invented status on the wire');
  t.strictSame(decodeResponseXml(back), res);
});

t.test('encoding declaration vs CharacterCodeIdentifier', async (t) => {
  const text = fixture('res-10.2.xml').toString('utf8');
  const sjisText = text.replace('encoding="UTF-8"', 'encoding="Shift_JIS"');
  const e = errorOf(t, () => decodeResponseXml(iconv.encode(sjisText, 'cp932')));
  t.equal(e?.code, 'OQS_ENCODING_MISMATCH', 'Shift_JIS declared, CharacterCodeIdentifier 0');
  t.equal(e?.details.path, 'MessageHeader/CharacterCodeIdentifier');
  const ok = decodeResponseXml(
    iconv.encode(sjisText.replace('<CharacterCodeIdentifier>0<', '<CharacterCodeIdentifier>1<'), 'cp932'),
  );
  t.equal(ok.header.characterCode, '1');
  t.equal(ok.body.results[0]?.name, 'テスト　太郎');
  t.equal(
    errorOf(t, () => decodeResponseXml(u8(text.replace('<CharacterCodeIdentifier>0<', '<CharacterCodeIdentifier>1<'))))
      ?.code,
    'OQS_ENCODING_MISMATCH',
    'UTF-8 with identifier 1',
  );
  const out = encodeResponseXml(ok);
  t.ok(out.toString('latin1').includes('encoding="Shift_JIS"'), 'characterCode 1 → Shift_JIS output');
  const unrep = {
    ...ok,
    body: {
      ...ok.body,
      results: [
        { ...(ok.body.results[0] as QualificationResponse['body']['results'][number]), name: '葛\u{E0100}城　太郎' },
      ],
    },
  };
  t.equal(
    errorOf(t, () => encodeResponseXml(unrep))?.code,
    'OQS_ENCODING_UNREPRESENTABLE',
    'IVS cannot go into a Shift_JIS response',
  );
  const utf = { ...unrep, header: { ...unrep.header, characterCode: '0' as const } };
  t.equal(
    decodeResponseXml(encodeResponseXml(utf)).body.results[0]?.name,
    '葛\u{E0100}城　太郎',
    'but UTF-8 keeps the IVS',
  );
});

t.test('JSON form', async (t) => {
  const res = decodeResponseXml(fixture('res-10.2.xml'));
  const json = encodeResponseJson(res) as { XmlMsg: { MessageBody: { ResultList: unknown } } };
  t.ok(Array.isArray(json.XmlMsg.MessageBody.ResultList), 'ResultList is an array');
  t.strictSame(Object.keys((json.XmlMsg.MessageBody.ResultList as object[])[0] ?? {}), [
    'ResultOfQualificationConfirmation',
  ]);
  const tree = responseToTree(res);
  t.strictSame(fromJsonForm(toJsonForm(tree)), tree, 'JSON form ↔ tree');
  t.strictSame(fromJsonForm({ XmlMsg: tree }), tree, 'XML-tree shape of ResultList accepted too');
  const req = decodeRequestXml(fixture('req-10.1.sjis.xml')).request;
  t.strictSame(encodeRequestJson(req), { XmlMsg: requestToTree(req) });
  t.equal(
    (
      encodeRequestJson(req) as {
        XmlMsg: { MessageBody: { QualificationConfirmSearchInfo: { InsurerNumber: string } } };
      }
    ).XmlMsg.MessageBody.QualificationConfirmSearchInfo.InsurerNumber,
    '06139992',
  );
  const bad = (v: unknown, path: string, reason: string): void => invalidAt(t, () => fromJsonForm(v), path, reason);
  bad({ XmlMsg: { MessageHeader: { SegmentOfResult: 1 } } }, 'MessageHeader/SegmentOfResult', 'not-a-string');
  bad({ XmlMsg: { MessageHeader: { SegmentOfResult: null } } }, 'MessageHeader/SegmentOfResult', 'not-a-string');
  bad(
    { XmlMsg: { MessageBody: { ResultList: [{ Other: {} }] } } },
    'MessageBody/ResultList[1]',
    'expected-result-wrapper',
  );
  bad(JSON.parse('{"XmlMsg":{"__proto__":{"x":"1"}}}'), '__proto__', 'invalid-name');
  bad({ XmlMsg: { 'a b': 'x' } }, 'a b', 'invalid-name');
  bad({ MessageHeader: {} }, '', 'root');
  bad('x', '', 'root');
  let deep: unknown = 'x';
  for (let i = 0; i < 100; i++) deep = { A: deep };
  bad({ XmlMsg: deep }, Array(65).fill('A').join('/'), 'too-deep');
  t.equal(({} as Record<string, unknown>).x, undefined, 'no prototype pollution');
  invalidAt(
    t,
    () =>
      decodeResponseJson({
        XmlMsg: { ...tree, MessageHeader: { ...(tree.MessageHeader as XmlTree), SegmentOfResult: '4' } },
      }),
    'MessageHeader/SegmentOfResult',
    'unknown-code',
  );
});

t.test('XML built by hand with serializeXmlDocument decodes the same as the codec output', async (t) => {
  const res = decodeResponseXml(fixture('res-10.3-face.xml'));
  const manual = serializeXmlDocument('XmlMsg', shuffled(responseToTree(res)), 'UTF-8');
  t.strictSame(decodeResponseXml(manual), res);
});
