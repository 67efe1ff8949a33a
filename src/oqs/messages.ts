import { isCode } from './codes.js';
import { OqsError, invalidMessage } from './errors.js';
import { padInsurerNumber } from './identifiers.js';
import type {
  CharacterCode,
  Consent,
  ElderlyRecipientInfo,
  LimitApplicationInfo,
  NumbersQuery,
  ProcessingResultStatus,
  QualificationRequest,
  QualificationResponse,
  QualificationResult,
  ReferenceClassification,
  ResponseBody,
  ResponseHeader,
  SegmentOfResult,
  SpecificDiseaseInfo,
  Validity,
  WireEncoding,
  XmlTree,
  XmlValue,
} from './types.js';
import { isXmlName, parseXmlDocument, serializeXmlDocument, type XmlLimits } from './xml.js';

/**
 * Single check (照会区分 2 request; 照会区分 1 and 2 responses) between the domain types and the
 * XmlMsg content tree ({ MessageHeader, MessageBody }), and that tree's XML and JSON forms.
 * Decoding reads by element name (terminal order is unstable), treats an empty optional element
 * as absent, checks required fields, code values and date formats, and keeps what it does not
 * model in `extra` so that decode → encode → decode is lossless.
 */

const ROOT = 'XmlMsg';

// The tree reader and the block codecs below are exported for batch.ts, which reuses them for the
// batch messages; index.ts does not re-export them (they are not part of the oqs API).

// ---------------------------------------------------------------------------------------------
// Reading a tree

/** One element's children, read by name; remembers which names were consumed. */
export class Reader {
  private readonly used = new Set<string>();
  constructor(
    readonly tree: XmlTree,
    readonly path: string,
  ) {}

  at(name: string): string {
    return this.path === '' ? name : `${this.path}/${name}`;
  }

  private raw(name: string): XmlValue | undefined {
    // Only present names need remembering: rest() walks the tree's own keys.
    if (!Object.hasOwn(this.tree, name)) return undefined;
    this.used.add(name);
    return this.tree[name];
  }

  /** Text of a single element; '' (empty element) is absent. */
  text(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (Array.isArray(v)) throw invalidMessage(this.at(name), 'repeated', `${this.at(name)}: element must not repeat`);
    if (typeof v !== 'string')
      throw invalidMessage(this.at(name), 'expected-text', `${this.at(name)}: expected text, found elements`);
    return v === '' ? undefined : v;
  }

  required(name: string): string {
    const v = this.text(name);
    if (v === undefined) throw invalidMessage(this.at(name), 'missing', `${this.at(name)}: required element missing`);
    return v;
  }

  /** A single block element; empty or whitespace-only is absent. */
  node(name: string): Reader | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (Array.isArray(v)) throw invalidMessage(this.at(name), 'repeated', `${this.at(name)}: element must not repeat`);
    return this.asNode(v, this.at(name));
  }

  /** One or many block elements, in document order. */
  nodes(name: string): Reader[] {
    const v = this.raw(name);
    if (v === undefined) return [];
    const items = Array.isArray(v) ? v : [v];
    const out: Reader[] = [];
    items.forEach((item, i) => {
      const r = this.asNode(item, items.length > 1 ? `${this.at(name)}[${i + 1}]` : this.at(name));
      if (r !== undefined) out.push(r);
    });
    return out;
  }

  private asNode(v: XmlValue, path: string): Reader | undefined {
    if (typeof v === 'string') {
      if (v.trim() === '') return undefined;
      throw invalidMessage(path, 'expected-elements', `${path}: expected child elements, found text`);
    }
    if (Array.isArray(v)) throw invalidMessage(path, 'nested-array');
    return Object.keys(v).length === 0 ? undefined : new Reader(v, path);
  }

  /** Children not read so far, in document order. */
  rest(): Array<[string, XmlValue]> {
    const out: Array<[string, XmlValue]> = [];
    for (const k in this.tree) if (Object.hasOwn(this.tree, k) && !this.used.has(k)) out.push([k, this.tree[k]!]);
    return out;
  }

  /** The unread children as an `extra` tree, or undefined. */
  extra(): XmlTree | undefined {
    const rest = this.rest();
    return rest.length === 0 ? undefined : Object.fromEntries(rest);
  }

  /** Requests are ours to understand completely: an unknown element is an error, not data. */
  rejectRest(): void {
    const first = this.rest()[0];
    if (first !== undefined)
      throw invalidMessage(this.at(first[0]), 'unknown-element', `${this.at(first[0])}: unknown element`);
  }
}

const DATE_RE = /^\d{8}$/;

export function checkDate(path: string, v: string | undefined): void {
  if (v !== undefined && !DATE_RE.test(v)) throw invalidMessage(path, 'date-format', `${path}: expected YYYYMMDD`);
}

const TIMESTAMP_RE = /^\d{14}$/;

