import { OqsError, invalidMessage } from './errors.js';
import {
  ENCODING_OF,
  Reader,
  bodyFromReader,
  bodyToTree,
  checkDate,
  checkTimestamp,
  code,
  fromJsonForm,
  institution,
  mergeExtra,
  put,
  putFileIdAndError,
  queryFromReader,
  queryToTree,
  requestEnvelope,
  requiredCode,
  requiredNode,
  rootReader,
  toJsonForm,
  xmlMsgContent,
} from './messages.js';
import type { CharacterCode, NumbersQuery, ResponseBody, SegmentOfResult, WireEncoding, XmlTree } from './types.js';
import { serializeXmlDocument, type XmlLimits } from './xml.js';

/**
 * Batch inquiry (一括照会, spec §5): OQSmuquc01req (many checks by numbers for one date) →
 * 01res (a reception number) → OQSmuquc02req (that number) → 02res (処理中, or one BulkConfirmUnit
 * per entry). Same conventions as messages.ts: read by name, empty = absent, unknown request
 * elements refused, unmodelled response elements kept in `extra`, every failure an OqsError.
 */

const ROOT = 'XmlMsg';
const UNIT = 'BulkConfirmUnit';
const SEARCH_INFO = 'QualificationConfirmSearchInfo';

/** ArbitraryIdentifier is the only link from a result back to its entry (spec §5), so it is required. */
const ARBITRARY_ID_RE = /^[^\p{Cc}]{1,50}$/u;
/** 受付番号 is opaque; we only insist it is safe to log, put in a URL or a file name. */
const RECEPTION_RE = /^[\x21-\x7E]{1,64}$/;

// ---------------------------------------------------------------------------------------------
// Types

/** OQSmuquc01req: one check by numbers per entry, all for the same 資格確認日. */
export interface BatchSubmitRequest {
  /** 資格確認日 YYYYMMDD (e.g. the reservation day) */
  confirmationDate: string;
  institutionCode: string;
  fileId?: string;
  /** each with its own, unique `arbitraryId` (the patient key, e.g. `<patientId>_<seq>`) */
  entries: NumbersQuery[];
}

/** OQSmuquc01res: the receipt. */
export interface BatchReceipt {
  header: BatchReceiptHeader;
  /** 受付番号, present when segmentOfResult is 1 */
  receptionNumber?: string;
  /** 受付日時 YYYYMMDDHHmmss */
  receptionTime?: string;
  extra?: XmlTree;
}

export interface BatchReceiptHeader {
  processTime: string;
  institutionCode: string;
  fileId?: string;
  segmentOfResult: SegmentOfResult;
  errorCode?: string;
  errorMessage?: string;
  characterCode: CharacterCode;
  extra?: XmlTree;
}

/** OQSmuquc02req */
export interface BatchFetchRequest {
  institutionCode: string;
  receptionNumber: string;
}

/** OQSmuquc02res header: §2.2 without ReferenceClassification, plus the reception number and counts. */
export interface BatchResultHeader {
  processTime: string;
  /** required when segmentOfResult is 1 */
  confirmationDate?: string;
  institutionCode: string;
  fileId?: string;
  receptionNumber: string;
  /** 1 done, 2 処理中 (not ready: fetch again later), 9 failed */
  segmentOfResult: SegmentOfResult;
  errorCode?: string;
  errorMessage?: string;
  characterCode: CharacterCode;
  /** 件数 / 正常 / 異常; required when segmentOfResult is 1 */
  total?: number;
  normal?: number;
  errors?: number;
  extra?: XmlTree;
}

/**
 * One BulkConfirmUnit: the same parts as a single answer's body (echo with the ArbitraryIdentifier,
 * status, code/message, validity, results), plus the unit-level extras of a batch.
 */
export interface BatchResultUnit extends ResponseBody {
  referenceNumber?: string;
  /** LimitApplicationCertificateChanged, OQSCD014: 0 変更なし, 1 変更あり/判定不能 */
  limitChanged?: '0' | '1';
}

export interface BatchResult {
  header: BatchResultHeader;
  units: BatchResultUnit[];
  /** body elements other than units, kept verbatim */
  extra?: XmlTree;
}

// ---------------------------------------------------------------------------------------------
// 01req

