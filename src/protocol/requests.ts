/**
 * The requests of the WebSocket API, each written once: the JSON Schema the server validates with
 * and, from it, the type a sender writes (`RequestOf`) and the type a handler gets after validation
 * with defaults filled in (`ParsedRequest`). Every request carries a `type` and an `id`.
 */
import { EVENT_TOPICS } from './events.js';
import {
  Closed,
  Defaulted,
  type OmitEach,
  type Parsed,
  type Static,
  StringEnum,
  type TSchema,
  Type,
} from '../core/schema-kit.js';

const requestId = () => Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' });
const deadlineMs = (description = 'answer within this many ms (default from config)') =>
  Type.Optional(Type.Integer({ minimum: 100, maximum: 300000, description }));
const yyyymmdd = (description?: string) =>
  Type.String({ pattern: '^[0-9]{8}$', ...(description ? { description } : {}) });
const confirmationDate = () => Type.Optional(yyyymmdd('資格確認日; default today in Japan'));
const limit = (maximum: number, value: number) => Defaulted(value, Type.Integer({ minimum: 1, maximum }));
const head = <T extends string>(type: T) => ({ type: Type.Literal(type), id: requestId() });

const topicsRequest = <T extends string>(type: T, description: string) =>
  Closed({
    ...head(type),
    topics: Type.Array(StringEnum(EVENT_TOPICS), { minItems: 1, uniqueItems: true, description }),
  });

const consentFlag = (description: string) => Defaulted(false, Type.Boolean({ description }));

/** What a check adds to its question (issue #5): the same fields on inquiry.numbers and inquiry.card. */
const CHECK_CONTEXT_PROPERTIES = {
  knownFacts: Type.Optional(
    Closed(
      {
        birthdate: Type.Optional(
          Type.String({ pattern: '^[0-9]{4}[-/]?[0-9]{2}[-/]?[0-9]{2}$', description: '生年月日 YYYYMMDD' }),
        ),
        nameKana: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 100,
            description: 'カナ氏名 (any width, hiragana or katakana, spaces ignored)',
          }),
        ),
        sex: Type.Optional(
          StringEnum(['1', '2', '3'], { description: 'OQSCD007: 1 男, 2 女, 3 未設定 (not compared)' }),
        ),
      },
      {
        description:
          'what the receipt computer already knows about the patient; a disagreement flags a possible registration error',
      },
    ),
  ),
  changedInsurer: Defaulted(
    false,
    Type.Boolean({
      description:
        'the patient has just changed insurer: a 無効 / 該当資格なし answer is rechecked daily (rechecks.windowDays)',
    }),
  ),
  consent: Defaulted(
    {},
    Closed(
      {
        medication: consentFlag('薬剤情報 閲覧同意'),
        healthCheck: consentFlag('特定健診情報 閲覧同意'),
        treatment: consentFlag('診療情報 閲覧同意'),
        surgery: consentFlag('手術情報 閲覧同意'),
      },
      { description: "the patient's consents, carried to central on a card check and echoed in result.consent" },
    ),
  ),
  nameTarget: Defaulted(
    'shift_jis',
    StringEnum(['shift_jis', 'cp932'], {
      description: 'the character set of result.nameFallback (JIS X 0208 Shift_JIS, or Windows-31J)',
    }),
  ),
};
const CHECK_CONTEXT_SCHEMA = Closed(CHECK_CONTEXT_PROPERTIES);

const limitConsent = () => consentFlag('限度額適用認定証 提供同意');

const NUMBERS_QUERY_PROPERTIES = {
  insurerNumber: Type.String({
    pattern: '^ *[0-9]{6}([0-9]{2})?$',
    description: '保険者番号, 6 or 8 digits (spaces allowed before)',
  }),
  symbol: Type.Optional(
    Type.String({ maxLength: 20, description: '被保険者証記号 as printed; omit when the card has none' }),
  ),
  number: Type.String({ minLength: 1, maxLength: 20, description: '被保険者証番号' }),
  branch: Type.Optional(Type.String({ pattern: '^[0-9]{1,2}$', description: '枝番; omit for 後期高齢者' })),
  birthdate: yyyymmdd(),
  limitConsent: limitConsent(),
  arbitraryId: Type.Optional(Type.String({ maxLength: 50, description: 'your patient key, echoed by central' })),
};
export const NUMBERS_QUERY_SCHEMA = Closed(NUMBERS_QUERY_PROPERTIES);

/** The most entries one batch.submit frame may carry (about 150 bytes each: well inside the 64 KiB frame limit). */
export const BATCH_PART_MAX = 300;

const batchId = () => Type.String({ pattern: '^[0-9a-f]{16}$', description: 'the id batch.accepted gave' });

/** A batch entry: a check by numbers whose arbitraryId (the patient key, echoed by central) is required and unique in the batch. */
const BATCH_ENTRY_SCHEMA = Closed({
  ...NUMBERS_QUERY_PROPERTIES,
  arbitraryId: Type.String({
    minLength: 1,
    maxLength: 50,
    pattern: '^[^\\x00-\\x1f\\x7f]+$',
    description: 'your patient key, unique in the batch; results are keyed by it',
  }),
});

