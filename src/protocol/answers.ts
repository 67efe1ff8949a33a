/**
 * What the gateway sends back, each written once: the answers that end a request (by answer type),
 * the progress messages that come before an answer, the error answer and `welcome`. From these
 * follow the JSON Schemas of the AsyncAPI document, the types the client library resolves with
 * (`AnswerOf<'status'>` is the `status` answer) and the type of the server's handler table.
 */
import { SCOPES } from './scopes.js';
import { EVENT_TOPICS } from './events.js';
import { INQUIRY_RESULT_SCHEMA } from './inquiry-result.js';
import { STATUS_SCHEMA } from './status.js';
import type { ParsedRequest, RequestType } from './requests.js';
import { AnyObject, type OmitEach, type Static, StringEnum, type TSchema, Type } from '../core/schema-kit.js';

const str = (description?: string) => Type.String(description ? { description } : {});
const int = (description?: string) => Type.Integer(description ? { description } : {});
const opt = Type.Optional;
const id = Type.String({ minLength: 1, maxLength: 64, description: 'the id of the request this answers' });

/** An answer: its type, the request's id and its own fields. Open: a minor version may add fields. */
const answer = <T extends string, P extends Record<string, TSchema>>(type: T, properties: P, description?: string) =>
  Type.Object({ type: Type.Literal(type), id, ...properties }, description ? { description } : {});

export const ERROR_BODY_SCHEMA = Type.Object({
  code: str('what a receipt computer can act on (see docs/api.md, Errors)'),
  message: str(),
  retryable: Type.Boolean({ description: 'whether the same request later can succeed' }),
  details: opt(AnyObject({ description: 'never personal data' })),
});
export type ApiErrorBody = Static<typeof ERROR_BODY_SCHEMA>;

const topicList = Type.Array(StringEnum(EVENT_TOPICS));
const scopeList = Type.Array(StringEnum(SCOPES));

const batchState = str('open, queued, scheduled, running, done, failed or cancelled');
const batchView = Type.Object({
  batchId: str(),
  state: batchState,
  run: StringEnum(['now', 'scheduled']),
  confirmationDate: str(),
  total: int(),
  finished: int(),
  errors: int(),
  chunks: Type.Object({ total: int(), pending: int(), submitted: int(), done: int(), failed: int() }),
  lastError: opt(str('why a chunk still being worked on is waiting (e.g. CENTRAL_UNREACHABLE)')),
});

/** What an answer said, in short: for reconciliation items and rechecks. */
const outcomeSummary = Type.Object({
  source: StringEnum(['central', 'cache', 'none'], { description: 'none: the counter was told nothing was known' }),
  status: opt(StringEnum(['1', '2'])),
  validity: opt(str()),
  validityLabel: opt(str()),
  resultCode: opt(str()),
  refusedCode: opt(str('central refused the card on re-verification (e.g. CERT_REVOKED)')),
  name: opt(str()),
  nameKana: opt(str('カナ氏名')),
  birthdate: opt(str()),
  insurances: Type.Array(
    Type.Partial(
      Type.Object({
        insurerNumber: str(),
        insurerName: str(),
        symbol: str(),
        number: str(),
        branch: str(),
        ratio: str('一部負担金割合'),
        elderlyRatio: str('高齢受給者証 負担割合'),
        limitClass: str('限度額適用区分'),
        disqualificationDate: str(),
      }),
    ),
  ),
});

/** An outage answer that central, asked again, answered differently: both answers, for staff. */
const reconciliationItem = Type.Object({
  id: int(),
  outboxId: int(),
  changedFields: Type.Array(str()),
  createdAt: str(),
  handledAt: opt(str()),
  before: Type.Object(
    { checkedAt: opt(str()), told: opt(outcomeSummary) },
    { description: 'what the counter was told, and when' },
  ),
  after: outcomeSummary,
});

/** One entry of a batch: pending, answered (its result) or error (why there is none). */
export const BATCH_ENTRY_RESULT_SCHEMA = Type.Object({
  index: int("the entry's place in the batch"),
  arbitraryId: str(),
  state: StringEnum(['pending', 'answered', 'error']),
  result: opt(
    Type.Intersect(
      [
        INQUIRY_RESULT_SCHEMA,
        Type.Object({
          referenceNumber: opt(str('照会番号')),
          limitChanged: opt(StringEnum(['0', '1'], { description: '限度額適用認定証 changed' })),
        }),
      ],
      { description: 'answered: what central said about this entry (status 2 is a per-person error)' },
    ),
  ),
  error: opt(ERROR_BODY_SCHEMA),
});
export type BatchEntryResultWire = Static<typeof BATCH_ENTRY_RESULT_SCHEMA>;

const recheckView = Type.Object({
  id: str(),
  firstCheckedAt: str(),
  nextAt: opt(str()),
  until: str(),
  attempts: int(),
  state: StringEnum(['scheduled', 'found', 'expired']),
  lastResult: opt(str()),
  client: str(),
  patientRef: opt(str()),
  inquiryId: str(),
  from: StringEnum(['card', 'numbers']),
  firstValidity: str(),
  lastValidity: opt(str()),
  lastError: opt(str()),
  settledAt: opt(str()),
  found: opt(
    Type.Object(
      { ...outcomeSummary.properties },
      { description: 'the answer in which the new eligibility appeared (state found)' },
    ),
  ),
});

