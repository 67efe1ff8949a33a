/**
 * The WebSocket API's message schemas: the one source the server validates with (and that the
 * published contract in docs/api.md describes). Every request carries a `type` and an `id` and gets
 * exactly one answer with that id: its result type, or `error`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { EVENT_TOPICS, type EventTopic } from './events.js';

/**
 * MAJOR.MINOR. A minor version only adds (fields, request types, topics, events); a client written
 * for 1.0 works with any 1.x. A different major is refused at `hello`.
 */
export const PROTOCOL_VERSION = '1.0';
export const PROTOCOL_MAJOR = Number(PROTOCOL_VERSION.split('.')[0]);
/** Close code after a refused `hello` (4000–4999 are the application's; 4426 echoes HTTP 426 Upgrade Required). */
export const CLOSE_PROTOCOL_UNSUPPORTED = 4426;

const requestId = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' } as const;
const deadlineMs = {
  type: 'integer',
  minimum: 100,
  maximum: 300000,
  description: 'answer within this many ms (default from config)',
} as const;
const yyyymmdd = { type: 'string', pattern: '^[0-9]{8}$' } as const;

function topicsRequest<T extends string>(type: T, description: string) {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'topics'],
    properties: {
      type: { const: type },
      id: requestId,
      topics: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...EVENT_TOPICS] }, description },
    },
  } as const;
}

/** What a check adds to its question (issue #5): the same fields on inquiry.numbers and inquiry.card. */
const CHECK_CONTEXT_PROPERTIES = {
  knownFacts: {
    type: 'object',
    additionalProperties: false,
    description:
      'what the receipt computer already knows about the patient; a disagreement flags a possible registration error',
    properties: {
      birthdate: { type: 'string', pattern: '^[0-9]{4}[-/]?[0-9]{2}[-/]?[0-9]{2}$', description: '生年月日 YYYYMMDD' },
      nameKana: {
        type: 'string',
        minLength: 1,
        maxLength: 100,
        description: 'カナ氏名 (any width, hiragana or katakana, spaces ignored)',
      },
      sex: { enum: ['1', '2', '3'], description: 'OQSCD007: 1 男, 2 女, 3 未設定 (not compared)' },
    },
  },
  changedInsurer: {
    type: 'boolean',
    default: false,
    description:
      'the patient has just changed insurer: a 無効 / 該当資格なし answer is rechecked daily (rechecks.windowDays)',
  },
  consent: {
    type: 'object',
    additionalProperties: false,
    default: {},
    description: "the patient's consents, carried to central on a card check and echoed in result.consent",
    properties: {
      medication: { type: 'boolean', default: false, description: '薬剤情報 閲覧同意' },
      healthCheck: { type: 'boolean', default: false, description: '特定健診情報 閲覧同意' },
      treatment: { type: 'boolean', default: false, description: '診療情報 閲覧同意' },
      surgery: { type: 'boolean', default: false, description: '手術情報 閲覧同意' },
    },
  },
  nameTarget: {
    enum: ['shift_jis', 'cp932'],
    default: 'shift_jis',
    description: 'the character set of result.nameFallback (JIS X 0208 Shift_JIS, or Windows-31J)',
  },
} as const;

export const NUMBERS_QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['insurerNumber', 'number', 'birthdate'],
  properties: {
    insurerNumber: {
      type: 'string',
      pattern: '^ *[0-9]{6}([0-9]{2})?$',
      description: '保険者番号, 6 or 8 digits (spaces allowed before)',
    },
    symbol: { type: 'string', maxLength: 20, description: '被保険者証記号 as printed; omit when the card has none' },
    number: { type: 'string', minLength: 1, maxLength: 20, description: '被保険者証番号' },
    branch: { type: 'string', pattern: '^[0-9]{1,2}$', description: '枝番; omit for 後期高齢者' },
    birthdate: yyyymmdd,
    limitConsent: { type: 'boolean', default: false, description: '限度額適用認定証 提供同意' },
    arbitraryId: { type: 'string', maxLength: 50, description: 'your patient key, echoed by central' },
  },
} as const;

/** The most entries one batch.submit frame may carry (about 150 bytes each: well inside the 64 KiB frame limit). */
export const BATCH_PART_MAX = 300;