/** The XmlMsg content tree of an OQSmuquc01req. Validates (including unique ArbitraryIdentifiers). */
export function batchSubmitToTree(req: BatchSubmitRequest): XmlTree {
  const header: XmlTree = {
    QualificationConfirmationDate: req.confirmationDate,
    MedicalInstitutionCode: req.institutionCode,
  };
  if (req.fileId !== undefined && req.fileId !== '') header.ArbitraryFileIdentifier = req.fileId;
  if (req.entries.length === 0)
    throw invalidMessage(`MessageBody/${SEARCH_INFO}`, 'missing', 'a batch needs at least one entry');
  const items = req.entries.map(queryToTree);
  const tree: XmlTree = {
    MessageHeader: header,
    MessageBody: { [SEARCH_INFO]: items.length === 1 ? (items[0] as XmlTree) : items },
  };
  batchSubmitFromTree(tree); // never emit what we would refuse to read
  return tree;
}

/** Reads and validates an OQSmuquc01req content tree. Unknown elements are refused. */
export function batchSubmitFromTree(tree: XmlTree): BatchSubmitRequest {
  const { b, confirmationDate, institutionCode, fileId } = requestEnvelope(tree);
  const blocks = b.nodes(SEARCH_INFO);
  if (blocks.length === 0) throw invalidMessage(b.at(SEARCH_INFO), 'missing', 'a batch needs at least one entry');
  b.rejectRest();
  const seen = new Set<string>();
  const entries = blocks.map((r) => {
    const q = queryFromReader(r);
    checkArbitraryId(r.at('ArbitraryIdentifier'), q.arbitraryId, seen);
    return q;
  });
  const req: BatchSubmitRequest = { confirmationDate, institutionCode, entries };
  put(req, 'fileId', fileId);
  return req;
}

function checkArbitraryId(path: string, id: string | undefined, seen: Set<string>): void {
  if (id === undefined)
    throw invalidMessage(path, 'missing', `${path}: every batch entry needs its own ArbitraryIdentifier`);
  if (!ARBITRARY_ID_RE.test(id))
    throw invalidMessage(path, 'format', `${path}: at most 50 characters, no control characters`);
  if (seen.has(id))
    throw invalidMessage(path, 'duplicate-identifier', `${path}: the same ArbitraryIdentifier twice in one batch`);
  seen.add(id);
}

// ---------------------------------------------------------------------------------------------
// 01res

function receiptHeaderFromReader(h: Reader): BatchReceiptHeader {
  const processTime = h.required('ProcessExecutionTime');
  checkTimestamp(h.at('ProcessExecutionTime'), processTime);
  const header: BatchReceiptHeader = {
    processTime,
    institutionCode: institution(h),
    segmentOfResult: requiredCode<SegmentOfResult>(h, 'SegmentOfResult', '003'),
    characterCode: requiredCode<CharacterCode>(h, 'CharacterCodeIdentifier', '005'),
  };
  putFileIdAndError(header, h);
  put(header, 'extra', h.extra());
  return header;
}

const RECEIPT_HEADER: ReadonlyArray<readonly [keyof BatchReceiptHeader, string]> = [
  ['processTime', 'ProcessExecutionTime'],
  ['institutionCode', 'MedicalInstitutionCode'],
  ['fileId', 'ArbitraryFileIdentifier'],
  ['segmentOfResult', 'SegmentOfResult'],
  ['errorCode', 'ErrorCode'],
  ['errorMessage', 'ErrorMessage'],
  ['characterCode', 'CharacterCodeIdentifier'],
];

function receptionNumber(r: Reader, required: boolean): string | undefined {
  const v = required ? r.required('ReceptionNumber') : r.text('ReceptionNumber');
  if (v !== undefined && !RECEPTION_RE.test(v))
    throw invalidMessage(r.at('ReceptionNumber'), 'format', 'ReceptionNumber: printable ASCII, at most 64');
  return v;
}

/** Reads and validates an OQSmuquc01res content tree. A receipt with SegmentOfResult 1 must carry its ReceptionNumber. */
export function batchReceiptFromTree(tree: XmlTree): BatchReceipt {
  const root = rootReader(tree);
  const header = receiptHeaderFromReader(requiredNode(root, 'MessageHeader'));
  const b = root.node('MessageBody') ?? new Reader({}, 'MessageBody');
  root.rejectRest();
  const receipt: BatchReceipt = { header };
  put(receipt, 'receptionNumber', receptionNumber(b, header.segmentOfResult === '1'));
  const time = b.text('ReceptionDateTime');
  checkTimestamp(b.at('ReceptionDateTime'), time);
  put(receipt, 'receptionTime', time);
  put(receipt, 'extra', b.extra());
  return receipt;
}

