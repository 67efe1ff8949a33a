/**
 * The file-exchange bridge with fakes for the inquiry flow and central, on real folders: names,
 * answers for each kind, error answers, settling, encodings, the face result, and exactly-once
 * across a restart at each point a crash can come.
 */
import t, { type Test } from 'tap';
import iconv from 'iconv-lite';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { FileExchange, CACHE_NOTICE_CODE, type FileExchangeDeps } from '../../src/file-exchange/index.js';
import { validateConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import type { InquiryResult } from '../../src/checks/result.js';
import {
  decodeBatchReceiptXml,
  decodeBatchResultXml,
  decodeResponseXml,
  encodeBatchFetchXml,
  encodeBatchSubmitXml,
  encodeRequestXml,
  parseRequestName,
  faceResultName,
  SJIS_FALLBACK_CODE,
  encodeErrorAnswer,
  errorAnswerTree,
  type BatchReceipt,
  type BatchResult,
  type BatchSubmitRequest,
} from '../../src/oqs/index.js';
import type { QualificationRequest, QualificationResult } from '../../src/oqs/types.js';
import { OnshiError } from '../../src/core/errors.js';
import { subdir } from '../helpers/testdir.js';

const INST = '1319999994';
const person = (o: Partial<QualificationResult> = {}): QualificationResult => ({
  cardClassification: '01',
  insurerNumber: '06139992',
  number: '12345',
  name: 'テスト　太郎',
  nameKana: 'ﾃｽﾄ ﾀﾛｳ',
  sex1: '1',
  birthdate: '19800401',
  insurerName: 'テスト健康保険組合',
  consents: {},
  ...o,
});
const central = (o: Partial<InquiryResult> = {}): InquiryResult => ({
  referenceClassification: '2',
  source: 'central',
  answeredAt: new Date().toISOString(),
  verifiedAt: new Date().toISOString(),
  processTime: '20250401093004',
  confirmationDate: '20250401',
  status: '1',
  validity: '1',
  notices: [],
  warnings: [],
  results: [person()],
  ...o,
});
const request = (o: Partial<QualificationRequest> = {}): QualificationRequest => ({
  confirmationDate: '20250401',
  institutionCode: INST,
  fileId: 'F-0001',
  query: {
    insurerNumber: '06139992',
    symbol: 'テスト',
    number: '12345',
    branch: '00',
    birthdate: '19800401',
    limitConsent: '0',
    arbitraryId: 'P1',
  },
  ...o,
});

interface Rig {
  root: string;
  req: string;
  res: string;
  face: string;
  state: string;
  deps: FileExchangeDeps;
  calls: Array<{ idempotencyKey: string; query: unknown }>;
  logs: string[];
  answerWith: (q: unknown) => Promise<InquiryResult>;
  batch: { submits: Array<{ req: BatchSubmitRequest; key?: string }>; fetches: number; results: BatchResult[] };
  start(): Promise<FileExchange>;
  drop(name: string, bytes: Buffer | string): void;
  resFiles(): string[];
}

function rig(t: Test, opts: Partial<FileExchangeDeps['options']> = {}): Rig {
  const root = subdir(t);
  const [req, res, face, state] = ['req', 'res', 'face', 'state'].map((d) => join(root, d)) as [
    string,
    string,
    string,
    string,
  ];
  for (const d of [req, res, face]) mkdirSync(d);
  const logs: string[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      logs.push(...c.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const base = validateConfig({ fileExchange: { enabled: true, reqDir: req, resDir: res } }).fileExchange;
  const r: Rig = {
    root,
    req,
    res,
    face,
    state,
    logs,
    calls: [],
    answerWith: async () => central(),
    batch: { submits: [], fetches: 0, results: [] },
    deps: undefined as unknown as FileExchangeDeps,
    start: () => FileExchange.start(r.deps),
    drop(name, bytes) {
      writeFileSync(join(req, `.${name}.part`), bytes);
      renameSync(join(req, `.${name}.part`), join(req, name));
    },
    resFiles: () => readdirSync(res).sort(),
  };
  r.deps = {
    options: { ...base, pollMs: 60_000, settleMs: 0, batchPollMs: 5, batchWaitMs: 1000, ...opts },
    institutionCode: INST,
    stateDir: state,
    centralTimeoutMs: 1000,
    logger: createLogger({ level: 'debug', stream }),
    inquire: async (input) => {
      r.calls.push({ idempotencyKey: input.idempotencyKey, query: input.query });
      return r.answerWith(input.query);
    },
    central: {
      submitBatch: async (b, call) => {
        r.batch.submits.push({ req: b, ...(call.idempotencyKey ? { key: call.idempotencyKey } : {}) });
        const receipt: BatchReceipt = {
          header: {
            processTime: '20250401180000',
            institutionCode: INST,
            segmentOfResult: '1',
            characterCode: '0',
            ...(b.fileId ? { fileId: b.fileId } : {}),
          },
          receptionNumber: 'R0000000001',
          receptionTime: '20250401180000',
        };
        return receipt;
      },
      fetchBatch: async () => {
        r.batch.fetches++;
        return r.batch.results.length > 1 ? r.batch.results.shift()! : r.batch.results[0]!;
      },
    },
  };
  return r;
}

const pending: BatchResult = {
  header: {
    processTime: '20250402070000',
    institutionCode: INST,
    receptionNumber: 'R0000000001',
    segmentOfResult: '2',
    characterCode: '0',
  },
  units: [],
};
const done: BatchResult = {
  header: {
    processTime: '20250402070000',
    confirmationDate: '20250402',
    institutionCode: INST,
    fileId: 'B-1',
    receptionNumber: 'R0000000001',
    segmentOfResult: '1',
    characterCode: '0',
    total: 2,
    normal: 1,
    errors: 1,
  },
  units: [
    {
      query: { ...request().query, arbitraryId: 'P1_1' },
      status: '1',
      validity: '1',
      results: [person({ name: '葛\u{E0100}飾　十二' })],
    },
    {
      query: { ...request().query, number: '7', arbitraryId: 'P2_2' },
      status: '2',
      resultCode: 'E123',
      resultMessage: '該当なし',
      results: [],
    },
  ],
};

t.test('names: which requests are answered, and the answer name', async (t) => {
  t.match(parseRequestName('OQSsiquc01req_202504010001.xml'), {
    kind: 'single',
    resultName: 'OQSsiquc01res_202504010001.xml',
  });
  t.match(parseRequestName('OQSmuquc01req_202504010002.xml'), {
    kind: 'batchSubmit',
    resultName: 'OQSmuquc01res_202504010002.xml',
  });
  t.match(parseRequestName('OQSmuquc02req_202504020001.xml'), {
    kind: 'batchFetch',
    resultName: 'OQSmuquc02res_202504020001.xml',
  });
  t.match(parseRequestName('OQSsiimm01req_1.xml'), { kind: 'unsupported', resultName: 'OQSsiimm01res_1.xml' });
  t.match(
    parseRequestName('OQSsiquc01req_1.XML'),
    { kind: 'single', resultName: 'OQSsiquc01res_1.XML' },
    'a Windows-style .XML keeps its spelling',
  );
  for (const n of [
    'OQSsiquc01res_1.xml',
    '.OQSsiquc01req_1.xml.part',
    'OQSsiquc01req_1.xml.tmp',
    'OQSsiquc01req_.xml',
    'OQSsiquc01req_a/b.xml',
    'oqssiquc01req_1.xml',
  ]) {
    t.equal(parseRequestName(n), undefined, `${n} is not a request`);
  }
  t.equal(faceResultName(INST, 'ab12', '20250401100512'), `OQSsiquc01res_face_${INST}ab12_20250401100512.xml`);
  t.throws(() => faceResultName('123', 'x', '20250401100512'));
});

t.test('error answers of each kind read back through the strict codecs', async (t) => {
  const base = {
    processTime: '20250401093004',
    institutionCode: INST,
    errorCode: 'X1',
    errorMessage: '失敗 \u{20BB7}',
  };
  const single = decodeResponseXml(encodeErrorAnswer({ ...base, kind: 'single', characterCode: '1', fileId: 'F-1' }));
  t.match(single.header, {
    segmentOfResult: '9',
    referenceClassification: '2',
    confirmationDate: '20250401',
    fileId: 'F-1',
    characterCode: '1',
  });
  t.equal(single.header.errorMessage, '失敗 吉', 'a message Shift_JIS cannot hold is written with its fallback');
  t.match(
    decodeBatchReceiptXml(encodeErrorAnswer({ ...base, kind: 'batchSubmit', characterCode: '0', fileId: 'B-1' }))
      .header,
    { segmentOfResult: '9', errorCode: 'X1', fileId: 'B-1' },
  );
  t.match(
    decodeBatchResultXml(encodeErrorAnswer({ ...base, kind: 'batchFetch', characterCode: '0', receptionNumber: 'R1' }))
      .header,
    { segmentOfResult: '9', receptionNumber: 'R1' },
  );
  t.match(
    errorAnswerTree({ ...base, kind: 'single', characterCode: '0', fileId: 'bad id with spaces' }).MessageHeader,
    { ArbitraryFileIdentifier: undefined },
    'an unsafe file id is not echoed',
  );
});

t.test('a missing folder stops the start, and is never created', async (t) => {
  const r = rig(t, {});
  r.deps.options = { ...r.deps.options, resDir: join(r.root, 'nope') };
  await t.rejects(r.start(), { code: 'FX_FOLDER_MISSING', message: /fileExchange\.resDir/ });
  t.notOk(existsSync(join(r.root, 'nope')));
});

t.test('a single check: answered once, atomically, echoing the request; the request is removed', async (t) => {
  const r = rig(t);
  const fx = await r.start();
  t.teardown(() => fx.close());
  r.drop('OQSsiquc01req_202504010001.xml', encodeRequestXml(request(), 'UTF-8'));
  await fx.scanNow();
  t.same(r.resFiles(), ['OQSsiquc01res_202504010001.xml'], 'one answer, no temp file left');
  t.same(readdirSync(r.req), [], 'the request is taken away');
  const bytes = readFileSync(join(r.res, 'OQSsiquc01res_202504010001.xml'));
  t.equal(
    statSync(join(r.res, 'OQSsiquc01res_202504010001.xml')).mode & 0o777,
    0o640,
    "readable for the receipt computer's group",
  );
  const ans = decodeResponseXml(bytes);
  t.match(ans.header, {
    segmentOfResult: '1',
    referenceClassification: '2',
    fileId: 'F-0001',
    institutionCode: INST,
    characterCode: '0',
    processTime: '20250401093004',
  });
  t.match(ans.body, { status: '1', validity: '1', query: { arbitraryId: 'P1', symbol: 'テスト' } });
  t.equal(ans.body.results[0]!.name, 'テスト　太郎');
  t.equal(r.calls.length, 1);
  t.match(r.calls[0]!.query, { insurerNumber: '06139992', limitConsent: false, arbitraryId: 'P1' });
  await fx.scanNow();
  t.equal(r.calls.length, 1, 'a second scan asks nothing');
  t.ok(r.logs.some((l) => l.includes('fx_answered')));
  t.notOk(
    r.logs.some((l) => l.includes('テスト') || l.includes('19800401')),
    'no personal data in the log',
  );
});

t.test(
  'encodings: a Shift_JIS request gets a Shift_JIS answer; what cp932 cannot hold falls back with a notice',
  async (t) => {
    const r = rig(t);
    r.answerWith = async () => central({ results: [person({ name: '葛\u{E0100}飾　十二', nameKana: 'ｶﾂｼｶ ｼﾞｭｳﾆ' })] });
    const fx = await r.start();
    t.teardown(() => fx.close());
    r.drop('OQSsiquc01req_1.xml', encodeRequestXml(request(), 'Shift_JIS'));
    await fx.scanNow();
    const bytes = readFileSync(join(r.res, 'OQSsiquc01res_1.xml'));
    t.match(bytes.subarray(0, 60).toString('latin1'), /encoding="Shift_JIS"/);
    const ans = decodeResponseXml(bytes);
    t.equal(ans.header.characterCode, '1', 'CharacterCodeIdentifier says Shift_JIS, as the declaration does');
    t.equal(ans.body.results[0]!.name, '葛飾　十二', 'the selector is dropped (cp932 has no IVS)');
    t.equal(ans.body.resultCode, SJIS_FALLBACK_CODE, 'and the answer says a character was replaced');
    t.equal(ans.body.query?.symbol, 'テスト');

    const fixed = rig(t, { encoding: 'Shift_JIS' });
    const fx2 = await fixed.start();
    t.teardown(() => fx2.close());
    fixed.drop('OQSsiquc01req_2.xml', encodeRequestXml(request(), 'UTF-8'));
    await fx2.scanNow();
    t.equal(
      decodeResponseXml(readFileSync(join(fixed.res, 'OQSsiquc01res_2.xml'))).header.characterCode,
      '1',
      "a per-site fixed encoding wins over the request's",
    );
  },
);

t.test('every request that cannot be processed gets an error answer (SegmentOfResult 9), never silence', async (t) => {
  const r = rig(t, { maxBytes: 4096 });
  const fx = await r.start();
  t.teardown(() => fx.close());
  const cases: Array<[string, Buffer | string, string, RegExp?]> = [
    ['OQSsiquc01req_m1.xml', '<?xml version="1.0" encoding="UTF-8"?><XmlMsg><MessageHeader>', 'OQS_XML_MALFORMED'],
    ['OQSsiquc01req_m2.xml', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><XmlMsg/>', 'OQS_XML_FORBIDDEN'],
    [
      'OQSsiquc01req_m3.xml',
      Buffer.concat([
        Buffer.from('<?xml version="1.0" encoding="UTF-8"?><XmlMsg>'),
        iconv.encode('テスト', 'cp932'),
        Buffer.from('</XmlMsg>'),
      ]),
      'OQS_ENCODING_MISMATCH',
    ],
    [
      'OQSsiquc01req_m4.xml',
      encodeRequestXml(request({ institutionCode: '1319999996' }), 'UTF-8'),
      'FX_INSTITUTION_MISMATCH',
    ],
    ['OQSsiquc01req_m5.xml', Buffer.alloc(5000, 0x20), 'OQS_XML_TOO_LARGE'],
    ['OQSsiimm01req_m6.xml', '<XmlMsg/>', 'FX_UNSUPPORTED'],
    [
      'OQSsiquc01req_m7.xml',
      encodeRequestXml(request(), 'UTF-8')
        .toString()
        .replace('<Birthdate>19800401</Birthdate>', '<Birthdate>1980-04-01</Birthdate>'),
      'OQS_MESSAGE_INVALID',
    ],
  ];
  for (const [name, bytes] of cases) r.drop(name, bytes);
  await fx.scanNow();
  for (const [name, , code] of cases) {
    const res = name.replace('req_', 'res_');
    const text = readFileSync(join(r.res, res), 'utf8');
    t.match(text, /<SegmentOfResult>9<\/SegmentOfResult>/, `${name}: 異常終了`);
    t.match(text, new RegExp(`<ErrorCode>${code}</ErrorCode>`), `${name}: ${code}`);
    t.match(text, /<ErrorMessage>[^<]+<\/ErrorMessage>/);
    t.match(text, /<CharacterCodeIdentifier>0<\/CharacterCodeIdentifier>/);
    t.match(text, /<MedicalInstitutionCode>1319999994<\/MedicalInstitutionCode>/);
  }
  t.match(
    readFileSync(join(r.res, 'OQSsiquc01res_m4.xml'), 'utf8'),
    /<ArbitraryFileIdentifier>F-0001</,
    'the file id is echoed when it could be read',
  );
  // The strict codec reads the single-check error answer too.
  t.match(decodeResponseXml(readFileSync(join(r.res, 'OQSsiquc01res_m4.xml'))).header, {
    segmentOfResult: '9',
    errorCode: 'FX_INSTITUTION_MISMATCH',
    confirmationDate: '20250401',
  });
  t.same(readdirSync(r.req), [], 'every request was taken');
  t.equal(r.calls.length, 0, 'none reached central');
});

t.test("central's failure and the outage answers", async (t) => {
  const r = rig(t);
  const fx = await r.start();
  t.teardown(() => fx.close());
  const answers: Array<() => Promise<InquiryResult>> = [
    async () => {
      throw new OnshiError('CENTRAL_REJECTED', 'central could not process the request: 失敗', {
        details: { segmentOfResult: '9', errorCode: 'EOQS1234' },
      });
    },
    async () =>
      central({
        source: 'cache',
        notices: ['中央に接続できないため、…の結果を表示しています'],
        recheck: { queued: true, outboxId: 1 },
      }),
    async () =>
      central({
        source: 'none',
        status: undefined,
        validity: undefined,
        results: [],
        recheck: { queued: true, outboxId: 2 },
        unavailable: {
          code: 'ELIGIBILITY_UNAVAILABLE',
          message: 'Central cannot be reached',
          guidance: ['資格確認書で資格を確認してください。'],
        },
      }),
    async () =>
      central({ status: '2', validity: undefined, resultCode: 'E999', resultMessage: '照会エラー', results: [] }),
  ];
  r.answerWith = () => answers.shift()!();
  for (let i = 1; i <= 4; i++) {
    r.drop(`OQSsiquc01req_c${i}.xml`, encodeRequestXml(request(), 'UTF-8'));
    await fx.scanNow();
  }
  const rejected = decodeResponseXml(readFileSync(join(r.res, 'OQSsiquc01res_c1.xml')));
  t.match(
    rejected.header,
    { segmentOfResult: '9', errorCode: 'EOQS1234' },
    "central's own code passes through verbatim",
  );
  const cached = decodeResponseXml(readFileSync(join(r.res, 'OQSsiquc01res_c2.xml')));
  t.match(
    cached.body,
    { status: '1', validity: '1', resultCode: CACHE_NOTICE_CODE, resultMessage: /中央に接続できない/ },
    'a cached answer says so',
  );
  const none = decodeResponseXml(readFileSync(join(r.res, 'OQSsiquc01res_c3.xml')));
  t.match(
    none.header,
    { segmentOfResult: '9', errorCode: 'ELIGIBILITY_UNAVAILABLE', errorMessage: /資格確認書.*再確認/ },
    'unavailable: the fallback guidance',
  );
  const perPerson = decodeResponseXml(readFileSync(join(r.res, 'OQSsiquc01res_c4.xml')));
  t.match(
    perPerson.body,
    { status: '2', resultCode: 'E999', resultMessage: '照会エラー' },
    'a per-person error stays one',
  );
});

t.test('a file still changing is not read until it settles', async (t) => {
  const r = rig(t, { settleMs: 60_000 });
  const fx = await r.start();
  t.teardown(() => fx.close());
  writeFileSync(join(r.req, 'OQSsiquc01req_s.xml'), '<?xml version="1.0"?><XmlMsg>');
  await fx.scanNow();
  await fx.scanNow();
  t.same(r.resFiles(), [], 'not answered while it may still be being written');
  t.ok(existsSync(join(r.req, 'OQSsiquc01req_s.xml')));
});

t.test('batch: 01req → receipt; 02req waits for central, then the result; 処理中 when it takes too long', async (t) => {
  const r = rig(t);
  const fx = await r.start();
  t.teardown(() => fx.close());
  const submit: BatchSubmitRequest = {
    confirmationDate: '20250402',
    institutionCode: INST,
    fileId: 'B-1',
    entries: [
      { ...request().query, arbitraryId: 'P1_1' },
      { ...request().query, number: '7', arbitraryId: 'P2_2' },
    ],
  };
  r.drop('OQSmuquc01req_b1.xml', encodeBatchSubmitXml(submit, 'Shift_JIS'));
  await fx.scanNow();
  const receipt = decodeBatchReceiptXml(readFileSync(join(r.res, 'OQSmuquc01res_b1.xml')));
  t.match(receipt, {
    receptionNumber: 'R0000000001',
    header: { segmentOfResult: '1', fileId: 'B-1', characterCode: '1' },
  });
  t.equal(r.batch.submits.length, 1);
  t.ok(r.batch.submits[0]!.key, 'submitted under an idempotency key');
  t.equal(r.batch.submits[0]!.req.entries.length, 2);

  r.batch.results = [pending, pending, done];
  r.drop(
    'OQSmuquc02req_b2.xml',
    encodeBatchFetchXml({ institutionCode: INST, receptionNumber: 'R0000000001' }, 'Shift_JIS'),
  );
  await fx.scanNow();
  const result = decodeBatchResultXml(readFileSync(join(r.res, 'OQSmuquc02res_b2.xml')));
  t.equal(r.batch.fetches, 3, 'polled until central was done');
  t.match(result.header, { segmentOfResult: '1', total: 2, normal: 1, errors: 1, characterCode: '1' });
  t.equal(result.units[0]!.results[0]!.name, '葛飾　十二', 'Shift_JIS fallback in a unit');
  t.match(result.units[1], { status: '2', resultCode: 'E123' });

  r.batch.results = [pending];
  r.deps.options = { ...r.deps.options, batchWaitMs: 0 };
  const fx2 = await r.start();
  t.teardown(() => fx2.close());
  r.drop(
    'OQSmuquc02req_b3.xml',
    encodeBatchFetchXml({ institutionCode: INST, receptionNumber: 'R0000000001' }, 'UTF-8'),
  );
  await fx2.scanNow();
  t.match(
    decodeBatchResultXml(readFileSync(join(r.res, 'OQSmuquc02res_b3.xml'))).header,
    { segmentOfResult: '2', receptionNumber: 'R0000000001' },
    '処理中: ask again later',
  );
});

t.test('face result for a card check', async (t) => {
  const r = rig(t, { faceDir: '' });
  r.deps.options = { ...r.deps.options, faceDir: r.face };
  const fx = await r.start();
  t.teardown(() => fx.close());
  const name = await fx.writeFaceResult(
    central({ referenceClassification: '1', results: [person({ referenceNumber: 'P000456' })] }),
  );
  t.match(name, new RegExp(`^OQSsiquc01res_face_${INST}[0-9a-f]{8}_\\d{14}\\.xml$`));
  t.same(readdirSync(r.face), [name]);
  const ans = decodeResponseXml(readFileSync(join(r.face, name!)));
  t.match(ans.header, { referenceClassification: '1', segmentOfResult: '1', characterCode: '0' });
  t.match(ans.header.fileId, /^[A-Za-z0-9+/=]{16}$/);
  t.equal(ans.body.query, undefined, 'no search-info echo in a face result');
  t.equal(ans.body.results[0]!.referenceNumber, 'P000456');
  t.equal(
    await fx.writeFaceResult(central({ source: 'none', results: [] })),
    undefined,
    'no file when nothing is known',
  );
  r.deps.options = { ...r.deps.options, faceFiles: false };
  const fx2 = await r.start();
  t.teardown(() => fx2.close());
  t.equal(await fx2.writeFaceResult(central()), undefined, 'off when faceFiles is false');
});

t.test('restart: exactly once at every point a crash can come', async (t) => {
  const name = 'OQSsiquc01req_r1.xml';
  const resName = 'OQSsiquc01res_r1.xml';
  const journal = (r: Rig): { tmp?: string; state: string; idempotencyKey: string } =>
    JSON.parse(readFileSync(join(r.state, 'file-exchange', 'journal', `${name}.json`), 'utf8')) as {
      tmp?: string;
      state: string;
      idempotencyKey: string;
    };

  /** Answers the request once, lets `crashState` undo the later steps, and puts the request back unchanged (bytes and time). */
  const answerThenRestore = async (
    r: Rig,
    crashState: (rec: { tmp?: string; state: string }) => void,
  ): Promise<void> => {
    const fx1 = await r.start();
    r.drop(name, encodeRequestXml(request(), 'UTF-8'));
    const { mtimeMs } = statSync(join(r.req, name));
    const bytes = readFileSync(join(r.req, name));
    await fx1.scanNow();
    await fx1.close();
    crashState(journal(r));
    writeFileSync(join(r.req, name), bytes);
    utimesSync(join(r.req, name), mtimeMs / 1000, mtimeMs / 1000); // seconds as a number: a Date would cut to whole ms
  };

  await t.test('crash while central was being asked: asked again under the same key, answered once', async (t) => {
    const r = rig(t);
    r.answerWith = () => new Promise(() => {}); // central never answers: the process "dies" here
    const fx1 = await r.start();
    r.drop(name, encodeRequestXml(request(), 'UTF-8'));
    void fx1.scanNow();
    while (r.calls.length === 0) await new Promise((res) => setTimeout(res, 10));
    void fx1.close(); // stops its timers and watcher at once; its hung task is what a dead process leaves
    t.equal(journal(r).state, 'pending', 'the key was recorded before central was asked');
    const firstKey = r.calls[r.calls.length - 1]!.idempotencyKey;
    r.answerWith = async () => central();
    const fx2 = await r.start();
    t.teardown(() => fx2.close());
    await fx2.scanNow();
    t.equal(r.calls[r.calls.length - 1]!.idempotencyKey, firstKey, 'the same idempotency key: central acts once');
    t.same(r.resFiles(), [resName]);
    t.same(readdirSync(r.req), []);
  });

  await t.test('crash after the answer was recorded, before it was renamed into place', async (t) => {
    const r = rig(t);
    // Put the folders back as they were at the crash: answer under its temp name, request still there.
    await answerThenRestore(r, (rec) => {
      t.equal(rec.state, 'answered');
      renameSync(join(r.res, resName), join(r.res, rec.tmp!));
    });
    const fx2 = await r.start();
    t.teardown(() => fx2.close());
    await fx2.scanNow();
    t.same(r.resFiles(), [resName], 'the recorded answer is put in place');
    t.same(readdirSync(r.req), [], 'and the request removed');
    t.equal(r.calls.length, 1, 'central was not asked again');
  });

  await t.test('crash after the answer was in place and taken, before the request was removed', async (t) => {
    const r = rig(t);
    await answerThenRestore(r, () => rmSync(join(r.res, resName))); // the receipt computer took the answer
    const fx2 = await r.start();
    t.teardown(() => fx2.close());
    await fx2.scanNow();
    t.same(r.resFiles(), [], 'never answered a second time');
    t.same(readdirSync(r.req), [], 'the leftover request is removed');
    t.equal(r.calls.length, 1);
  });

  await t.test(
    'a temp answer no record names (crash before the record) is removed and the request answered',
    async (t) => {
      const r = rig(t);
      const fx0 = await r.start();
      await fx0.close();
      writeFileSync(join(r.res, `.${resName}.999.0badcafe.tmp`), 'half');
      r.drop(name, encodeRequestXml(request(), 'UTF-8'));
      const fx = await r.start();
      t.teardown(() => fx.close());
      await fx.scanNow();
      t.same(r.resFiles(), [resName]);
    },
  );

  await t.test('the same name dropped again later (a new file) is a new request', async (t) => {
    const r = rig(t);
    const fx = await r.start();
    t.teardown(() => fx.close());
    r.drop(name, encodeRequestXml(request(), 'UTF-8'));
    await fx.scanNow();
    rmSync(join(r.res, resName));
    r.drop(name, encodeRequestXml(request({ fileId: 'F-0002' }), 'UTF-8'));
    await fx.scanNow();
    t.equal(decodeResponseXml(readFileSync(join(r.res, resName))).header.fileId, 'F-0002');
    t.equal(r.calls.length, 2);
  });
});

t.test('doneDir: answered requests are moved there instead of deleted', async (t) => {
  const r = rig(t);
  const done = join(r.root, 'done');
  mkdirSync(done);
  r.deps.options = { ...r.deps.options, doneDir: done };
  const fx = await r.start();
  t.teardown(() => fx.close());
  r.drop('OQSsiquc01req_d.xml', encodeRequestXml(request(), 'UTF-8'));
  await fx.scanNow();
  t.same(readdirSync(done), ['OQSsiquc01req_d.xml']);
});

t.test('a failure to write the answer is retried with a backoff and logged once; central keeps one key', async (t) => {
  const r = rig(t);
  const fx = await r.start();
  t.teardown(() => fx.close());
  rmSync(r.res, { recursive: true });
  r.drop('OQSsiquc01req_f.xml', encodeRequestXml(request(), 'UTF-8'));
  await fx.scanNow();
  await fx.scanNow();
  t.equal(r.calls.length, 1, 'not tried again at once');
  t.equal(r.logs.filter((l) => l.includes('"fx_failed"') && l.includes('"error"')).length, 1, 'one error line');
  mkdirSync(r.res);
  await new Promise((res) => setTimeout(res, 1100));
  await fx.scanNow();
  t.same(r.resFiles(), ['OQSsiquc01res_f.xml'], 'answered once the folder is back');
  t.equal(r.calls.length, 2);
  t.equal(r.calls[0]!.idempotencyKey, r.calls[1]!.idempotencyKey, 'under the same idempotency key');
});

t.test('journal records are forgotten after journalDays once their request is gone', async (t) => {
  const r = rig(t);
  const fx = await r.start();
  r.drop('OQSsiquc01req_j.xml', encodeRequestXml(request(), 'UTF-8'));
  await fx.scanNow();
  await fx.close();
  const file = join(r.state, 'file-exchange', 'journal', 'OQSsiquc01req_j.xml.json');
  const rec = JSON.parse(readFileSync(file, 'utf8')) as { at: string };
  writeFileSync(file, JSON.stringify({ ...rec, at: new Date(Date.now() - 8 * 86_400_000).toISOString() }));
  const fx2 = await r.start();
  t.teardown(() => fx2.close());
  t.notOk(existsSync(file));
});

t.test(
  'property: whatever bytes a request file holds, it gets exactly one well-formed answer and no crash',
  async (t) => {
    const fc = (await import('fast-check')).default;
    const { fuzzParams } = await import('../helpers/fuzz.js');
    const r = rig(t);
    const fx = await r.start();
    t.teardown(() => fx.close());
    const valid = [
      encodeRequestXml(request(), 'UTF-8'),
      encodeRequestXml(request(), 'Shift_JIS'),
      encodeBatchSubmitXml(
        { confirmationDate: '20250402', institutionCode: INST, entries: [{ ...request().query }] },
        'UTF-8',
      ),
    ];
    const kinds = ['OQSsiquc01req', 'OQSmuquc01req', 'OQSmuquc02req'];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...valid),
        fc.constantFrom(...kinds),
        fc.nat(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        async (base, kind, cut, flips) => {
          const bytes = Buffer.from(base.subarray(0, cut % (base.length + 1)));
          for (const [at, v] of flips) if (bytes.length > 0) bytes[at % bytes.length] = v;
          const name = `${kind}_p${++n}.xml`;
          r.drop(name, bytes);
          await fx.scanNow();
          const res = join(r.res, name.replace('req_', 'res_'));
          if (!existsSync(res)) return false;
          const text = readFileSync(res, 'latin1');
          rmSync(res);
          return (
            !existsSync(join(r.req, name)) &&
            /<SegmentOfResult>[129]<\/SegmentOfResult>/.test(text) &&
            /<CharacterCodeIdentifier>[01]<\/CharacterCodeIdentifier>/.test(text)
          );
        },
      ),
      fuzzParams(0.1),
    );
    t.same(readdirSync(r.res), [], 'no temp file left behind');
  },
);

t.test(
  'a symbolic link in req is never followed: answered with an error, the link (not its target) taken away',
  async (t) => {
    const r = rig(t);
    const fx = await r.start();
    t.teardown(() => fx.close());
    const outside = join(r.root, 'outside.xml');
    writeFileSync(outside, encodeRequestXml(request(), 'UTF-8'));
    symlinkSync(outside, join(r.req, 'OQSsiquc01req_link1.xml'));
    symlinkSync(join(r.state, 'cache.key'), join(r.req, 'OQSsiquc01req_link2.xml'));
    await fx.scanNow();
    t.equal(r.calls.length, 0, 'nothing was asked: the linked request was not read');
    for (const n of ['link1', 'link2']) {
      const ans = decodeResponseXml(readFileSync(join(r.res, `OQSsiquc01res_${n}.xml`)));
      t.match(ans.header, { segmentOfResult: '9', errorCode: 'FX_NOT_A_FILE', errorMessage: /symbolic link/ });
      t.notMatch(JSON.stringify(ans), /テスト|12345|F-0001/, 'nothing of the target is echoed');
    }
    t.same(readdirSync(r.req), [], 'the links are taken away');
    t.ok(existsSync(outside), 'the target stays where it was');
    t.equal(r.logs.filter((l) => l.includes('"fx_not_a_file"')).length, 2, 'one log line each');
  },
);

t.test('a name that is not a request is logged once, not on every scan', async (t) => {
  const r = rig(t);
  const fx = await r.start();
  t.teardown(() => fx.close());
  writeFileSync(join(r.req, 'notes.txt'), 'x');
  writeFileSync(join(r.req, '.OQSsiquc01req_1.xml.part'), 'x');
  for (let i = 0; i < 3; i++) await fx.scanNow();
  const lines = r.logs.filter((l) => l.includes('"fx_name_ignored"'));
  t.equal(lines.length, 1, 'once');
  t.match(lines[0], /notes\.txt/, 'the name is said; hidden temp names are not');
  t.ok(existsSync(join(r.req, 'notes.txt')), 'left alone');
});

t.test(
  'Shift_JIS: a private-use character (an insurer 外字) is answered 〓 with the notice, never user area F040',
  async (t) => {
    const r = rig(t);
    r.answerWith = async () => central({ results: [person({ name: '\uE000田　太郎' })] });
    const fx = await r.start();
    t.teardown(() => fx.close());
    r.drop('OQSsiquc01req_pua.xml', encodeRequestXml(request(), 'Shift_JIS'));
    await fx.scanNow();
    const bytes = readFileSync(join(r.res, 'OQSsiquc01res_pua.xml'));
    t.notOk(
      bytes.includes(Buffer.from([0xf0, 0x40])),
      'no user-area code: the receipt computer has its own 外字 there',
    );
    t.ok(bytes.includes(Buffer.from([0x81, 0xac])), '〓 (GETA) in cp932');
    const ans = decodeResponseXml(bytes);
    t.equal(ans.body.results[0]!.name, '〓田　太郎');
    t.equal(ans.body.resultCode, SJIS_FALLBACK_CODE, 'the notice says the text was replaced');
  },
);

t.test("a cached answer is marked in every file, also when it carried central's own code", async (t) => {
  const r = rig(t, { faceDir: '' });
  r.deps.options = { ...r.deps.options, faceDir: r.face, encoding: 'Shift_JIS' };
  const cached = central({
    source: 'cache',
    resultCode: 'W0123', // central's notice on success (e.g. the card certificate expires soon)
    resultMessage: '証明書の有効期限が近づいています',
    notices: ['中央に接続できないため、2025-04-01 09:30 に確認した結果を表示しています'],
    recheck: { queued: true, outboxId: 7 },
  });
  r.answerWith = async () => cached;
  const fx = await r.start();
  t.teardown(() => fx.close());
  r.drop('OQSsiquc01req_cached.xml', encodeRequestXml(request(), 'Shift_JIS'));
  await fx.scanNow();
  const face = await fx.writeFaceResult({ ...cached, referenceClassification: '1' });
  for (const [what, file] of [
    ['res answer', join(r.res, 'OQSsiquc01res_cached.xml')],
    ['face result', join(r.face, face!)],
  ] as const) {
    const ans = decodeResponseXml(readFileSync(file));
    t.equal(ans.body.resultCode, CACHE_NOTICE_CODE, `${what}: our marker, not central's code`);
    t.match(ans.body.resultMessage, /W0123.*証明書の有効期限.*中央に接続できない/, `${what}: central's code kept`);
  }
});