const batchId = { type: 'string', pattern: '^[0-9a-f]{16}$', description: 'the id batch.accepted gave' } as const;

/** A batch entry: a check by numbers whose arbitraryId (the patient key, echoed by central) is required and unique in the batch. */
const BATCH_ENTRY_SCHEMA = {
  ...NUMBERS_QUERY_SCHEMA,
  required: [...NUMBERS_QUERY_SCHEMA.required, 'arbitraryId'],
  properties: {
    ...NUMBERS_QUERY_SCHEMA.properties,
    arbitraryId: {
      type: 'string',
      minLength: 1,
      maxLength: 50,
      pattern: '^[^\\x00-\\x1f\\x7f]+$',
      description: 'your patient key, unique in the batch; results are keyed by it',
    },
  },
} as const;

export const REQUEST_SCHEMAS = {
  hello: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'protocol'],
    properties: {
      type: { const: 'hello' },
      id: requestId,
      protocol: {
        type: 'string',
        pattern: '^[0-9]{1,3}\\.[0-9]{1,3}$',
        description:
          'the protocol version the client speaks, MAJOR.MINOR; a major the gateway does not speak is refused with PROTOCOL_UNSUPPORTED',
      },
      client: { type: 'string', maxLength: 100, description: 'the client software and version, for the log' },
    },
  },
  'inquiry.numbers': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'query'],
    properties: {
      type: { const: 'inquiry.numbers' },
      id: requestId,
      deadlineMs,
      confirmationDate: { ...yyyymmdd, description: '資格確認日; default today in Japan' },
      query: NUMBERS_QUERY_SCHEMA,
      ...CHECK_CONTEXT_PROPERTIES,
    },
  },
  'inquiry.card': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'mode'],
    properties: {
      type: { const: 'inquiry.card' },
      id: requestId,
      mode: {
        enum: ['pin', 'visual'],
        description: 'pin: the patient types the PIN; visual: 資格確認限定型, staff confirm the face photo, no PIN',
      },
      deadlineMs: {
        ...deadlineMs,
        description: 'answer within this many ms (default 120000: the patient has to find the card and type the PIN)',
      },
      confirmationDate: { ...yyyymmdd, description: '資格確認日; default today in Japan' },
      limitConsent: { type: 'boolean', default: false, description: '限度額適用認定証 提供同意' },
      readerName: {
        type: 'string',
        maxLength: 200,
        description: 'use this reader (default: the configured one, else the first with a card)',
      },
      ...CHECK_CONTEXT_PROPERTIES,
    },
  },
  'pin.submit': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'inquiryId', 'pin'],
    properties: {
      type: { const: 'pin.submit' },
      id: requestId,
      inquiryId: { ...requestId, description: 'the id of the inquiry.card waiting for this PIN' },
      pin: {
        type: 'string',
        pattern: '^[0-9]{4}$',
        description: 'the 4-digit 利用者証明用 PIN, as typed; used for one VERIFY and then dropped',
      },
      confirmLastTry: { type: 'boolean', default: false, description: 'required when only one try is left' },
    },
  },
  'inquiry.cancel': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'inquiryId'],
    properties: { type: { const: 'inquiry.cancel' }, id: requestId, inquiryId: requestId },
  },
  ping: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id'],
    properties: { type: { const: 'ping' }, id: requestId },
  },
  subscribe: topicsRequest(
    'subscribe',
    'event topics to receive on this connection; the current state of each is sent at once',
  ),
  unsubscribe: topicsRequest('unsubscribe', 'event topics to stop receiving'),
  status: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id'],
    properties: { type: { const: 'status' }, id: requestId },
  },
  'batch.submit': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'entries'],
    properties: {
      type: { const: 'batch.submit' },
      id: requestId,
      batchId: { ...batchId, description: 'add these entries to the open batch with this id (omit on the first part)' },
      confirmationDate: {
        ...yyyymmdd,
        description: '資格確認日 of every entry (e.g. the reservation day); required on the first part',
      },
      run: {
        enum: ['now', 'scheduled'],
        description: 'now (default): start once complete; scheduled: start on the batch.schedule cron. First part only',
      },
      final: {
        type: 'boolean',
        default: true,
        description: 'false: more parts follow (the batch stays open); true: the batch is complete and queued',
      },
      entries: {
        type: 'array',
        minItems: 0,
        maxItems: BATCH_PART_MAX,
        items: BATCH_ENTRY_SCHEMA,
        description: `at most ${BATCH_PART_MAX} per part; send a larger batch in parts`,
      },
    },
  },
  'batch.status': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'batchId'],
    properties: { type: { const: 'batch.status' }, id: requestId, batchId },
  },
  'batch.results': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'batchId'],
    properties: {
      type: { const: 'batch.results' },
      id: requestId,
      batchId,
      from: {
        type: 'integer',
        minimum: 0,
        default: 0,
        description: "first entry index of the page (the previous page's next)",
      },
      limit: {
        type: 'integer',
        minimum: 1,
        maximum: 500,
        default: 100,
        description: 'at most this many entries (fewer when the page would pass the frame limit)',
      },
    },
  },
  'reconciliation.list': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id'],
    properties: {
      type: { const: 'reconciliation.list' },
      id: requestId,
      includeHandled: {
        type: 'boolean',
        default: false,
        description: 'also list the items staff already marked handled',
      },
      limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
    },
  },
  'reconciliation.handle': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id', 'itemId'],
    properties: {
      type: { const: 'reconciliation.handle' },
      id: requestId,
      itemId: { type: 'integer', minimum: 1, description: 'the reconciliation item staff have dealt with' },
    },
  },
  'rechecks.list': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id'],
    properties: {
      type: { const: 'rechecks.list' },
      id: requestId,
      state: { enum: ['scheduled', 'found', 'expired'], description: 'only these; default all, newest first' },
      limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
    },
  },
  'rechecks.run': {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id'],
    properties: { type: { const: 'rechecks.run' }, id: requestId },
  },
} as const;