export function batchReceiptToTree(receipt: BatchReceipt): XmlTree {
  const h = headerTree(receipt.header, RECEIPT_HEADER);
  const b: XmlTree = {};
  if (receipt.receptionNumber !== undefined && receipt.receptionNumber !== '')
    b.ReceptionNumber = receipt.receptionNumber;
  if (receipt.receptionTime !== undefined && receipt.receptionTime !== '') b.ReceptionDateTime = receipt.receptionTime;
  mergeExtra(b, receipt.extra, 'extra');
  const tree: XmlTree = { MessageHeader: h, MessageBody: b };
  batchReceiptFromTree(tree);
  return tree;
}

function headerTree<T extends { extra?: XmlTree }>(
  header: T,
  fields: ReadonlyArray<readonly [keyof T, string]>,
): XmlTree {
  const h: XmlTree = {};
  for (const [key, el] of fields) {
    const v = header[key];
    if (typeof v === 'number') h[el] = String(v);
    else if (typeof v === 'string' && v !== '') h[el] = v;
  }
  mergeExtra(h, header.extra, 'header.extra');
  return h;
}

// ---------------------------------------------------------------------------------------------
// 02req

export function batchFetchToTree(req: BatchFetchRequest): XmlTree {
  const tree: XmlTree = {
    MessageHeader: { MedicalInstitutionCode: req.institutionCode },
    MessageBody: { ReceptionNumber: req.receptionNumber },
  };
  batchFetchFromTree(tree);
  return tree;
}

export function batchFetchFromTree(tree: XmlTree): BatchFetchRequest {
  const root = rootReader(tree);
  const h = requiredNode(root, 'MessageHeader');
  const b = requiredNode(root, 'MessageBody');
  root.rejectRest();
  const institutionCode = institution(h);
  h.rejectRest();
  const number = receptionNumber(b, true) as string;
  b.rejectRest();
  return { institutionCode, receptionNumber: number };
}

// ---------------------------------------------------------------------------------------------
// 02res

const RESULT_HEADER: ReadonlyArray<readonly [keyof BatchResultHeader, string]> = [
  ['processTime', 'ProcessExecutionTime'],
  ['confirmationDate', 'QualificationConfirmationDate'],
  ['institutionCode', 'MedicalInstitutionCode'],
  ['fileId', 'ArbitraryFileIdentifier'],
  ['receptionNumber', 'ReceptionNumber'],
  ['segmentOfResult', 'SegmentOfResult'],
  ['errorCode', 'ErrorCode'],
  ['errorMessage', 'ErrorMessage'],
  ['total', 'NumberOfProcessingResult'],
  ['normal', 'NumberOfNormalProcessing'],
  ['errors', 'NumberOfError'],
  ['characterCode', 'CharacterCodeIdentifier'],
];

function count(h: Reader, name: string, required: boolean): number | undefined {
  const v = required ? h.required(name) : h.text(name);
  if (v === undefined) return undefined;
  if (!/^\d{1,7}$/.test(v)) throw invalidMessage(h.at(name), 'format', `${h.at(name)}: expected a count`);
  return Number(v);
}

function resultHeaderFromReader(h: Reader): BatchResultHeader {
  const processTime = h.required('ProcessExecutionTime');
  checkTimestamp(h.at('ProcessExecutionTime'), processTime);
  const segmentOfResult = requiredCode<SegmentOfResult>(h, 'SegmentOfResult', '003');
  const done = segmentOfResult === '1';
  const confirmationDate = done ? h.required('QualificationConfirmationDate') : h.text('QualificationConfirmationDate');
  checkDate(h.at('QualificationConfirmationDate'), confirmationDate);
  const header: BatchResultHeader = {
    processTime,
    institutionCode: institution(h),
    receptionNumber: receptionNumber(h, true) as string,
    segmentOfResult,
    characterCode: requiredCode<CharacterCode>(h, 'CharacterCodeIdentifier', '005'),
  };
  put(header, 'confirmationDate', confirmationDate);
  putFileIdAndError(header, h);
  put(header, 'total', count(h, 'NumberOfProcessingResult', done));
  put(header, 'normal', count(h, 'NumberOfNormalProcessing', done));
  put(header, 'errors', count(h, 'NumberOfError', done));
  put(header, 'extra', h.extra());
  return header;
}

function unitFromReader(r: Reader): BatchResultUnit {
  // Read the unit-only elements first: bodyFromReader puts whatever is left into `extra`.
  const referenceNumber = r.text('ReferenceNumber');
  const limitChanged = code<'0' | '1'>(r, 'LimitApplicationCertificateChanged', '014');
  const unit: BatchResultUnit = bodyFromReader(r, '1');
  put(unit, 'referenceNumber', referenceNumber);
  put(unit, 'limitChanged', limitChanged);
  return unit;
}