export function checkTimestamp(path: string, v: string | undefined): void {
  if (v !== undefined && !TIMESTAMP_RE.test(v))
    throw invalidMessage(path, 'timestamp-format', `${path}: expected YYYYMMDDHHmmss`);
}

function checkCode(table: string, path: string, v: string | undefined): void {
  if (v !== undefined && !isCode(table, v))
    throw invalidMessage(path, 'unknown-code', `${path}: not a code of OQSCD${table}`);
}

export function code<T extends string = string>(r: Reader, name: string, table: string): T | undefined {
  const v = r.text(name);
  checkCode(table, r.at(name), v);
  return v as T | undefined;
}

export function requiredCode<T extends string = string>(r: Reader, name: string, table: string): T {
  const v = r.required(name);
  checkCode(table, r.at(name), v);
  return v as T;
}

/** Adds only defined values so that absent stays absent (and deep equality holds after a round trip). */
export function put<T extends object, K extends keyof T>(obj: T, key: K, v: T[K] | undefined): void {
  if (v !== undefined) obj[key] = v;
}

/** The optional fields every answer header carries: the echoed file id and central's error (別紙6-1 codes are opaque). */
export function putFileIdAndError(
  header: { fileId?: string; errorCode?: string; errorMessage?: string },
  h: Reader,
): void {
  put(header, 'fileId', h.text('ArbitraryFileIdentifier'));
  put(header, 'errorCode', h.text('ErrorCode'));
  put(header, 'errorMessage', h.text('ErrorMessage'));
}

// ---------------------------------------------------------------------------------------------
// QualificationConfirmSearchInfo (request block and its echo in a response)

const Q = {
  insurer: 'InsurerNumber',
  symbol: 'InsuredCardSymbol',
  number: 'InsuredIdentificationNumber',
  branch: 'InsuredBranchNumber',
  birthdate: 'Birthdate',
  limit: 'LimitApplicationCertificateRelatedConsFlg',
  arbitraryId: 'ArbitraryIdentifier',
} as const;

export function queryFromReader(r: Reader): NumbersQuery {
  const insurerNumber = r.required(Q.insurer);
  if (!/^(?: {2}\d{6}|\d{8}|\d{6})$/.test(insurerNumber)) {
    throw invalidMessage(r.at(Q.insurer), 'format', `${r.at(Q.insurer)}: expected 6 or 8 digits, space-padded to 8`);
  }
  const symbol = r.text(Q.symbol);
  const number = r.required(Q.number);
  for (const [name, v] of [
    [Q.symbol, symbol],
    [Q.number, number],
  ] as const) {
    if (v !== undefined && [...v].length > 20)
      throw invalidMessage(r.at(name), 'too-long', `${r.at(name)}: more than 20 characters`);
  }
  const branch = r.text(Q.branch);
  if (branch !== undefined && !/^\d{2}$/.test(branch))
    throw invalidMessage(r.at(Q.branch), 'format', `${r.at(Q.branch)}: expected 2 digits`);
  const birthdate = r.required(Q.birthdate);
  checkDate(r.at(Q.birthdate), birthdate);
  const limitConsent = requiredCode<'0' | '1'>(r, Q.limit, '001');
  const q: NumbersQuery = { insurerNumber, number, birthdate, limitConsent };
  put(q, 'symbol', symbol);
  put(q, 'branch', branch);
  put(q, 'arbitraryId', r.text(Q.arbitraryId));
  r.rejectRest();
  return q;
}

export function queryToTree(q: NumbersQuery): XmlTree {
  const t: XmlTree = { [Q.insurer]: padInsurerNumber(q.insurerNumber) };
  if (q.symbol !== undefined && q.symbol !== '') t[Q.symbol] = q.symbol;
  t[Q.number] = q.number;
  if (q.branch !== undefined && q.branch !== '') t[Q.branch] = q.branch;
  t[Q.birthdate] = q.birthdate;
  t[Q.limit] = q.limitConsent;
  if (q.arbitraryId !== undefined && q.arbitraryId !== '') t[Q.arbitraryId] = q.arbitraryId;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Request

/** The XmlMsg content tree of an OQSsiquc01req, elements in the spec's order (§2.1). Validates. */
export function requestToTree(req: QualificationRequest): XmlTree {
  const header: XmlTree = {
    QualificationConfirmationDate: req.confirmationDate,
    MedicalInstitutionCode: req.institutionCode,
  };
  if (req.fileId !== undefined && req.fileId !== '') header.ArbitraryFileIdentifier = req.fileId;
  const tree: XmlTree = {
    MessageHeader: header,
    MessageBody: { QualificationConfirmSearchInfo: queryToTree(req.query) },
  };
  requestFromTree(tree); // never emit what we would refuse to read
  return tree;
}

/** Reads and validates an OQSsiquc01req content tree. Unknown elements are refused. */
export function requestFromTree(tree: XmlTree): QualificationRequest {
  const { b, confirmationDate, institutionCode, fileId } = requestEnvelope(tree);
  const query = queryFromReader(requiredNode(b, 'QualificationConfirmSearchInfo'));
  b.rejectRest();
  const req: QualificationRequest = { confirmationDate, institutionCode, query };
  put(req, 'fileId', fileId);
  return req;
}

/** The header every request file carries (single and batch): date, institution, file id; the body reader. */
export function requestEnvelope(tree: XmlTree): {
  b: Reader;
  confirmationDate: string;
  institutionCode: string;
  fileId: string | undefined;
} {
  const root = rootReader(tree);
  const h = requiredNode(root, 'MessageHeader');
  const b = requiredNode(root, 'MessageBody');
  root.rejectRest();
  const confirmationDate = h.required('QualificationConfirmationDate');
  checkDate(h.at('QualificationConfirmationDate'), confirmationDate);
  const institutionCode = institution(h);
  const fileId = h.text('ArbitraryFileIdentifier');
  if (fileId !== undefined && !/^[\x21-\x7E]{1,50}$/.test(fileId)) {
    throw invalidMessage(
      h.at('ArbitraryFileIdentifier'),
      'format',
      'ArbitraryFileIdentifier: printable ASCII, at most 50',
    );
  }
  h.rejectRest();
  return { b, confirmationDate, institutionCode, fileId };
}

export function rootReader(tree: XmlTree): Reader {
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree)) throw invalidMessage('', 'expected-elements');
  return new Reader(tree, '');
}