export const REQUEST_SCHEMAS = {
  hello: Closed({
    ...head('hello'),
    protocol: Type.String({
      pattern: '^[0-9]{1,3}\\.[0-9]{1,3}$',
      description:
        'the protocol version the client speaks, MAJOR.MINOR; a major the gateway does not speak is refused with PROTOCOL_UNSUPPORTED',
    }),
    client: Type.Optional(Type.String({ maxLength: 100, description: 'the client software and version, for the log' })),
  }),
  'inquiry.numbers': Closed({
    ...head('inquiry.numbers'),
    deadlineMs: deadlineMs(),
    confirmationDate: confirmationDate(),
    query: NUMBERS_QUERY_SCHEMA,
    ...CHECK_CONTEXT_PROPERTIES,
  }),
  'inquiry.card': Closed({
    ...head('inquiry.card'),
    mode: StringEnum(['pin', 'visual'], {
      description: 'pin: the patient types the PIN; visual: 資格確認限定型, staff confirm the face photo, no PIN',
    }),
    deadlineMs: deadlineMs(
      'answer within this many ms (default 120000: the patient has to find the card and type the PIN)',
    ),
    confirmationDate: confirmationDate(),
    limitConsent: limitConsent(),
    readerName: Type.Optional(
      Type.String({
        maxLength: 200,
        description: 'use this reader (default: the configured one, else the first with a card)',
      }),
    ),
    ...CHECK_CONTEXT_PROPERTIES,
  }),
  'pin.submit': Closed({
    ...head('pin.submit'),
    inquiryId: Type.String({ ...requestId(), description: 'the id of the inquiry.card waiting for this PIN' }),
    pin: Type.String({
      pattern: '^[0-9]{4}$',
      description: 'the 4-digit 利用者証明用 PIN, as typed; used for one VERIFY and then dropped',
    }),
    confirmLastTry: Defaulted(false, Type.Boolean({ description: 'required when only one try is left' })),
  }),
  'inquiry.cancel': Closed({ ...head('inquiry.cancel'), inquiryId: requestId() }),
  ping: Closed(head('ping')),
  subscribe: topicsRequest(
    'subscribe',
    'event topics to receive on this connection; the current state of each is sent at once',
  ),
  unsubscribe: topicsRequest('unsubscribe', 'event topics to stop receiving'),
  status: Closed(head('status')),
  'batch.submit': Closed({
    ...head('batch.submit'),
    batchId: Type.Optional(
      Type.String({
        ...batchId(),
        description: 'add these entries to the open batch with this id (omit on the first part)',
      }),
    ),
    confirmationDate: Type.Optional(
      yyyymmdd('資格確認日 of every entry (e.g. the reservation day); required on the first part'),
    ),
    run: Type.Optional(
      StringEnum(['now', 'scheduled'], {
        description: 'now (default): start once complete; scheduled: start on the batch.schedule cron. First part only',
      }),
    ),
    final: Defaulted(
      true,
      Type.Boolean({
        description: 'false: more parts follow (the batch stays open); true: the batch is complete and queued',
      }),
    ),
    entries: Type.Array(BATCH_ENTRY_SCHEMA, {
      minItems: 0,
      maxItems: BATCH_PART_MAX,
      description: `at most ${BATCH_PART_MAX} per part; send a larger batch in parts`,
    }),
  }),
  'batch.status': Closed({ ...head('batch.status'), batchId: batchId() }),
  'batch.results': Closed({
    ...head('batch.results'),
    batchId: batchId(),
    from: Defaulted(
      0,
      Type.Integer({ minimum: 0, description: "first entry index of the page (the previous page's next)" }),
    ),
    limit: Defaulted(
      100,
      Type.Integer({
        minimum: 1,
        maximum: 500,
        description: 'at most this many entries (fewer when the page would pass the frame limit)',
      }),
    ),
  }),
  'reconciliation.list': Closed({
    ...head('reconciliation.list'),
    includeHandled: Defaulted(false, Type.Boolean({ description: 'also list the items staff already marked handled' })),
    limit: limit(1000, 200),
  }),
  'reconciliation.handle': Closed({
    ...head('reconciliation.handle'),
    itemId: Type.Integer({ minimum: 1, description: 'the reconciliation item staff have dealt with' }),
  }),
  'rechecks.list': Closed({
    ...head('rechecks.list'),
    state: Type.Optional(
      StringEnum(['scheduled', 'found', 'expired'], { description: 'only these; default all, newest first' }),
    ),
    limit: limit(1000, 200),
  }),
  'rechecks.run': Closed(head('rechecks.run')),
} satisfies Record<string, TSchema>;

export type RequestType = keyof typeof REQUEST_SCHEMAS;

/** A request as a handler gets it: validated, defaults filled in. */
export type ParsedRequest<T extends RequestType> = Parsed<(typeof REQUEST_SCHEMAS)[T]>;
/** Any request as a handler gets it (a union on `type`). */
export type ApiRequest = { [T in RequestType]: ParsedRequest<T> }[RequestType];
/** A request as a client writes it: defaulted fields may be left out, and so may `id` (the client library makes one). */
export type RequestOf<T extends RequestType> = OmitEach<Static<(typeof REQUEST_SCHEMAS)[T]>, 'id'> & { id?: string };
/** Any request as a client writes it. */
export type ClientRequest = { [T in RequestType]: RequestOf<T> }[RequestType];

export type CheckContextInput = Parsed<typeof CHECK_CONTEXT_SCHEMA>;
/** The query of a check by numbers as sent (limitConsent may be left out). */
export type NumbersQueryInput = Static<typeof NUMBERS_QUERY_SCHEMA>;