function unitToTree(unit: BatchResultUnit): XmlTree {
  const { referenceNumber, limitChanged, ...body } = unit;
  const t = bodyToTree(body);
  const more: XmlTree = {};
  if (referenceNumber !== undefined && referenceNumber !== '') more.ReferenceNumber = referenceNumber;
  if (limitChanged !== undefined) more.LimitApplicationCertificateChanged = limitChanged;
  mergeExtra(t, more, 'unit');
  return t;
}

/**
 * Reads and validates an OQSmuquc02res content tree. With SegmentOfResult 1 the counts are
 * required and must agree with the units (件数 = units, 正常 + 異常 = 件数): an answer that lost
 * units must not let a caller mark the missing entries as done.
 */
export function batchResultFromTree(tree: XmlTree): BatchResult {
  const root = rootReader(tree);
  const header = resultHeaderFromReader(requiredNode(root, 'MessageHeader'));
  const b = root.node('MessageBody') ?? new Reader({}, 'MessageBody');
  root.rejectRest();
  const units = b.nodes(UNIT).map(unitFromReader);
  if (header.segmentOfResult === '1') {
    const { total = 0, normal = 0, errors = 0 } = header;
    if (total !== units.length) {
      throw invalidMessage(
        'MessageHeader/NumberOfProcessingResult',
        'count-mismatch',
        `NumberOfProcessingResult is ${total} but the body holds ${units.length} units`,
      );
    }
    if (normal + errors !== total) {
      throw invalidMessage(
        'MessageHeader/NumberOfNormalProcessing',
        'count-mismatch',
        'NumberOfNormalProcessing + NumberOfError ≠ NumberOfProcessingResult',
      );
    }
  } else if (units.length > 0) {
    throw invalidMessage(
      `MessageBody/${UNIT}`,
      'unexpected',
      `${UNIT} in an answer whose SegmentOfResult is ${header.segmentOfResult}`,
    );
  }
  const result: BatchResult = { header, units };
  put(result, 'extra', b.extra());
  return result;
}

/** `check: false` skips reading the tree back (the validation of what we send); for a peer that only simulates central. */
export function batchResultToTree(result: BatchResult, o: { check?: boolean } = {}): XmlTree {
  const h = headerTree(result.header, RESULT_HEADER);
  const b: XmlTree = {};
  const items = result.units.map(unitToTree);
  if (items.length > 0) b[UNIT] = items.length === 1 ? (items[0] as XmlTree) : items;
  mergeExtra(b, result.extra, 'extra');
  const tree: XmlTree = { MessageHeader: h, MessageBody: b };
  if (o.check !== false) batchResultFromTree(tree);
  return tree;
}

// ---------------------------------------------------------------------------------------------
// XML and JSON forms

/** Responses are decoded by their declaration, which must agree with CharacterCodeIdentifier (as for single answers). */
function checkCharacterCode(encoding: WireEncoding, characterCode: CharacterCode): void {
  if (ENCODING_OF[characterCode] !== encoding) {
    throw new OqsError(
      'OQS_ENCODING_MISMATCH',
      `document is ${encoding} but CharacterCodeIdentifier is ${characterCode}`,
      {
        details: { path: 'MessageHeader/CharacterCodeIdentifier', declared: encoding, characterCode },
      },
    );
  }
}

export function encodeBatchSubmitXml(req: BatchSubmitRequest, encoding: WireEncoding): Buffer {
  return serializeXmlDocument(ROOT, batchSubmitToTree(req), encoding);
}

export function decodeBatchSubmitXml(
  buf: Buffer | Uint8Array,
  limits?: Partial<XmlLimits>,
): { request: BatchSubmitRequest; encoding: WireEncoding } {
  const { tree, encoding } = xmlMsgContent(buf, limits);
  return { request: batchSubmitFromTree(tree), encoding };
}

export function encodeBatchReceiptXml(receipt: BatchReceipt): Buffer {
  return serializeXmlDocument(ROOT, batchReceiptToTree(receipt), ENCODING_OF[receipt.header.characterCode]);
}

export function decodeBatchReceiptXml(buf: Buffer | Uint8Array, limits?: Partial<XmlLimits>): BatchReceipt {
  const { tree, encoding } = xmlMsgContent(buf, limits);
  const receipt = batchReceiptFromTree(tree);
  checkCharacterCode(encoding, receipt.header.characterCode);
  return receipt;
}