export function requiredNode(r: Reader, name: string): Reader {
  const n = r.node(name);
  if (n === undefined) throw invalidMessage(r.at(name), 'missing', `${r.at(name)}: required element missing`);
  return n;
}

export function institution(h: Reader): string {
  const v = h.required('MedicalInstitutionCode');
  if (!/^\d{10}$/.test(v))
    throw invalidMessage(h.at('MedicalInstitutionCode'), 'format', 'MedicalInstitutionCode: expected 10 digits');
  return v;
}

// ---------------------------------------------------------------------------------------------
// Response: consents

const CONSENT_RE = /^(.+?)(ConsFlg|ConsTime|AvailableTime)$/;
const LIMIT_PREFIX = 'LimitApplicationCertificateRelated';
const DISEASES_PREFIX = 'SpecificDiseasesCertificateRelated';
/** Documented consent blocks, in the spec's order; others follow in the order they came. */
const CONSENT_ORDER = ['SpecificHealthCheckupsInfo', 'PharmacistsInfo', 'DiagnosisInfo', 'OperationInfo'];

type ConsentParts = { ConsFlg?: string; ConsTime?: string; AvailableTime?: string };

/** If `value` is a block whose children are all `<name>ConsFlg|ConsTime|AvailableTime`, those parts. */
function nestedConsent(name: string, value: XmlValue): Array<[string, XmlValue]> | undefined {
  if (typeof value !== 'object' || Array.isArray(value)) return undefined;
  const entries = Object.entries(value);
  if (entries.length === 0) return undefined;
  return entries.every(([k]) => CONSENT_RE.exec(k)?.[1] === name) ? entries : undefined;
}

function consentFromParts(prefix: string, path: string, parts: ConsentParts, flagTable: string): Consent {
  const at = (s: string): string => `${path}/${prefix}${s}`;
  if (parts.ConsFlg === undefined)
    throw invalidMessage(at('ConsFlg'), 'missing', `${at('ConsFlg')}: consent time without a flag`);
  // Paths only for an error (every result carries a few consents).
  if (!isCode(flagTable, parts.ConsFlg)) checkCode(flagTable, at('ConsFlg'), parts.ConsFlg);
  if (parts.ConsTime !== undefined && !TIMESTAMP_RE.test(parts.ConsTime))
    checkTimestamp(at('ConsTime'), parts.ConsTime);
  if (parts.AvailableTime !== undefined && !TIMESTAMP_RE.test(parts.AvailableTime))
    checkTimestamp(at('AvailableTime'), parts.AvailableTime);
  const c: Consent = { flag: parts.ConsFlg };
  put(c, 'time', parts.ConsTime);
  put(c, 'availableTime', parts.AvailableTime);
  return c;
}

function consentToTree(t: XmlTree, prefix: string, c: Consent): void {
  t[`${prefix}ConsFlg`] = c.flag;
  if (c.time !== undefined && c.time !== '') t[`${prefix}ConsTime`] = c.time;
  if (c.availableTime !== undefined && c.availableTime !== '') t[`${prefix}AvailableTime`] = c.availableTime;
}

// ---------------------------------------------------------------------------------------------
// Response: ResultOfQualificationConfirmation

