/**
 * The AsyncAPI 3 document of the WebSocket API, built from the one definition of every message:
 * the requests (REQUEST_SCHEMAS), the answers (ANSWER_SCHEMAS, and which request gets which:
 * ANSWERS_OF), progress messages, `welcome`, the event topics and their names, and the scopes.
 * `npm run docs` writes it to docs/asyncapi.json; a test keeps the file equal to this and
 * validates it with @asyncapi/parser, so the contract cannot drift from the code.
 */
import {
  ANSWER_SCHEMAS,
  ANSWERS_OF,
  FINAL_TYPES,
  PROGRESS_SCHEMAS,
  PROTOCOL_VERSION,
  REQUEST_SCHEMAS,
  type RequestType,
  WELCOME_SCHEMA,
} from './schema.js';
import { EVENT_TOPICS, eventSchema } from './events.js';
import { SCOPE_DESCRIPTIONS, SCOPES, scopesForRequest, scopesForTopic } from './scopes.js';

type Schema = object;

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
  // The very schema objects the server validates with (TypeBox's symbol-keyed marks vanish in JSON).
  for (const [type, schema] of Object.entries(REQUEST_SCHEMAS)) out[type] = schema;
  for (const type of FINAL_TYPES) out[answerName(type)] = ANSWER_SCHEMAS[type];
  Object.assign(out, PROGRESS_SCHEMAS);
  out.welcome = WELCOME_SCHEMA;
  for (const topic of EVENT_TOPICS) out[`event.${topic}`] = eventSchema(topic);
  return out;
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
  for (const type of Object.keys(REQUEST_SCHEMAS) as RequestType[]) {
    const needed = scopesForRequest(type);
    operations[type] = {
      action: 'receive',
      channel: { $ref: '#/channels/api' },
      summary: `request ${type}`,
      description: `${scopeNote(needed.length === SCOPES.length ? ['any'] : needed)} Exactly one answer with the request's id.${type === 'inquiry.card' ? ' Progress events with the same id come first.' : ''}`,
      messages: [ref(type)],
      reply: {
        channel: { $ref: '#/channels/api' },
        messages: [ANSWERS_OF[type], 'error'].map((a) => ref(answerName(a))),
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
        'The local API receipt computers use for the online qualification check. Generated from src/protocol/ (requests.ts, answers.ts, events.ts) by `npm run docs`; docs/api.md has a worked example of every message.',
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
