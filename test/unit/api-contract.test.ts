/**
 * The published contract stays one with the code: docs/asyncapi.json is what the generator makes
 * from the schemas the server validates with, a well-kept AsyncAPI parser accepts it, every
 * request type and topic has a scope rule, an operation and a worked example in docs/api.md.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { asyncApiDocument, asyncApiJson } from '../../src/protocol/asyncapi.js';
import { FINAL_TYPES, REQUEST_SCHEMAS } from '../../src/protocol/schema.js';
import { EVENT_TOPICS } from '../../src/protocol/events.js';
import {
  allows,
  effectiveScopes,
  hasExplicitRule,
  SCOPES,
  scopesForRequest,
  scopesForTopic,
} from '../../src/protocol/scopes.js';

const docFile = new URL('../../docs/asyncapi.json', import.meta.url);
const apiMd = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

t.test('docs/asyncapi.json is generated from the code', async (t) => {
  t.equal(
    readFileSync(docFile, 'utf8'),
    asyncApiJson(),
    'run `npm run docs` after changing api-schema.ts, events.ts or scopes.ts',
  );
});

t.test('the AsyncAPI parser accepts the document without errors or warnings', async (t) => {
  const { document, diagnostics } = await new Parser().parse(readFileSync(docFile, 'utf8'));
  const problems = diagnostics
    .filter((d) => d.severity <= 1)
    .map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
  t.same(problems, [], 'no error or warning diagnostics');
  t.ok(document, 'parsed');
  const ops = document!
    .operations()
    .all()
    .map((o) => o.id());
  for (const type of Object.keys(REQUEST_SCHEMAS)) t.ok(ops.includes(type), `operation for request ${type}`);
  for (const topic of EVENT_TOPICS) t.ok(ops.includes(`event.${topic}`), `operation for topic ${topic}`);
  const hello = document!.operations().get('hello')!;
  t.same(
    hello
      .reply()
      ?.messages()
      .all()
      .map((m) => m.name()),
    ['hello.accepted', 'error'],
    'a request names its answers',
  );
});

t.test('request payloads in the document are the very schemas the server validates with', async (t) => {
  const messages = (asyncApiDocument().components as { messages: Record<string, { payload: unknown }> }).messages;
  for (const [type, schema] of Object.entries(REQUEST_SCHEMAS)) t.equal(messages[type]?.payload, schema, type);
  for (const type of FINAL_TYPES) t.ok(messages[type] ?? messages[`${type}.answer`], `answer ${type} is described`);
});

t.test('scopes: every request type and topic has an explicit rule; unknown ones are full-only', async (t) => {
  for (const type of Object.keys(REQUEST_SCHEMAS))
    t.ok(hasExplicitRule('request', type), `a scope rule covers ${type}`);
  for (const topic of EVENT_TOPICS) t.ok(hasExplicitRule('topic', topic), `a scope rule covers topic ${topic}`);
  t.same(scopesForRequest('something.new'), ['full'], 'fail closed');
  t.same(scopesForTopic('unheard-of'), ['full']);
  t.same(scopesForRequest('batch.submit'), ['full', 'batch'], 'a request type added later under batch. is batch');
  t.same(scopesForTopic('batches'), ['full', 'batch']);
  t.same(scopesForRequest('rechecks.list'), ['full', 'admin-ops']);
  t.same(scopesForRequest('ping'), [...SCOPES], 'ping, hello, status, subscribe: everyone');
  t.notOk(allows(['events:read'], scopesForTopic('reconciliation')), 'a display never gets reconciliation items');
  t.notOk(allows(['events:read'], scopesForTopic('outbox')), 'nor outbox replays (they carry the fresh answer)');
  t.ok(allows(['inquiry', 'batch'], scopesForRequest('batch.submit')));
  t.same(effectiveScopes(undefined), ['full'], 'a token from before scopes is full');
  t.same(effectiveScopes([]), ['full']);
  t.same(effectiveScopes(['batch', 'nonsense']), ['batch'], 'an unknown stored scope grants nothing');
});

t.test('docs/api.md has a worked example of every request and every topic', async (t) => {
  const blocks = [...apiMd.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  for (const type of Object.keys(REQUEST_SCHEMAS)) {
    t.ok(
      blocks.some((b) => b.includes(`"type": "${type}"`)),
      `an example request ${type}`,
    );
  }
  for (const topic of EVENT_TOPICS) {
    t.ok(
      blocks.some((b) => b.includes(`"topic": "${topic}"`)),
      `an example event of topic ${topic}`,
    );
  }
  for (const type of FINAL_TYPES)
    t.ok(
      blocks.some((b) => b.includes(`"type": "${type}"`)),
      `an example answer ${type}`,
    );
});