/** The answers that end a request, by their type; `error` ends any request. */
export const ANSWER_SCHEMAS = {
  'hello.accepted': answer('hello.accepted', {
    protocol: str("the gateway's protocol version"),
    scopes: Type.Array(StringEnum(SCOPES), { description: 'what this token may do' }),
    limits: Type.Object({
      maxPayloadBytes: int(),
      heartbeatMs: int(),
      eventHighWaterBytes: int(),
      sendHardLimitBytes: int(),
    }),
  }),
  'inquiry.result': answer('inquiry.result', { result: INQUIRY_RESULT_SCHEMA }),
  'pin.accepted': answer('pin.accepted', { inquiryId: str() }),
  cancelled: answer('cancelled', { inquiryId: str() }),
  pong: answer('pong', {}),
  subscribed: answer('subscribed', { topics: topicList }, 'all topics this connection now receives'),
  unsubscribed: answer('unsubscribed', { topics: topicList }, 'the topics still received'),
  status: answer('status', { status: STATUS_SCHEMA }),
  'reconciliation.items': answer('reconciliation.items', {
    items: Type.Array(reconciliationItem),
  }),
  'reconciliation.handled': answer('reconciliation.handled', { itemId: int() }),
  'batch.accepted': answer('batch.accepted', {
    batchId: str(),
    total: int('entries in the batch so far'),
    state: batchState,
    run: StringEnum(['now', 'scheduled']),
  }),
  'batch.status': answer('batch.status', { batch: batchView }),
  'batch.results': answer('batch.results', {
    batchId: str(),
    state: batchState,
    total: int(),
    from: int(),
    results: Type.Array(BATCH_ENTRY_RESULT_SCHEMA),
    next: opt(int('the from of the next page; absent on the last page')),
  }),
  'rechecks.items': answer('rechecks.items', { items: Type.Array(recheckView) }),
  'rechecks.ran': answer('rechecks.ran', {
    checked: int(),
    found: int(),
    expired: int(),
    failed: int(),
    stillWaiting: int(),
  }),
  error: Type.Object({
    type: Type.Literal('error'),
    id: Type.Union([Type.String(), Type.Null()], { description: 'null when the frame had no usable id' }),
    error: ERROR_BODY_SCHEMA,
  }),
};
export type AnswerType = keyof typeof ANSWER_SCHEMAS;
export type Answer<A extends AnswerType> = Static<(typeof ANSWER_SCHEMAS)[A]>;
export type ErrorAnswer = Answer<'error'>;

/** Answers that end a request; anything else with the same id is a progress message. */
export const FINAL_TYPES = Object.keys(ANSWER_SCHEMAS) as AnswerType[];

/** The answer each request gets when it succeeds (otherwise `error`). */
export const ANSWERS_OF = {
  hello: 'hello.accepted',
  'inquiry.numbers': 'inquiry.result',
  'inquiry.card': 'inquiry.result',
  'pin.submit': 'pin.accepted',
  'inquiry.cancel': 'cancelled',
  ping: 'pong',
  subscribe: 'subscribed',
  unsubscribe: 'unsubscribed',
  status: 'status',
  'batch.submit': 'batch.accepted',
  'batch.status': 'batch.status',
  'batch.results': 'batch.results',
  'reconciliation.list': 'reconciliation.items',
  'reconciliation.handle': 'reconciliation.handled',
  'rechecks.list': 'rechecks.items',
  'rechecks.run': 'rechecks.ran',
} as const satisfies Record<RequestType, Exclude<AnswerType, 'error'>>;

/** The answer a request of type T resolves with. */
export type AnswerOf<T extends RequestType> = Answer<(typeof ANSWERS_OF)[T]>;
/** What a handler returns: the answer without the id (the server adds the request's). */
export type AnswerBodyOf<T extends RequestType> = OmitEach<AnswerOf<T>, 'id'>;

/** Progress messages of a request in flight: they carry its id and come before its answer. */
export const PROGRESS_SCHEMAS = {
  'inquiry.progress': answer('inquiry.progress', {
    stage: StringEnum(['waiting_for_card', 'card_inserted', 'certificate_read', 'checking', 'checking_offline']),
    warnings: opt(Type.Array(str())),
    cause: opt(str()),
  }),
  'pin.required': answer(
    'pin.required',
    { triesLeft: int(), confirmRequired: Type.Boolean() },
    'send pin.submit with the PIN the patient typed',
  ),
  'pin.wrong': answer('pin.wrong', { triesLeft: int() }),
  'pin.refused': answer('pin.refused', { reason: str(), message: opt(str()) }),
};
export type ProgressType = keyof typeof PROGRESS_SCHEMAS;
export type ProgressMessage = { [P in ProgressType]: Static<(typeof PROGRESS_SCHEMAS)[P]> }[ProgressType];

export const WELCOME_SCHEMA = Type.Object(
  {
    type: Type.Literal('welcome'),
    protocol: str(),
    client: Type.Object({ id: str(), name: str(), scopes: scopeList }),
  },
  { description: 'sent once, right after the upgrade' },
);
export type Welcome = Static<typeof WELCOME_SCHEMA>;

/** One request type's handler: gets the validated request, resolves with its answer (or throws an OnshiError). */
export type Handler<T extends RequestType, Ctx> = (req: ParsedRequest<T>, ctx: Ctx) => Promise<AnswerBodyOf<T>>;
/** The server's handler table, for the request types `T` it routes (all by default). */
export type Handlers<Ctx, T extends RequestType = RequestType> = { [K in T]: Handler<K, Ctx> };
