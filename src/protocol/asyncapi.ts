/**
 * The AsyncAPI 3 document of the WebSocket API, built from the schemas the server validates with
 * (REQUEST_SCHEMAS), the answer types (FINAL_TYPES), the event topics (EVENT_TOPICS) and the
 * scopes. `npm run docs` writes it to docs/asyncapi.json; a test keeps the file equal to this and
 * validates it with @asyncapi/parser, so the contract cannot drift from the code.
 *
 * Request types, answers and topics added later appear here without editing this file: they get
 * a generic answer/event schema until someone describes them in ANSWER_SCHEMAS / EVENT_NAMES.
 */
import { FINAL_TYPES, PROTOCOL_VERSION, REQUEST_SCHEMAS } from './schema.js';
import { EVENT_TOPICS } from './events.js';
import { SCOPE_DESCRIPTIONS, SCOPES, scopesForRequest, scopesForTopic } from './scopes.js';

type Schema = Record<string, unknown>;

const id = { type: 'string', minLength: 1, maxLength: 64, description: 'the id of the request this answers' };
const obj = (required: string[], properties: Record<string, unknown>, description?: string): Schema => ({
  type: 'object',
  required,
  properties,
  ...(description ? { description } : {}),
});
const answer = (
  type: string,
  properties: Record<string, unknown> = {},
  required: string[] = [],
  description?: string,
): Schema => obj(['type', 'id', ...required], { type: { const: type }, id, ...properties }, description);

const errorBody = obj(['code', 'message', 'retryable'], {
  code: { type: 'string', description: 'what a receipt computer can act on (see docs/api.md, Errors)' },
  message: { type: 'string' },
  retryable: { type: 'boolean', description: 'whether the same request later can succeed' },
  details: { type: 'object', description: 'never personal data' },
});

const topicList = { type: 'array', items: { enum: [...EVENT_TOPICS] } };

/** Answers with more than type and id; the rest get answer(type). */
const ANSWER_SCHEMAS: Record<string, Schema> = {
  'hello.accepted': answer(
    'hello.accepted',
    {
      protocol: { type: 'string', description: "the gateway's protocol version" },
      scopes: { type: 'array', items: { enum: [...SCOPES] }, description: 'what this token may do' },
      limits: obj(['maxPayloadBytes', 'heartbeatMs', 'eventHighWaterBytes', 'sendHardLimitBytes'], {
        maxPayloadBytes: { type: 'integer' },
        heartbeatMs: { type: 'integer' },
        eventHighWaterBytes: { type: 'integer' },
        sendHardLimitBytes: { type: 'integer' },
      }),
    },
    ['protocol', 'scopes', 'limits'],
  ),
  'inquiry.result': answer(
    'inquiry.result',
    {
      result: { type: 'object', description: 'the eligibility answer: source central/cache/none, validity, results…' },
    },
    ['result'],
  ),
  'pin.accepted': answer('pin.accepted', { inquiryId: { type: 'string' } }, ['inquiryId']),
  cancelled: answer('cancelled', { inquiryId: { type: 'string' } }, ['inquiryId']),
  subscribed: answer('subscribed', { topics: topicList }, ['topics'], 'all topics this connection now receives'),
  unsubscribed: answer('unsubscribed', { topics: topicList }, ['topics'], 'the topics still received'),
  status: answer(
    'status',
    { status: { type: 'object', description: 'link, outbox, reconciliation, revocation, retryBudget, alerts, api' } },
    ['status'],
  ),
  'reconciliation.items': answer('reconciliation.items', { items: { type: 'array', items: { type: 'object' } } }, [
    'items',
  ]),
  'reconciliation.handled': answer('reconciliation.handled', { itemId: { type: 'integer' } }, ['itemId']),
  error: obj(['type', 'id', 'error'], {
    type: { const: 'error' },
    id: { type: ['string', 'null'], description: 'null when the frame had no usable id' },
    error: errorBody,
  }),
};

