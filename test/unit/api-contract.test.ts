/**
 * The published contract stays one with the code: docs/asyncapi.json is what the generator makes
 * from the schemas the server validates with, a well-kept AsyncAPI parser accepts it, every
 * request type and topic has a scope rule, an operation and a worked example in docs/api.md.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { Ajv } from 'ajv';
import { asyncApiDocument, asyncApiJson } from '../../src/protocol/asyncapi.js';
import {
  type Answer,
  ANSWER_SCHEMAS,
  ANSWERS_OF,
  type BatchEntryResultWire,
  type CheckContextInput,
  FINAL_TYPES,
  type Handlers,
  REQUEST_SCHEMAS,
} from '../../src/protocol/schema.js';
import { EVENT_NAMES, EVENT_TOPICS, type EventTopic } from '../../src/protocol/events.js';
import type { InquiryResultWire } from '../../src/protocol/inquiry-result.js';
import type { StatusWire } from '../../src/protocol/status.js';
import { type CheckContext, type InquiryResult, toInquiryResult, withAdvice } from '../../src/checks/result.js';
import type { BatchEntryResult } from '../../src/checks/batch-runner.js';
import type { RecheckView, RunSummary } from '../../src/checks/rechecks.js';
import type { DaemonStatus } from '../../src/ops/status.js';
import type { QualificationResult } from '../../src/oqs/types.js';
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
  t.same(
    scopesForRequest('ping'),
    SCOPES.filter((s) => s !== 'kiosk'),
    'ping, hello, status, subscribe: every scope but the kiosk (closed to the whole API)',
  );
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

// ---------------------------------------------------------------------------------------------
// One definition: the wire types the API owns are the types the code below it produces.

/** Whether A and B are assignable both ways (what "the same type" means for a value on the wire). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Whether what the code produces (A) fits what the contract promises (B). */
type Fits<A, B> = [A] extends [B] ? true : false;

// Compile-time: a field added to or changed in one of these without the other fails `tsc`.
const sameTypes = {
  inquiryResult: true satisfies Same<InquiryResult, InquiryResultWire>,
  batchEntryResult: true satisfies Fits<BatchEntryResult, BatchEntryResultWire>,
  status: true satisfies Fits<DaemonStatus, StatusWire>,
  recheckView: true satisfies Fits<RecheckView, Answer<'rechecks.items'>['items'][number]>,
  rechecksRan: true satisfies Fits<RunSummary, Omit<Answer<'rechecks.ran'>, 'type' | 'id'>>,
  checkContext: true satisfies Fits<CheckContextInput, CheckContext>,
};

const strictAjv = new Ajv({ strict: false, allErrors: true });

t.test('a real check answer, with its advice, matches the inquiry.result schema; a wrong one does not', async (t) => {
  t.ok(Object.values(sameTypes).every(Boolean));
  const validate = strictAjv.compile(ANSWER_SCHEMAS['inquiry.result']);
  const person: QualificationResult = {
    cardClassification: '01',
    insurerNumber: '06279996',
    number: '1',
    name: '髙橋　一郎',
    nameKana: 'ﾀｶﾊｼ ｲﾁﾛｳ',
    sex1: '1',
    birthdate: '19530909',
    insurerName: 'テスト健康保険組合',
    consents: { PharmacistsInfo: { flag: '1' } },
  };
  const central = toInquiryResult({
    header: {
      processTime: '20261201090000',
      confirmationDate: '20261201',
      institutionCode: '1319999996',
      referenceClassification: '2',
      segmentOfResult: '1',
      characterCode: '0',
    },
    body: { status: '1', validity: '1', results: [person, { ...person, birthdate: '19600101' }] },
  });
  const advised = withAdvice(
    central,
    { knownFacts: { birthdate: '19530909' }, consent: { medication: true }, nameTarget: 'shift_jis' },
    ['limit'],
  );
  t.ok(advised.nameFallback && advised.multipleMatches, 'the advice fields are there to check');
  const answer = { type: 'inquiry.result', id: 'r1', result: advised };
  t.ok(validate(answer), JSON.stringify(validate.errors));
  t.notOk(validate({ ...answer, result: { ...advised, source: 'guess' } }), 'a source the contract does not know');
  t.notOk(validate({ ...answer, result: { ...advised, warnings: [{ code: 'X' }] } }), 'a warning without its message');
});

t.test('every request has its answer, and every answer but error answers a request', async (t) => {
  t.same(Object.keys(ANSWERS_OF).sort(), Object.keys(REQUEST_SCHEMAS).sort());
  const answered = new Set<string>(Object.values(ANSWERS_OF));
  t.same(
    FINAL_TYPES.filter((a) => !answered.has(a)),
    ['error'],
  );
});

t.test('every event the code publishes is named in its topic', async (t) => {
  const src = new URL('../../src/', import.meta.url);
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  const published: [string, string, string][] = [];
  for (const f of files) {
    const text = readFileSync(new URL(f, src), 'utf8');
    for (const m of text.matchAll(/\.publish\(\s*'([a-z]+)',\s*'([a-z.]+)'/g)) published.push([f, m[1]!, m[2]!]);
  }
  t.ok(published.length >= 15, `${published.length} publish calls found`);
  for (const [f, topic, name] of published)
    t.ok(
      (EVENT_NAMES[topic as EventTopic] as readonly string[] | undefined)?.includes(name),
      `${f}: ${topic} / ${name}`,
    );
});

t.test('a handler table is typed by request: each handler gets its request and must return its answer', async (t) => {
  interface Ctx {
    clientId: string;
  }
  const handlers: Handlers<Ctx, 'ping' | 'reconciliation.handle' | 'rechecks.list'> = {
    ping: async () => ({ type: 'pong' }),
    'reconciliation.handle': async (req, ctx) => {
      const itemId: number = req.itemId;
      return ctx.clientId ? { type: 'reconciliation.handled', itemId } : { type: 'reconciliation.handled', itemId: 0 };
    },
    // limit has a default, so a handler always has it
    'rechecks.list': async (req) => ({ type: 'rechecks.items', items: [].slice(0, req.limit) }),
  };
  const wrong: Partial<Handlers<Ctx, 'ping'>> = {
    // @ts-expect-error ping's answer is pong
    ping: async () => ({ type: 'pin.accepted', inquiryId: 'x' }),
  };
  t.same(await handlers.ping({ type: 'ping', id: 'p' }, { clientId: 'c' }), { type: 'pong' });
  t.same(
    await handlers['reconciliation.handle']({ type: 'reconciliation.handle', id: 'h', itemId: 3 }, { clientId: 'c' }),
    {
      type: 'reconciliation.handled',
      itemId: 3,
    },
  );
  t.ok(wrong.ping);
});
