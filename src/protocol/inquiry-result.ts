/**
 * The wire schema of a check's answer (`inquiry.result`'s `result`, a batch result, a replayed
 * outage check): the API owns it, and checks/result.ts's InquiryResult is the same type (a unit test
 * asserts both directions of assignability until checks takes the type from here). The blocks of
 * central's answer keep their oqs/ types; the schema checks their outline only.
 */
import type { FactCheck, NameFallback } from '../oqs/advice.js';
import type { NumbersQuery, QualificationResult, Validity } from '../oqs/types.js';
import { AnyObject, type Static, StringEnum, Type } from '../core/schema-kit.js';

const str = (description?: string) => Type.String(description ? { description } : {});
const opt = Type.Optional;

const VALIDITIES = ['1', '2', '3', '4', '5', '6'] as const satisfies readonly Validity[];
const CONSENT_NAMES = ['medication', 'healthCheck', 'treatment', 'surgery', 'limit'] as const;
const consentName = StringEnum(CONSENT_NAMES);
const consentRecord = <T extends ReturnType<typeof Type.Boolean> | ReturnType<typeof Type.String>>(value: T) =>
  Type.Object({
    medication: value,
    healthCheck: value,
    treatment: value,
    surgery: value,
    limit: value,
  });
const partialConsentRecord = <T extends ReturnType<typeof Type.String>>(value: T) => Type.Partial(consentRecord(value));

const qualificationResult = Type.Unsafe<QualificationResult>({
  type: 'object',
  required: ['cardClassification', 'name', 'sex1', 'birthdate', 'insurerName', 'consents'],
  description: "one person in central's answer (ResultOfQualificationConfirmation), names exactly as sent",
});
const numbersQuery = Type.Unsafe<NumbersQuery>({
  type: 'object',
  required: ['insurerNumber', 'number', 'birthdate', 'limitConsent'],
  description: "central's echo of the question by numbers",
});
const nameFallback = Type.Unsafe<NameFallback>({
  type: 'object',
  required: ['exact', 'fallback', 'lossless', 'substitutions'],
});
const factCheck = Type.Unsafe<FactCheck>({
  type: 'object',
  required: ['compared', 'mismatched'],
  description: 'the fields both sides had and the ones that disagree',
});

export const RESULT_WARNING_SCHEMA = Type.Object({
  code: str(
    'RATIO_LIMIT_INCONSISTENT, POSSIBLE_MISREGISTRATION, MULTIPLE_MATCHES, NAME_FALLBACK_LOSSY, CARD_CERT_EXPIRED_GRACE, CARD_CERT_EXPIRES_SOON, or one added later',
  ),
  message: str(),
  resultIndex: opt(Type.Integer({ description: 'the result (index in `results`) it is about' })),
  details: opt(AnyObject()),
});

const resultNames = Type.Object({
  resultIndex: Type.Integer(),
  name: nameFallback,
  nameKana: opt(nameFallback),
  insuredName: opt(nameFallback),
  nameOfOther: opt(nameFallback),
});

const candidate = Type.Object({
  index: Type.Integer(),
  name: str(),
  nameKana: opt(str()),
  sex1: str(),
  birthdate: str(),
  insurerNumber: opt(str()),
  symbol: opt(str()),
  number: opt(str()),
  branch: opt(str()),
  insurerName: str(),
  knownFacts: opt(factCheck),
});

const consentEcho = Type.Object({
  requested: consentRecord(Type.Boolean()),
  sentToCentral: Type.Array(consentName),
  answered: partialConsentRecord(Type.String()),
  withheld: opt(Type.Object({ names: Type.Array(consentName), reason: Type.Literal('POSSIBLE_MISREGISTRATION') })),
});

export const RECHECK_OUTCOME_SCHEMA = Type.Union([
  Type.Object({ scheduled: Type.Literal(true), id: Type.Integer(), until: str(), duplicate: Type.Boolean() }),
  Type.Object({
    scheduled: Type.Literal(false),
    code: StringEnum(['RECHECK_NO_NUMBERS', 'RECHECK_NOT_STORED']),
    message: str(),
  }),
]);

export const INQUIRY_RESULT_SCHEMA = Type.Object(
  {
    referenceClassification: StringEnum(['1', '2'], { description: "照会区分: '2' by numbers, '1' by card" }),
    source: StringEnum(['central', 'cache', 'none'], {
      description:
        'central = asked just now; cache = central could not be reached and this is what central said at verifiedAt; none = nothing is known (see unavailable)',
    }),
    answeredAt: str('when this answer was given to the counter (ISO 8601)'),
    verifiedAt: opt(str('when central confirmed this answer (ISO 8601); absent when source is none')),
    processTime: opt(str("central's 処理実行日時 (JST, YYYYMMDDHHmmss)")),
    confirmationDate: str(),
    status: opt(StringEnum(['1', '2'], { description: "処理結果状況: '1' answered, '2' a per-person error" })),
    validity: opt(StringEnum(VALIDITIES, { description: '資格有効性 OQSCD006' })),
    validityLabel: opt(str()),
    resultCode: opt(str()),
    resultMessage: opt(str()),
    notices: Type.Array(str(), { description: 'things staff should read, never errors' }),
    results: Type.Array(qualificationResult),
    query: opt(numbersQuery),
    unavailable: opt(
      Type.Object(
        { code: str(), message: str(), guidance: Type.Array(str()) },
        { description: 'source none: why, and what the counter can do instead' },
      ),
    ),
    recheck: opt(
      Type.Union(
        [
          Type.Object({ queued: Type.Literal(true), outboxId: Type.Integer() }),
          Type.Object({ queued: Type.Literal(false), code: str(), message: str() }),
        ],
        { description: 'an outage check is re-verified with central when the line returns' },
      ),
    ),
    warnings: Type.Array(RESULT_WARNING_SCHEMA, {
      description: 'what staff must look at before relying on the answer',
    }),
    nameFallback: opt(Type.Array(resultNames)),
    nameTarget: opt(StringEnum(['shift_jis', 'cp932'])),
    knownFacts: opt(factCheck),
    possibleMisregistration: opt(Type.Boolean()),
    multipleMatches: opt(Type.Object({ candidates: Type.Array(candidate), differingFields: Type.Array(str()) })),
    consent: opt(consentEcho),
    timeLagRecheck: opt(RECHECK_OUTCOME_SCHEMA),
  },
  { description: 'the eligibility answer (docs/api.md, inquiry.result)' },
);

export type InquiryResultWire = Static<typeof INQUIRY_RESULT_SCHEMA>;