export function encodeBatchFetchXml(req: BatchFetchRequest, encoding: WireEncoding): Buffer {
  return serializeXmlDocument(ROOT, batchFetchToTree(req), encoding);
}

export function decodeBatchFetchXml(
  buf: Buffer | Uint8Array,
  limits?: Partial<XmlLimits>,
): { request: BatchFetchRequest; encoding: WireEncoding } {
  const { tree, encoding } = xmlMsgContent(buf, limits);
  return { request: batchFetchFromTree(tree), encoding };
}

export function encodeBatchResultXml(result: BatchResult): Buffer {
  return serializeXmlDocument(ROOT, batchResultToTree(result), ENCODING_OF[result.header.characterCode]);
}

export function decodeBatchResultXml(buf: Buffer | Uint8Array, limits?: Partial<XmlLimits>): BatchResult {
  const { tree, encoding } = xmlMsgContent(buf, limits);
  const result = batchResultFromTree(tree);
  checkCharacterCode(encoding, result.header.characterCode);
  return result;
}

/** JSON forms: `{ "XmlMsg": {…} }` as for single checks; repeated blocks are arrays, ResultList as wrappers. */
export const encodeBatchSubmitJson = (req: BatchSubmitRequest): unknown => toJsonForm(batchSubmitToTree(req));
export const decodeBatchSubmitJson = (json: unknown): BatchSubmitRequest => batchSubmitFromTree(fromJsonForm(json));
export const encodeBatchReceiptJson = (receipt: BatchReceipt): unknown => toJsonForm(batchReceiptToTree(receipt));
export const decodeBatchReceiptJson = (json: unknown): BatchReceipt => batchReceiptFromTree(fromJsonForm(json));
export const encodeBatchFetchJson = (req: BatchFetchRequest): unknown => toJsonForm(batchFetchToTree(req));
export const decodeBatchFetchJson = (json: unknown): BatchFetchRequest => batchFetchFromTree(fromJsonForm(json));
export const encodeBatchResultJson = (result: BatchResult, o: { check?: boolean } = {}): unknown =>
  toJsonForm(batchResultToTree(result, o));
export const decodeBatchResultJson = (json: unknown): BatchResult => batchResultFromTree(fromJsonForm(json));

// ---------------------------------------------------------------------------------------------
// Reading an answer

export type BatchOutcome =
  | { state: 'pending' }
  | { state: 'failed'; errorCode?: string; errorMessage?: string }
  | { state: 'done'; units: BatchResultUnit[] };

/** Spec §8 (3) for a batch: 9 failed (whole batch), 2 処理中 (fetch again later with the same number), 1 done. */
export function batchOutcome(result: BatchResult): BatchOutcome {
  const { segmentOfResult, errorCode, errorMessage } = result.header;
  if (segmentOfResult === '2') return { state: 'pending' };
  if (segmentOfResult === '9') {
    const failed: BatchOutcome = { state: 'failed' };
    put(failed, 'errorCode', errorCode);
    put(failed, 'errorMessage', errorMessage);
    return failed;
  }
  return { state: 'done', units: result.units };
}

export interface BatchPairing {
  /** each submitted entry with the unit whose echo carries its ArbitraryIdentifier */
  paired: Array<{ entry: NumbersQuery; unit: BatchResultUnit }>;
  /** submitted entries no unit answered: not done, ask again */
  missing: NumbersQuery[];
  /** units whose echo is absent, has no ArbitraryIdentifier, names no submitted entry, or repeats one */
  unmatched: BatchResultUnit[];
}

/** Binds units back to the submitted entries by ArbitraryIdentifier, never by position (order is not stable). */
export function pairBatchResults(entries: readonly NumbersQuery[], units: readonly BatchResultUnit[]): BatchPairing {
  const byId = new Map<string, NumbersQuery>();
  for (const e of entries) if (e.arbitraryId !== undefined) byId.set(e.arbitraryId, e);
  const taken = new Set<string>();
  const out: BatchPairing = { paired: [], missing: [], unmatched: [] };
  for (const unit of units) {
    const id = unit.query?.arbitraryId;
    const entry = id === undefined ? undefined : byId.get(id);
    if (id === undefined || entry === undefined || taken.has(id)) out.unmatched.push(unit);
    else {
      taken.add(id);
      out.paired.push({ entry, unit });
    }
  }
  for (const e of entries) if (e.arbitraryId === undefined || !taken.has(e.arbitraryId)) out.missing.push(e);
  return out;
}