/** Simple text fields of a result, in the spec's order (§2.4) up to InsurerName. */
const RESULT_TEXT: ReadonlyArray<readonly [keyof QualificationResult, string, 'date' | string | null]> = [
  ['cardClassification', 'InsuredCardClassification', '010'],
  ['insurerNumber', 'InsurerNumber', null],
  ['symbol', 'InsuredCardSymbol', null],
  ['number', 'InsuredIdentificationNumber', null],
  ['branch', 'InsuredBranchNumber', null],
  ['personalFamily', 'PersonalFamilyClassification', '009'],
  ['insuredName', 'InsuredName', null],
  ['name', 'Name', null],
  ['nameKana', 'NameKana', null],
  ['nameOfOther', 'NameOfOther', null],
  ['nameOfOtherKana', 'NameOfOtherKana', null],
  ['sex1', 'Sex1', '007'],
  ['sex2', 'Sex2', '007'],
  ['birthdate', 'Birthdate', 'date'],
  ['address', 'Address', null],
  ['postNumber', 'PostNumber', null],
  ['qualificationDate', 'QualificationDate', 'date'],
  ['disqualificationDate', 'DisqualificationDate', 'date'],
  ['certificateIssuanceDate', 'InsuredCertificateIssuanceDate', 'date'],
  ['cardValidDate', 'InsuredCardValidDate', 'date'],
  ['cardExpirationDate', 'InsuredCardExpirationDate', 'date'],
  ['partialContributionRatio', 'InsuredPartialContributionRatio', null],
  ['preschool', 'PreschoolClassification', '015'],
  ['reasonOfLoss', 'ReasonOfLoss', '008'],
  ['insurerName', 'InsurerName', null],
];
const RESULT_REQUIRED = new Set(['cardClassification', 'name', 'sex1', 'birthdate', 'insurerName']);

const ELDERLY: ReadonlyArray<readonly [keyof ElderlyRecipientInfo, string, 'date' | null]> = [
  ['issueDate', 'ElderlyRecipientCertificateDate', 'date'],
  ['validStartDate', 'ElderlyRecipientValidStartDate', 'date'],
  ['validEndDate', 'ElderlyRecipientValidEndDate', 'date'],
  ['contributionRatio', 'ElderlyRecipientContributionRatio', null],
];
const LIMIT_INFO: ReadonlyArray<readonly [keyof LimitApplicationInfo, string, 'date' | string]> = [
  ['classification', 'LimitApplicationCertificateClassification', '011'],
  ['classificationFlag', 'LimitApplicationCertificateClassificationFlag', '012'],
  ['issueDate', 'LimitApplicationCertificateDate', 'date'],
  ['validStartDate', 'LimitApplicationCertificateValidStartDate', 'date'],
  ['validEndDate', 'LimitApplicationCertificateValidEndDate', 'date'],
  ['longTermDate', 'LimitApplicationCertificateLongTermDate', 'date'],
];
const DISEASE_INFO: ReadonlyArray<readonly [keyof SpecificDiseaseInfo, string, 'date' | string | null]> = [
  ['category', 'SpecificDiseasesDiseaseCategory', '013'],
  ['certificateDate', 'SpecificDiseasesCertificateDate', 'date'],
  ['validStartDate', 'SpecificDiseasesValidStartDate', 'date'],
  ['validEndDate', 'SpecificDiseasesValidEndDate', 'date'],
  ['selfPay', 'SpecificDiseasesSelfPay', null],
];

/** Reads `fields` (domain key, element, 'date' | OQSCD table | null) of a block into a fresh object. */
function readFields<T extends object>(
  r: Reader,
  fields: ReadonlyArray<readonly [keyof T, string, string | null]>,
): Partial<Record<keyof T, string>> {
  const out: Partial<Record<keyof T, string>> = {};
  for (const [key, el, kind] of fields) {
    const v = r.text(el);
    if (v === undefined) continue;
    // The element's path is built only for the error: a batch answer reads ~40 fields × 200 units.
    if (kind === 'date') {
      if (!DATE_RE.test(v)) checkDate(r.at(el), v);
    } else if (typeof kind === 'string' && !isCode(kind, v)) checkCode(kind, r.at(el), v);
    out[key] = v;
  }
  return out;
}

function writeFields<T extends object>(
  t: XmlTree,
  obj: T,
  fields: ReadonlyArray<readonly [keyof T, string, unknown]>,
): void {
  for (const [key, el] of fields) {
    const v = obj[key];
    if (typeof v === 'string' && v !== '') t[el] = v;
  }
}

function blockFromReader<T extends { extra?: XmlTree }>(
  r: Reader,
  fields: ReadonlyArray<readonly [keyof T, string, string | null]>,
): T {
  const out = readFields<T>(r, fields) as T;
  put(out, 'extra', r.extra());
  return out;
}

function blockToTree<T extends { extra?: XmlTree }>(
  obj: T,
  fields: ReadonlyArray<readonly [keyof T, string, unknown]>,
): XmlTree {
  const t: XmlTree = {};
  writeFields(t, obj, fields);
  mergeExtra(t, obj.extra, 'extra');
  return t;
}