export type RequestType = keyof typeof REQUEST_SCHEMAS;

export interface CheckContextInput {
  knownFacts?: { birthdate?: string; nameKana?: string; sex?: '1' | '2' | '3' };
  changedInsurer: boolean;
  consent: { medication: boolean; healthCheck: boolean; treatment: boolean; surgery: boolean };
  nameTarget: 'shift_jis' | 'cp932';
}

export interface NumbersQueryInput {
  insurerNumber: string;
  symbol?: string;
  number: string;
  branch?: string;
  birthdate: string;
  limitConsent?: boolean;
  arbitraryId?: string;
}

export type ApiRequest =
  | { type: 'hello'; id: string; protocol: string; client?: string }
  | ({
      type: 'inquiry.numbers';
      id: string;
      deadlineMs?: number;
      confirmationDate?: string;
      query: NumbersQueryInput;
    } & CheckContextInput)
  | ({
      type: 'inquiry.card';
      id: string;
      mode: 'pin' | 'visual';
      deadlineMs?: number;
      confirmationDate?: string;
      limitConsent: boolean;
      readerName?: string;
    } & CheckContextInput)
  | { type: 'pin.submit'; id: string; inquiryId: string; pin: string; confirmLastTry: boolean }
  | { type: 'inquiry.cancel'; id: string; inquiryId: string }
  | { type: 'ping'; id: string }
  | { type: 'subscribe'; id: string; topics: EventTopic[] }
  | { type: 'unsubscribe'; id: string; topics: EventTopic[] }
  | { type: 'status'; id: string }
  | { type: 'reconciliation.list'; id: string; includeHandled: boolean; limit: number }
  | { type: 'reconciliation.handle'; id: string; itemId: number }
  | {
      type: 'batch.submit';
      id: string;
      batchId?: string;
      confirmationDate?: string;
      run?: 'now' | 'scheduled';
      final: boolean;
      entries: Array<NumbersQueryInput & { arbitraryId: string }>;
    }
  | { type: 'batch.status'; id: string; batchId: string }
  | { type: 'batch.results'; id: string; batchId: string; from: number; limit: number }
  | { type: 'rechecks.list'; id: string; state?: 'scheduled' | 'found' | 'expired'; limit: number }
  | { type: 'rechecks.run'; id: string };

