/**
 * The official file exchange's names and the answers the gateway writes on its own (spec §3, §7,
 * §8): which request a file name is, the result name for it, the face-reader result name, the
 * error answer for a request that could not be processed, and the Shift_JIS fallback for text a
 * Shift_JIS result file cannot hold. Pure: no I/O.
 */
import { nameFallback } from './advice.js';
import type {
  CharacterCode,
  NumbersQuery,
  QualificationResponse,
  QualificationResult,
  ResponseBody,
  XmlTree,
  XmlValue,
} from './types.js';
import { serializeXmlDocument, sjisRepresentable } from './xml.js';

/** The requests the gateway answers; anything else matching the naming scheme gets an error answer. */
export type ExchangeKind = 'single' | 'batchSubmit' | 'batchFetch' | 'unsupported';

export interface ExchangeName {
  kind: ExchangeKind;
  /** the request file name, e.g. OQSsiquc01req_202504010001.xml */
  name: string;
  /** the answer's name in res/: req_ → res_ (spec §7) */
  resultName: string;
  /** OQS | YZK | TKK, si | mu, the job (quc, imm, …), 01 | 02 */
  prefix: string;
  scope: 'si' | 'mu';
  job: string;
  step: '01' | '02';
}

/**
 * `OQS` + si|mu + job + 01|02 + `req_` + suffix + `.xml`. The suffix is restricted to characters
 * safe in any file system and in a log line; a temp name (e.g. `.OQS…xml.tmp`, `OQS…xml.part`)
 * never matches, so a file still being written under one is never picked up.
 */
const REQUEST_RE = /^(OQS|YZK|TKK)(si|mu)([a-z]{3})(01|02)req_([A-Za-z0-9_-]{1,80})\.(xml|XML)$/;

export function parseRequestName(name: string): ExchangeName | undefined {
  const m = REQUEST_RE.exec(name);
  if (m === null) return undefined;
  // A Windows program may write .XML: the answer keeps the request's spelling.
  const [, prefix, scope, job, step, suffix, ext] = m as unknown as [
    string,
    string,
    'si' | 'mu',
    string,
    '01' | '02',
    string,
    string,
  ];
  let kind: ExchangeKind = 'unsupported';
  if (prefix === 'OQS' && job === 'quc') {
    if (scope === 'si' && step === '01') kind = 'single';
    else if (scope === 'mu') kind = step === '01' ? 'batchSubmit' : 'batchFetch';
  }
  return { kind, name, resultName: `${prefix}${scope}${job}${step}res_${suffix}.${ext}`, prefix, scope, job, step };
}

/**
 * A face-reader style result name (spec §3): `OQSsiquc01res_face_<opaque>_<YYYYMMDDHHmmss>.xml`,
 * the opaque part starting with the institution code.
 */
export function faceResultName(institutionCode: string, opaque: string, timestamp: string): string {
  if (!/^\d{10}$/.test(institutionCode) || !/^[A-Za-z0-9]{1,40}$/.test(opaque) || !/^\d{14}$/.test(timestamp)) {
    throw new RangeError(
      'faceResultName: institution code (10 digits), opaque part ([A-Za-z0-9]) and timestamp (14 digits) expected',
    );
  }
  return `OQSsiquc01res_face_${institutionCode}${opaque}_${timestamp}.xml`;
}

export interface ErrorAnswerInput {
  kind: ExchangeKind;
  processTime: string;
  institutionCode: string;
  /** 資格確認日 (single answers always carry one: the request's, else the processing day) */
  confirmationDate?: string;
  fileId?: string;
  receptionNumber?: string;
  errorCode: string;
  errorMessage: string;
  characterCode: CharacterCode;
}

/**
 * The answer to a request the gateway could not process (unreadable, invalid, wrong institution,
 * unsupported, central unreachable): SegmentOfResult 9 (異常終了) with ErrorCode / ErrorMessage and
 * the header fields the answer of that kind carries (§2.2, §5), so that a receipt computer's usual
 * order of checks (§8) stops at (3) and shows the message. The body is empty. Written by hand rather
 * than through the strict codecs because a broken request may leave out what they require.
 */