function resultFromReader(r: Reader): { result: QualificationResult; prescriptionIssueSelect?: string } {
  const f = readFields<QualificationResult>(r, RESULT_TEXT);
  for (const [key, el] of RESULT_TEXT) {
    if (RESULT_REQUIRED.has(key) && f[key] === undefined)
      throw invalidMessage(r.at(el), 'missing', `${r.at(el)}: required element missing`);
  }
  const result = { ...f, consents: {} } as QualificationResult;
  const elderly = r.node('ElderlyRecipientCertificateInfo');
  if (elderly !== undefined) result.elderly = blockFromReader<ElderlyRecipientInfo>(elderly, ELDERLY);
  const limitInfo = r.node('LimitApplicationCertificateRelatedInfo');
  if (limitInfo !== undefined) result.limitInfo = blockFromReader<LimitApplicationInfo>(limitInfo, LIMIT_INFO);
  // 特定疾病: inside SpecificDiseasesCertificateList, or (tolerated) directly in the result.
  const diseases = [
    ...(r.node('SpecificDiseasesCertificateList')?.nodes('SpecificDiseasesCertificateInfo') ?? []),
    ...r.nodes('SpecificDiseasesCertificateInfo'),
  ].map((d) => blockFromReader<SpecificDiseaseInfo>(d, DISEASE_INFO));
  if (diseases.length > 0) result.specificDiseases = diseases;
  put(result, 'referenceNumber', r.text('ReferenceNumber'));

  // Consent triples, flat or nested in a block of their prefix; everything else → extra.
  const parts = new Map<string, { parts: ConsentParts; path: string; nested: boolean }>();
  const extra: XmlTree = {};
  for (const [name, value] of r.rest()) {
    const nested = nestedConsent(name, value);
    const flat = nested === undefined ? CONSENT_RE.exec(name) : null;
    if (nested === undefined && flat === null) {
      extra[name] = value;
      continue;
    }
    const prefix = nested !== undefined ? name : (flat?.[1] ?? '');
    const entries = nested ?? [[name, value] as [string, XmlValue]];
    const path = nested !== undefined ? r.at(name) : r.path;
    const slot = parts.get(prefix) ?? { parts: {}, path, nested: nested !== undefined };
    if (parts.has(prefix) && slot.nested !== (nested !== undefined)) {
      throw invalidMessage(r.at(name), 'duplicate-consent', `${r.at(name)}: consent given both flat and nested`);
    }
    for (const [k, v] of entries) {
      if (typeof v !== 'string') {
        const at = `${path}/${k}`;
        if (Array.isArray(v)) throw invalidMessage(at, 'repeated', `${at}: element must not repeat`);
        throw invalidMessage(at, 'expected-text', `${at}: expected text`);
      }
      const suffix = k.slice(prefix.length) as keyof ConsentParts;
      if (v !== '') slot.parts[suffix] = v;
    }
    parts.set(prefix, slot);
  }
  for (const [prefix, { parts: p, path }] of parts) {
    if (Object.keys(p).length === 0) continue; // all parts empty = absent
    if (prefix === LIMIT_PREFIX) result.limitConsent = consentFromParts(prefix, path, p, '001');
    else if (prefix === DISEASES_PREFIX) result.specificDiseasesConsent = consentFromParts(prefix, path, p, '016');
    else result.consents[prefix] = consentFromParts(prefix, path, p, '016');
  }
  if (Object.keys(extra).length > 0) result.extra = extra;
  // One codebase nests PrescriptionIssueSelect here; it stays in extra and is also lifted to the body.
  const pis = extra.PrescriptionIssueSelect;
  return typeof pis === 'string' && pis !== '' ? { result, prescriptionIssueSelect: pis } : { result };
}

function resultToTree(res: QualificationResult): XmlTree {
  const t: XmlTree = {};
  writeFields(t, res, RESULT_TEXT);
  if (res.elderly !== undefined) t.ElderlyRecipientCertificateInfo = blockToTree(res.elderly, ELDERLY);
  if (res.limitConsent !== undefined) consentToTree(t, LIMIT_PREFIX, res.limitConsent);
  if (res.limitInfo !== undefined) t.LimitApplicationCertificateRelatedInfo = blockToTree(res.limitInfo, LIMIT_INFO);
  if (res.specificDiseasesConsent !== undefined) consentToTree(t, DISEASES_PREFIX, res.specificDiseasesConsent);
  if (res.specificDiseases !== undefined && res.specificDiseases.length > 0) {
    const items = res.specificDiseases.map((d) => blockToTree(d, DISEASE_INFO));
    t.SpecificDiseasesCertificateList = {
      SpecificDiseasesCertificateInfo: items.length === 1 ? (items[0] as XmlTree) : items,
    };
  }
  const extra = { ...(res.extra ?? {}) };
  // 医療扶助 sits where the spec lists it, before the consent blocks; other extras go last.
  if (extra.PublicExpenseResultList !== undefined) {
    t.PublicExpenseResultList = extra.PublicExpenseResultList;
    delete extra.PublicExpenseResultList;
  }
  // Consents are written flat, as in the real walk-in sample (spec §10.3).
  const prefixes = Object.keys(res.consents ?? {}).sort((a, b) => orderOf(a) - orderOf(b));
  for (const p of prefixes) {
    if (p === LIMIT_PREFIX || p === DISEASES_PREFIX) throw invalidMessage(`consents.${p}`, 'reserved-consent');
    consentToTree(t, p, res.consents[p] as Consent);
  }
  if (res.referenceNumber !== undefined && res.referenceNumber !== '') t.ReferenceNumber = res.referenceNumber;
  for (const [k, v] of Object.entries(extra)) {
    if (Object.hasOwn(t, k))
      throw invalidMessage(`extra.${k}`, 'duplicate-element', `extra.${k}: collides with a modelled element`);
    t[k] = v;
  }
  return t;
}