/** Answers that end a request; anything else with the same id is a progress event. */
export const FINAL_TYPES = [
  'hello.accepted',
  'inquiry.result',
  'pin.accepted',
  'cancelled',
  'pong',
  'subscribed',
  'unsubscribed',
  'status',
  'reconciliation.items',
  'reconciliation.handled',
  'batch.accepted',
  'batch.status',
  'batch.results',
  'rechecks.items',
  'rechecks.ran',
  'error',
] as const;

/** Default deadlines by request type, when the request names none (ms). */
export const DEFAULT_DEADLINES: Partial<Record<RequestType, number>> = { 'inquiry.card': 120_000 };

/** Error codes of the API itself (the flows add their own: CENTRAL_*, CARD_*, READER_*, OQS_*). */
export type ApiErrorCode =
  | 'BAD_JSON'
  | 'INVALID_MESSAGE'
  | 'UNKNOWN_TYPE'
  | 'DEADLINE_EXCEEDED'
  | 'SHUTTING_DOWN'
  | 'DUPLICATE_ID'
  | 'INTERNAL'
  | 'CANCELLED'
  | 'NOT_FOUND'
  | 'PIN_NOT_EXPECTED'
  | 'READER_DISABLED'
  | 'EVENTS_UNAVAILABLE'
  | 'PIN_INSECURE_CONNECTION'
  | 'PROTOCOL_UNSUPPORTED'
  | 'SCOPE_DENIED';

export interface ApiErrorBody {
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

// Each request type's validator is compiled at its first message, not at import: an idle daemon
// (and every CLI command that imports this module for its types) never uses most of them, and
// compiling all of them at start was the largest single allocation of the daemon's start.
// test/unit/api-schema.test.ts compiles every schema, so a schema strict mode refuses still fails there.
let ajv: Ajv | undefined;
const validators: Partial<Record<RequestType, ValidateFunction>> = {};
export function requestValidator(type: RequestType): ValidateFunction {
  ajv ??= new Ajv({ allErrors: true, strict: true, useDefaults: true });
  validators[type] ??= ajv.compile(REQUEST_SCHEMAS[type]);
  return validators[type];
}

export type ParseOutcome = { ok: true; request: ApiRequest } | { ok: false; id: string | null; error: ApiErrorBody };

const describe = (e: ErrorObject): string =>
  e.keyword === 'additionalProperties'
    ? `${e.instancePath || '/'} has an unknown field "${String((e.params as { additionalProperty: string }).additionalProperty)}"`
    : `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`;

/** Parses and validates one text frame. Never throws. */
export function parseRequest(text: string): ParseOutcome {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return {
      ok: false,
      id: null,
      error: { code: 'BAD_JSON', message: 'the message is not valid JSON', retryable: false },
    };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return {
      ok: false,
      id: null,
      error: { code: 'INVALID_MESSAGE', message: 'a message must be a JSON object with type and id', retryable: false },
    };
  }
  const rec = msg as Record<string, unknown>;
  const id = typeof rec.id === 'string' && rec.id.length > 0 && rec.id.length <= 64 ? rec.id : null;
  const type: unknown = rec.type;
  if (typeof type !== 'string') {
    return {
      ok: false,
      id,
      error: { code: 'INVALID_MESSAGE', message: 'the message has no string "type"', retryable: false },
    };
  }
  if (!Object.hasOwn(REQUEST_SCHEMAS, type)) {
    return {
      ok: false,
      id,
      error: {
        code: 'UNKNOWN_TYPE',
        message: `unknown message type "${type.slice(0, 64)}"`,
        retryable: false,
        details: { known: Object.keys(REQUEST_SCHEMAS) },
      },
    };
  }
  const validate = requestValidator(type as RequestType);
  if (!validate(rec)) {
    const problems = (validate.errors ?? []).map(describe);
    return {
      ok: false,
      id,
      error: {
        code: 'INVALID_MESSAGE',
        message: `the message does not match the "${type}" schema: ${problems.join('; ')}`,
        retryable: false,
        details: { problems },
      },
    };
  }
  return { ok: true, request: rec as unknown as ApiRequest };
}
