// Fuzzing the WebSocket request parser with what a malicious or buggy receipt computer could send.
// Property: parseRequest never throws, answers a bad frame with a known API error code, accepts only
// what the schema allows, never echoes a PIN, and never touches Object.prototype.
import t from 'tap';
import fc from 'fast-check';
import { REQUEST_SCHEMAS, parseRequest, type ParseOutcome } from '../../src/protocol/schema.js';
import { CASE_MS, fuzzParams } from '../helpers/fuzz.js';

const PARSE_CODES = new Set(['BAD_JSON', 'INVALID_MESSAGE', 'UNKNOWN_TYPE']);
const TYPES = Object.keys(REQUEST_SCHEMAS);

function parsed(text: string): ParseOutcome {
  const t0 = performance.now();
  let r: ParseOutcome;
  try {
    r = parseRequest(text);
  } catch (e) {
    throw new Error(`parseRequest threw: ${String(e)}`);
  }
  const ms = performance.now() - t0;
  if (ms > CASE_MS) throw new Error(`case took ${ms.toFixed(0)} ms`);
  if (r.ok) {
    if (!TYPES.includes(r.request.type) || typeof r.request.id !== 'string')
      throw new Error(`accepted a request without a known type and an id: ${text.slice(0, 200)}`);
  } else {
    if (!PARSE_CODES.has(r.error.code)) throw new Error(`unknown code ${r.error.code}`);
    if (typeof r.error.message !== 'string' || r.error.retryable !== false) throw new Error('malformed error body');
    if (r.id !== null && (typeof r.id !== 'string' || r.id.length === 0 || r.id.length > 64))
      throw new Error(`bad echoed id ${String(r.id)}`);
    JSON.stringify(r.error); // must be sendable as is
  }
  return r;
}

const FIELDS = [
  'type',
  'id',
  'query',
  'mode',
  'pin',
  'inquiryId',
  'deadlineMs',
  'confirmationDate',
  'limitConsent',
  'readerName',
  'confirmLastTry',
  'insurerNumber',
  'number',
  'birthdate',
  'symbol',
  'branch',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  '',
];
const value = fc.oneof(
  fc.constantFrom(...TYPES),
  fc.constantFrom('1234', 'pin', 'visual', '19800401', '06139992', '', ' ', '\u0000', '𠮷'),
  fc.string({ maxLength: 80 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.integer({ min: 1, max: 200_000 }).map((n) => 'x'.repeat(n)),
);
const shallow = fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 8 });
const message = fc.oneof(
  shallow,
  fc
    .record({ type: fc.constantFrom(...TYPES), id: fc.string({ maxLength: 70 }) })
    .chain((base) =>
      fc
        .dictionary(fc.constantFrom(...FIELDS), fc.oneof(value, shallow), { maxKeys: 6 })
        .map((extra) => ({ ...base, ...extra })),
    ),
  fc.jsonValue({ maxDepth: 5 }),
);

t.test('arbitrary text', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
      parsed(s);
    }),
    fuzzParams(),
  );
  fc.assert(
    fc.property(fc.json({ maxDepth: 6 }), (s) => {
      parsed(s);
    }),
    fuzzParams(),
  );
  t.pass();
});

t.test('objects close to real requests', async (t) => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(message, (m) => {
      const r = parsed(JSON.stringify(m));
      seen.add(r.ok ? 'ok' : r.error.code);
    }),
    fuzzParams(3),
  );
  // The generator must reach both sides of the validator, or this property proves little.
  t.ok(seen.has('INVALID_MESSAGE') && seen.has('UNKNOWN_TYPE'), [...seen].join(','));
});

t.test('a PIN never comes back in an error', async (t) => {
  const pin = fc.oneof(fc.stringMatching(/^[0-9]{5,8}$/), fc.stringMatching(/^[0-9]{3}[a-z]$/));
  const extra = fc.dictionary(fc.constantFrom('confirmLastTry', 'inquiryId', 'extra', 'id'), value, { maxKeys: 3 });
  fc.assert(
    fc.property(pin, extra, (p, e) => {
      const r = parsed(JSON.stringify({ type: 'pin.submit', id: 'r1', inquiryId: 'q1', ...e, pin: p }));
      return r.ok || !JSON.stringify(r).includes(p);
    }),
    fuzzParams(),
  );
  t.pass();
});

t.test('prototype keys and hostile nesting', async (t) => {
  const hostile = [
    '{"__proto__":{"polluted":1},"type":"ping","id":"a"}',
    '{"type":"ping","id":"a","constructor":{"prototype":{"polluted":1}}}',
    '{"type":"inquiry.numbers","id":"a","query":{"__proto__":{"polluted":1},"insurerNumber":"06139992","number":"1","birthdate":"19800401"}}',
    `{"type":"ping","id":"a","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
    `${'['.repeat(1_000_000)}`,
    '{"type":"hasOwnProperty","id":"a"}',
    '{"type":"toString","id":"a"}',
    '{"type":"__proto__","id":"a"}',
  ];
  for (const h of hostile) t.notOk(parsed(h).ok, h.slice(0, 60));
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype untouched');
});