function orderOf(prefix: string): number {
  const i = CONSENT_ORDER.indexOf(prefix);
  return i === -1 ? CONSENT_ORDER.length : i; // stable sort keeps the rest in their own order
}

// ---------------------------------------------------------------------------------------------
// Response: header and body

const HEADER: ReadonlyArray<readonly [keyof ResponseHeader, string]> = [
  ['processTime', 'ProcessExecutionTime'],
  ['confirmationDate', 'QualificationConfirmationDate'],
  ['institutionCode', 'MedicalInstitutionCode'],
  ['fileId', 'ArbitraryFileIdentifier'],
  ['referenceClassification', 'ReferenceClassification'],
  ['segmentOfResult', 'SegmentOfResult'],
  ['errorCode', 'ErrorCode'],
  ['errorMessage', 'ErrorMessage'],
  ['characterCode', 'CharacterCodeIdentifier'],
];

function headerFromReader(h: Reader): ResponseHeader {
  const processTime = h.required('ProcessExecutionTime');
  checkTimestamp(h.at('ProcessExecutionTime'), processTime);
  const confirmationDate = h.required('QualificationConfirmationDate');
  checkDate(h.at('QualificationConfirmationDate'), confirmationDate);
  const header: ResponseHeader = {
    processTime,
    confirmationDate,
    institutionCode: institution(h),
    referenceClassification: requiredCode<ReferenceClassification>(h, 'ReferenceClassification', '002'),
    segmentOfResult: requiredCode<SegmentOfResult>(h, 'SegmentOfResult', '003'),
    characterCode: requiredCode<CharacterCode>(h, 'CharacterCodeIdentifier', '005'),
  };
  putFileIdAndError(header, h);
  put(header, 'extra', h.extra());
  return header;
}

export function bodyFromReader(b: Reader | undefined, segment: SegmentOfResult): ResponseBody {
  const r = b ?? new Reader({}, 'MessageBody');
  const status = code<ProcessingResultStatus>(r, 'ProcessingResultStatus', '004');
  if (status === undefined && segment === '1') {
    throw invalidMessage(
      r.at('ProcessingResultStatus'),
      'missing',
      'MessageBody/ProcessingResultStatus: required element missing',
    );
  }
  const validity = code<Validity>(r, 'QualificationValidity', '006');
  if (status === '1' && validity === undefined) {
    throw invalidMessage(
      r.at('QualificationValidity'),
      'missing',
      'MessageBody/QualificationValidity: required when status is 1',
    );
  }
  const body: ResponseBody = { status: status ?? '2', results: [] };
  if (status === undefined) body.statusMissing = true;
  const echo = r.node('QualificationConfirmSearchInfo');
  if (echo !== undefined) body.query = queryFromReader(echo);
  put(body, 'resultCode', r.text('ProcessingResultCode')); // opaque (別紙6-1)
  put(body, 'resultMessage', r.text('ProcessingResultMessage'));
  put(body, 'validity', validity);
  put(body, 'prescriptionIssueSelect', code(r, 'PrescriptionIssueSelect', '017'));
  const list = r.node('ResultList');
  const found = [
    ...(list?.nodes('ResultOfQualificationConfirmation') ?? []),
    ...r.nodes('ResultOfQualificationConfirmation'),
  ];
  list?.rejectRest(); // a ResultList holds results only; anything else would be lost on encode
  for (const item of found) {
    const { result, prescriptionIssueSelect } = resultFromReader(item);
    body.results.push(result);
    if (body.prescriptionIssueSelect === undefined && prescriptionIssueSelect !== undefined) {
      checkCode('017', `${item.path}/PrescriptionIssueSelect`, prescriptionIssueSelect);
      body.prescriptionIssueSelect = prescriptionIssueSelect;
    }
  }
  put(body, 'extra', r.extra());
  return body;
}

/** Reads and validates a single-check response content tree (照会区分 1 or 2). */
export function responseFromTree(tree: XmlTree): QualificationResponse {
  const root = rootReader(tree);
  const header = headerFromReader(requiredNode(root, 'MessageHeader'));
  const body = bodyFromReader(root.node('MessageBody'), header.segmentOfResult);
  root.rejectRest();
  return { header, body };
}

