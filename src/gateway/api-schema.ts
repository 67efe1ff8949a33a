/**
 * The WebSocket API's message schemas: the one source the server validates with (and that the
 * published contract in docs/api.md describes). Every request carries a `type` and an `id` and gets
 * exactly one answer with that id: its result type, or `error`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

export const PROTOCOL_VERSION = '1.0';

const requestId = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' } as const;
const deadlineMs = { type: 'integer', minimum: 100, maximum: 300000, description: 'answer within this many ms (default from config)' } as const;
const yyyymmdd = { type: 'string', pattern: '^[0-9]{8}$' } as const;

export const NUMBERS_QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['insurerNumber', 'number', 'birthdate'],
  properties: {
    insurerNumber: { type: 'string', pattern: '^ *[0-9]{6}([0-9]{2})?$', description: '保険者番号, 6 or 8 digits (spaces allowed before)' },
    symbol: { type: 'string', maxLength: 20, description: '被保険者証記号 as printed; omit when the card has none' },
    number: { type: 'string', minLength: 1, maxLength: 20, description: '被保険者証番号' },
    branch: { type: 'string', pattern: '^[0-9]{1,2}$', description: '枝番; omit for 後期高齢者' },
    birthdate: yyyymmdd,
    limitConsent: { type: 'boolean', default: false, description: '限度額適用認定証 提供同意' },
    arbitraryId: { type: 'string', maxLength: 50, description: 'your patient key, echoed by central' },
  },
} as const;

export const REQUEST_SCHEMAS = {
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
    },
  },
  ping: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'id'],
    properties: { type: { const: 'ping' }, id: requestId },
  },
} as const;

export type RequestType = keyof typeof REQUEST_SCHEMAS;

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
  | { type: 'inquiry.numbers'; id: string; deadlineMs?: number; confirmationDate?: string; query: NumbersQueryInput }
  | { type: 'ping'; id: string };

/** Error codes of the API itself (the flows add their own: CENTRAL_*, CARD_*, READER_*, OQS_*). */
export type ApiErrorCode =
  | 'BAD_JSON' | 'INVALID_MESSAGE' | 'UNKNOWN_TYPE' | 'DEADLINE_EXCEEDED' | 'SHUTTING_DOWN' | 'DUPLICATE_ID' | 'INTERNAL';

export interface ApiErrorBody { code: string; message: string; retryable: boolean; details?: Record<string, unknown> }

const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true });
const validators = Object.fromEntries(
  Object.entries(REQUEST_SCHEMAS).map(([type, schema]) => [type, ajv.compile(schema)]),
) as Record<RequestType, ValidateFunction>;

export type ParseOutcome =
  | { ok: true; request: ApiRequest }
  | { ok: false; id: string | null; error: ApiErrorBody };

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
    return { ok: false, id: null, error: { code: 'BAD_JSON', message: 'the message is not valid JSON', retryable: false } };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return { ok: false, id: null, error: { code: 'INVALID_MESSAGE', message: 'a message must be a JSON object with type and id', retryable: false } };
  }
  const rec = msg as Record<string, unknown>;
  const id = typeof rec.id === 'string' && rec.id.length > 0 && rec.id.length <= 64 ? rec.id : null;
  const type: unknown = rec.type;
  if (typeof type !== 'string') {
    return { ok: false, id, error: { code: 'INVALID_MESSAGE', message: 'the message has no string "type"', retryable: false } };
  }
  if (!Object.hasOwn(REQUEST_SCHEMAS, type)) {
    return { ok: false, id, error: { code: 'UNKNOWN_TYPE', message: `unknown message type "${type.slice(0, 64)}"`, retryable: false, details: { known: Object.keys(REQUEST_SCHEMAS) } } };
  }
  const validate = validators[type as RequestType];
  if (!validate(rec)) {
    const problems = (validate.errors ?? []).map(describe);
    return { ok: false, id, error: { code: 'INVALID_MESSAGE', message: `the message does not match the "${type}" schema: ${problems.join('; ')}`, retryable: false, details: { problems } } };
  }
  return { ok: true, request: rec as unknown as ApiRequest };
}