export function errorAnswerTree(a: ErrorAnswerInput): XmlTree {
  const h: XmlTree = { ProcessExecutionTime: a.processTime };
  const date = a.confirmationDate ?? (a.kind === 'single' ? a.processTime.slice(0, 8) : undefined);
  if (date !== undefined) h.QualificationConfirmationDate = date;
  h.MedicalInstitutionCode = a.institutionCode;
  if (a.fileId !== undefined && /^[\x21-\x7E]{1,50}$/.test(a.fileId)) h.ArbitraryFileIdentifier = a.fileId;
  if (a.kind === 'single' || a.kind === 'unsupported') h.ReferenceClassification = '2';
  if (a.receptionNumber !== undefined && /^[\x21-\x7E]{1,64}$/.test(a.receptionNumber))
    h.ReceptionNumber = a.receptionNumber;
  h.SegmentOfResult = '9';
  h.ErrorCode = a.errorCode;
  h.ErrorMessage = a.errorMessage;
  h.CharacterCodeIdentifier = a.characterCode;
  return { MessageHeader: h, MessageBody: {} };
}

/** errorAnswerTree as a file; a message Shift_JIS cannot hold is written with its fallback. */
export function encodeErrorAnswer(a: ErrorAnswerInput): Buffer {
  const input = a.characterCode === '1' ? { ...a, errorMessage: sjisText(a.errorMessage).text } : a;
  return serializeXmlDocument('XmlMsg', errorAnswerTree(input), a.characterCode === '1' ? 'Shift_JIS' : 'UTF-8');
}

/** Text for a cp932 file: unchanged when it fits, else with nameFallback's substitutions (〓 at worst). */
function sjisText(s: string): { text: string; changed: boolean } {
  for (const ch of s) {
    if (!sjisRepresentable(ch.codePointAt(0) ?? 0)) {
      const f = nameFallback(s, { target: 'cp932' });
      return { text: f.fallback, changed: true };
    }
  }
  return { text: s, changed: false };
}

function sjisTree(v: XmlValue, changed: { any: boolean }): XmlValue {
  if (typeof v === 'string') {
    const r = sjisText(v);
    if (r.changed) changed.any = true;
    return r.text;
  }
  if (Array.isArray(v)) return v.map((x) => sjisTree(x, changed));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sjisTree(x, changed)]));
}

/** A notice code of ours (§8 (6): a ProcessingResultCode on success is shown, never an error). */
export const SJIS_FALLBACK_CODE = 'ONSHI-W-SJIS-FALLBACK';
const SJIS_FALLBACK_MESSAGE =
  'Shift_JIS で表せない文字を置き換えました（〓 など）。正確な表記はゲートウェイの API で確認できます。';

/**
 * A response that can be written in Shift_JIS (cp932): every text a result holds that cp932 cannot
 * (an IVS selector, a character outside the table) is replaced by nameFallback's form, and the
 * body carries a notice saying so — never a silent "?" or ●. The response passed in is not changed.
 */
export function shiftJisSafeResponse(res: QualificationResponse): QualificationResponse {
  return { header: { ...res.header, characterCode: '1' }, body: shiftJisSafeBody(res.body) };
}

/** shiftJisSafeResponse for one body (also a batch answer's BulkConfirmUnit). */
export function shiftJisSafeBody<T extends ResponseBody>(input: T): T {
  const changed = { any: false };
  const results = input.results.map((r) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) {
      if (typeof v === 'string') {
        const t = sjisText(v);
        if (t.changed) changed.any = true;
        out[k] = t.text;
      } else if (k === 'consents' || v === undefined) out[k] = v;
      else out[k] = sjisTree(v as XmlValue, changed);
    }
    return out as unknown as QualificationResult;
  });
  const body: T = { ...input, results };
  if (body.query !== undefined) {
    const q: Record<string, string> = {};
    for (const [k, v] of Object.entries(body.query)) {
      const t = sjisText(v as string);
      if (t.changed) changed.any = true;
      q[k] = t.text;
    }
    body.query = q as unknown as NumbersQuery;
  }
  for (const k of ['resultMessage', 'resultCode'] as const) {
    const v = body[k];
    if (v !== undefined) body[k] = sjisText(v).text;
  }
  if (changed.any) {
    if (body.resultCode === undefined) body.resultCode = SJIS_FALLBACK_CODE;
    body.resultMessage =
      body.resultMessage === undefined ? SJIS_FALLBACK_MESSAGE : `${body.resultMessage} ${SJIS_FALLBACK_MESSAGE}`;
  }
  return body;
}

/** Text for a Shift_JIS (cp932) file: unchanged when it fits, else nameFallback's form (〓 at worst). */
export function shiftJisSafeText(s: string): string {
  return sjisText(s).text;
}