/** The XmlMsg content tree of a response, elements in the spec's order (§2.2–2.4). Validates. */
export function responseToTree(res: QualificationResponse): XmlTree {
  const h: XmlTree = {};
  for (const [key, el] of HEADER) {
    const v = res.header[key];
    if (typeof v === 'string' && v !== '') h[el] = v;
  }
  mergeExtra(h, res.header.extra, 'header.extra');
  const tree: XmlTree = { MessageHeader: h, MessageBody: bodyToTree(res.body) };
  responseFromTree(tree); // never emit what we would refuse to read
  return tree;
}

/** A response body (also a batch answer's BulkConfirmUnit), elements in the spec's order. Does not validate. */
export function bodyToTree(body: ResponseBody): XmlTree {
  const b: XmlTree = {};
  if (body.query !== undefined) b.QualificationConfirmSearchInfo = queryToTree(body.query);
  if (body.statusMissing !== true) b.ProcessingResultStatus = body.status;
  const opt: ReadonlyArray<readonly [string | undefined, string]> = [
    [body.resultCode, 'ProcessingResultCode'],
    [body.resultMessage, 'ProcessingResultMessage'],
    [body.validity, 'QualificationValidity'],
    [body.prescriptionIssueSelect, 'PrescriptionIssueSelect'],
  ];
  for (const [v, el] of opt) if (v !== undefined && v !== '') b[el] = v;
  if (body.results.length > 0) {
    const items = body.results.map(resultToTree);
    b.ResultList = { ResultOfQualificationConfirmation: items.length === 1 ? (items[0] as XmlTree) : items };
  }
  mergeExtra(b, body.extra, 'body.extra');
  return b;
}

export function mergeExtra(t: XmlTree, extra: XmlTree | undefined, path: string): void {
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (Object.hasOwn(t, k))
      throw invalidMessage(`${path}.${k}`, 'duplicate-element', `${path}.${k}: collides with a modelled element`);
    t[k] = v;
  }
}

// ---------------------------------------------------------------------------------------------
// XML form

export function xmlMsgContent(
  buf: Buffer | Uint8Array,
  limits?: Partial<XmlLimits>,
): { tree: XmlTree; encoding: WireEncoding } {
  const doc = parseXmlDocument(buf, limits);
  if (doc.root !== ROOT) throw invalidMessage('', 'root', `root element must be <${ROOT}>`);
  return { tree: doc.tree, encoding: doc.encoding };
}

export function encodeRequestXml(req: QualificationRequest, encoding: WireEncoding): Buffer {
  return serializeXmlDocument(ROOT, requestToTree(req), encoding);
}

export function decodeRequestXml(
  buf: Buffer | Uint8Array,
  limits?: Partial<XmlLimits>,
): { request: QualificationRequest; encoding: WireEncoding } {
  const { tree, encoding } = xmlMsgContent(buf, limits);
  return { request: requestFromTree(tree), encoding };
}

export const ENCODING_OF: Record<CharacterCode, WireEncoding> = { '0': 'UTF-8', '1': 'Shift_JIS' };

/** Written in the encoding the header announces (CharacterCodeIdentifier 0 UTF-8, 1 Shift_JIS). */
export function encodeResponseXml(res: QualificationResponse): Buffer {
  const encoding = ENCODING_OF[res.header.characterCode];
  if (encoding === undefined) throw invalidMessage('MessageHeader/CharacterCodeIdentifier', 'unknown-code');
  return serializeXmlDocument(ROOT, responseToTree(res), encoding);
}