/** Which answers a request can get besides `error`. Unlisted requests: the answers sharing their prefix. */
const ANSWERS_OF: Record<string, string[]> = {
  hello: ['hello.accepted'],
  'inquiry.numbers': ['inquiry.result'],
  'inquiry.card': ['inquiry.result'],
  'pin.submit': ['pin.accepted'],
  'inquiry.cancel': ['cancelled'],
  ping: ['pong'],
  subscribe: ['subscribed'],
  unsubscribe: ['unsubscribed'],
  status: ['status'],
  'reconciliation.list': ['reconciliation.items'],
  'reconciliation.handle': ['reconciliation.handled'],
};

/** Progress events of a request: they carry its id and come before its answer. */
const PROGRESS_SCHEMAS: Record<string, Schema> = {
  'inquiry.progress': answer(
    'inquiry.progress',
    {
      stage: { enum: ['waiting_for_card', 'card_inserted', 'certificate_read', 'checking', 'checking_offline'] },
      warnings: { type: 'array', items: { type: 'string' } },
      cause: { type: 'string' },
    },
    ['stage'],
  ),
  'pin.required': answer(
    'pin.required',
    { triesLeft: { type: 'integer' }, confirmRequired: { type: 'boolean' } },
    ['triesLeft', 'confirmRequired'],
    'send pin.submit with the PIN the patient typed',
  ),
  'pin.wrong': answer('pin.wrong', { triesLeft: { type: 'integer' } }, ['triesLeft']),
  'pin.refused': answer('pin.refused', { reason: { type: 'string' }, message: { type: 'string' } }, ['reason']),
};

/** Known event names per topic (the `event` field). Topics not listed allow any name. */
const EVENT_NAMES: Record<string, string[]> = {
  line: ['line.state'],
  outbox: ['outbox.replayed', 'outbox.dead', 'outbox.drained', 'outbox.alert', 'store.alert'],
  reconciliation: ['reconciliation.added', 'reconciliation.handled'],
  reader: ['reader.state'],
  batches: ['batch.progress', 'batch.results', 'batch.done'],
};

const welcome = obj(
  ['type', 'protocol', 'client'],
  {
    type: { const: 'welcome' },
    protocol: { type: 'string' },
    client: obj(['id', 'name', 'scopes'], {
      id: { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'array', items: { enum: [...SCOPES] } },
    }),
  },
  'sent once, right after the upgrade',
);

function eventSchema(topic: string): Schema {
  const names = EVENT_NAMES[topic];
  return obj(['type', 'topic', 'event', 'at', 'seq', 'data'], {
    type: { const: 'event' },
    topic: { const: topic },
    event: names ? { enum: names } : { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    seq: {
      type: 'integer',
      description: 'increasing per gateway process: a gap means events were missed (or dropped at the high-water mark)',
    },
    data: { type: 'object' },
  });
}

const scopeNote = (needed: string[]): string => `Scopes: ${needed.join(', ')}.`;

/** An answer type that is also a request type (`status`) is named `status.answer` in the document. */
const answerName = (type: string): string => (Object.hasOwn(REQUEST_SCHEMAS, type) ? `${type}.answer` : type);

/** The document's message name for a message the gateway sent. */
export function serverMessageName(msg: { type?: unknown; topic?: unknown }): string {
  if (msg.type === 'event') return `event.${String(msg.topic)}`;
  const type = String(msg.type);
  return (FINAL_TYPES as readonly string[]).includes(type) ? answerName(type) : type;
}

/** The message names (keys) and payload schemas of every message the API carries. */
export function apiMessageSchemas(): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const [type, schema] of Object.entries(REQUEST_SCHEMAS)) out[type] = schema as unknown as Schema;
  for (const type of FINAL_TYPES) out[answerName(type)] = ANSWER_SCHEMAS[type] ?? answer(type);
  Object.assign(out, PROGRESS_SCHEMAS);
  out.welcome = welcome;
  for (const topic of EVENT_TOPICS) out[`event.${topic}`] = eventSchema(topic);
  return out;
}

