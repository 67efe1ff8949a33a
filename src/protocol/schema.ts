/**
 * The WebSocket API's contract: the version, the requests (requests.ts), the answers, progress
 * messages and errors (answers.ts) and the parser the server validates every frame with. Each
 * message is defined once; its JSON Schema, its TypeScript type and docs/asyncapi.json follow from
 * that definition. Every request carries a `type` and an `id` and gets exactly one answer with that
 * id: its answer type (`AnswerOf`), or `error`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { ApiErrorBody } from './answers.js';
import { type ApiRequest, REQUEST_SCHEMAS, type RequestType } from './requests.js';

export * from './requests.js';
export * from './answers.js';

/**
 * MAJOR.MINOR. A minor version only adds (fields, request types, topics, events); a client written
 * for 1.0 works with any 1.x. A different major is refused at `hello`.
 */
export const PROTOCOL_VERSION = '1.0';
export const PROTOCOL_MAJOR = Number(PROTOCOL_VERSION.split('.')[0]);
/** Close code after a refused `hello` (4000–4999 are the application's; 4426 echoes HTTP 426 Upgrade Required). */
export const CLOSE_PROTOCOL_UNSUPPORTED = 4426;

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