/** Decodes by the XML declaration, then insists CharacterCodeIdentifier says the same. */
export function decodeResponseXml(buf: Buffer | Uint8Array, limits?: Partial<XmlLimits>): QualificationResponse {
  const { tree, encoding } = xmlMsgContent(buf, limits);
  const res = responseFromTree(tree);
  if (ENCODING_OF[res.header.characterCode] !== encoding) {
    throw new OqsError(
      'OQS_ENCODING_MISMATCH',
      `document is ${encoding} but CharacterCodeIdentifier is ${res.header.characterCode}`,
      {
        details: {
          path: 'MessageHeader/CharacterCodeIdentifier',
          declared: encoding,
          characterCode: res.header.characterCode,
        },
      },
    );
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// JSON form (Web API, spec §0.2): { XmlMsg: {...} }, ResultList as [{ ResultOfQualificationConfirmation }]

const RESULT_LIST = 'ResultList';
const RESULT = 'ResultOfQualificationConfirmation';
const JSON_MAX_DEPTH = 64;
const JSON_MAX_NODES = 100_000;

function cloneToJson(v: XmlValue, name: string | undefined): unknown {
  if (typeof v === 'string') return name === RESULT_LIST ? [] : v;
  if (Array.isArray(v)) return v.map((x) => cloneToJson(x, undefined));
  if (name === RESULT_LIST) {
    const keys = Object.keys(v);
    if (keys.length === 0) return [];
    if (keys.length === 1 && keys[0] === RESULT) {
      const r = v[RESULT] as XmlValue;
      return (Array.isArray(r) ? r : [r]).map((x) => ({ [RESULT]: cloneToJson(x, RESULT) }));
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, c] of Object.entries(v)) out[k] = cloneToJson(c, k);
  return out;
}

/** XmlMsg content tree → Web API JSON (with the XmlMsg wrapper). */
export function toJsonForm(tree: XmlTree): unknown {
  return { [ROOT]: cloneToJson(tree, undefined) };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * The walk's position as a stack (names, and 1-based indices for array items): the path string is
 * built only for an error, not for each of a batch answer's ~10,000 nodes.
 */
interface JsonWalk {
  nodes: number;
  at: Array<string | number>;
}

function walkPath(w: JsonWalk, ...more: Array<string | number>): string {
  let out = '';
  for (const seg of [...w.at, ...more])
    out = typeof seg === 'number' ? `${out}[${seg}]` : out === '' ? seg : `${out}/${seg}`;
  return out;
}

/** Element names already seen to be valid: a batch answer repeats the same few dozen names. */
const validNames = new Set<string>();
function validName(k: string): boolean {
  if (validNames.has(k)) return true;
  if (!isXmlName(k)) return false;
  if (validNames.size < 4096) validNames.add(k);
  return true;
}

/** Validates JSON as a tree of strings/objects/arrays; ResultList arrays of wrappers become the XML shape. */
function jsonToTree(v: unknown, w: JsonWalk): XmlValue {
  if (w.at.length > JSON_MAX_DEPTH) throw invalidMessage(walkPath(w), 'too-deep');
  if (--w.nodes < 0) throw invalidMessage(walkPath(w), 'too-many-nodes');
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const items: XmlValue[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (Array.isArray(x)) throw invalidMessage(walkPath(w, i + 1), 'nested-array');
      w.at.push(i + 1);
      items[i] = jsonToTree(x, w);
      w.at.pop();
    }
    return items;
  }
  if (!isPlainObject(v)) {
    const path = walkPath(w);
    throw invalidMessage(path, 'not-a-string', `${path || '(root)'}: values must be strings, objects or arrays`);
  }
  const out: XmlTree = {};
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    if (!validName(k)) throw invalidMessage(walkPath(w, k), 'invalid-name', `invalid element name in JSON form`);
    const c = v[k];
    w.at.push(k);
    const value = k === RESULT_LIST && Array.isArray(c) ? resultListFromJson(c, w) : jsonToTree(c, w);
    w.at.pop();
    // A one-item array is a single element and an empty one no element, exactly as the XML reader sees them.
    if (Array.isArray(value)) {
      if (value.length === 0) continue;
      out[k] = value.length === 1 ? (value[0] as XmlValue) : value;
    } else out[k] = value;
  }
  return out;
}

function resultListFromJson(items: unknown[], w: JsonWalk): XmlValue {
  const results = items.map((x, i) => {
    if (!isPlainObject(x) || Object.keys(x).length !== 1 || !Object.hasOwn(x, RESULT)) {
      const p = walkPath(w, i + 1);
      throw invalidMessage(p, 'expected-result-wrapper', `${p}: expected { "${RESULT}": {...} }`);
    }
    w.at.push(i + 1, RESULT);
    const r = jsonToTree(x[RESULT], w);
    if (Array.isArray(r)) throw invalidMessage(walkPath(w), 'repeated');
    w.at.length -= 2;
    return r;
  });
  if (results.length === 0) return '';
  return { [RESULT]: results.length === 1 ? (results[0] as XmlValue) : results };
}

/** Web API JSON → XmlMsg content tree. Accepts ResultList as an array of wrappers or in the XML-tree shape. */
export function fromJsonForm(json: unknown): XmlTree {
  if (!isPlainObject(json) || Object.keys(json).length !== 1 || !Object.hasOwn(json, ROOT)) {
    throw invalidMessage('', 'root', `JSON form must be { "${ROOT}": {...} }`);
  }
  const content = jsonToTree(json[ROOT], { nodes: JSON_MAX_NODES, at: [] });
  if (typeof content !== 'object' || Array.isArray(content)) throw invalidMessage('', 'expected-elements');
  return content;
}

export function encodeRequestJson(req: QualificationRequest): unknown {
  return toJsonForm(requestToTree(req));
}

export function decodeRequestJson(json: unknown): QualificationRequest {
  return requestFromTree(fromJsonForm(json));
}

export function encodeResponseJson(res: QualificationResponse): unknown {
  return toJsonForm(responseToTree(res));
}

export function decodeResponseJson(json: unknown): QualificationResponse {
  return responseFromTree(fromJsonForm(json));
}