function answersOf(type: string): string[] {
  const listed = ANSWERS_OF[type];
  if (listed) return listed;
  const prefix = type.includes('.') ? type.slice(0, type.indexOf('.') + 1) : `${type}.`;
  const mapped = new Set(Object.values(ANSWERS_OF).flat());
  return FINAL_TYPES.filter((t) => t !== 'error' && !mapped.has(t) && t.startsWith(prefix));
}

export function asyncApiDocument(): Record<string, unknown> {
  const schemas = apiMessageSchemas();
  const ref = (name: string): { $ref: string } => ({ $ref: `#/channels/api/messages/${name}` });
  const messages: Record<string, unknown> = {};
  for (const name of Object.keys(schemas)) messages[name] = { $ref: `#/components/messages/${name}` };
  const components: Record<string, unknown> = {};
  for (const [name, payload] of Object.entries(schemas)) {
    components[name] = { name, title: name, contentType: 'application/json', payload };
  }
  const operations: Record<string, unknown> = {
    welcome: {
      action: 'send',
      channel: { $ref: '#/channels/api' },
      summary: 'the first message on every connection',
      messages: [ref('welcome')],
    },
  };
  for (const type of Object.keys(REQUEST_SCHEMAS)) {
    const needed = scopesForRequest(type);
    operations[type] = {
      action: 'receive',
      channel: { $ref: '#/channels/api' },
      summary: `request ${type}`,
      description: `${scopeNote(needed.length === SCOPES.length ? ['any'] : needed)} Exactly one answer with the request's id.${type === 'inquiry.card' ? ' Progress events with the same id come first.' : ''}`,
      messages: [ref(type)],
      reply: {
        channel: { $ref: '#/channels/api' },
        messages: [...answersOf(type), 'error'].map((a) => ref(answerName(a))),
      },
    };
  }
  operations.progress = {
    action: 'send',
    channel: { $ref: '#/channels/api' },
    summary: 'progress of a request in flight (same id, before its answer); never dropped',
    messages: Object.keys(PROGRESS_SCHEMAS).map(ref),
  };
  for (const topic of EVENT_TOPICS) {
    operations[`event.${topic}`] = {
      action: 'send',
      channel: { $ref: '#/channels/api' },
      summary: `events of the ${topic} topic, after subscribe`,
      description: `${scopeNote(scopesForTopic(topic))} Dropped (and counted) while the connection has more than 1 MiB unsent, except the current-state events.`,
      messages: [ref(`event.${topic}`)],
    };
  }
  return {
    asyncapi: '3.1.0',
    info: {
      title: 'onshi-gateway WebSocket API',
      version: PROTOCOL_VERSION,
      description: [
        'The local API receipt computers use for the online qualification check. Generated from src/protocol/schema.ts by `npm run docs`; docs/api.md has a worked example of every message.',
        'Every request is a JSON text frame with `type` and `id` and gets exactly one answer with that id. Frames over api.maxPayloadBytes (64 KiB) close the connection with 1009; a client with more than 4 MiB unsent is closed with 1013; a client silent for two heartbeats (30 s) is dropped.',
        `Scopes: ${SCOPES.map((s) => `${s} (${SCOPE_DESCRIPTIONS[s]})`).join('; ')}.`,
      ].join('\n\n'),
    },
    defaultContentType: 'application/json',
    servers: {
      gateway: {
        host: '127.0.0.1:8765',
        protocol: 'ws',
        pathname: '/v1',
        description: 'the gateway on the clinic LAN (wss:// when TLS on the LAN is configured)',
        security: [{ $ref: '#/components/securitySchemes/token' }],
      },
    },
    channels: { api: { address: '/v1', title: 'one WebSocket per receipt computer', messages } },
    operations,
    components: {
      messages: components,
      securitySchemes: {
        token: {
          type: 'httpApiKey',
          name: 'Authorization',
          in: 'header',
          description:
            '`Bearer onshi_…`, from `onshi clients add NAME [--scope …]`; refused with HTTP 401 before any socket exists',
        },
      },
    },
  };
}

export function asyncApiJson(): string {
  return JSON.stringify(asyncApiDocument(), null, 2) + '\n';
}
