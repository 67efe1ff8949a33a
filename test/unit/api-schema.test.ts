import t from 'tap';
import { parseRequest, REQUEST_SCHEMAS, requestValidator, type RequestType } from '../../src/protocol/schema.js';

const good = {
  type: 'inquiry.numbers',
  id: 'a1',
  query: { insurerNumber: '06139992', number: '1', birthdate: '19800401' },
};

t.test(
  'every request schema compiles (they are compiled at first use, so strict mode would refuse one only then)',
  async (t) => {
    for (const type of Object.keys(REQUEST_SCHEMAS) as RequestType[]) t.type(requestValidator(type), 'function', type);
    t.equal(requestValidator('ping'), requestValidator('ping'), 'compiled once');
  },
);

t.test('a valid request parses, with defaults applied', async (t) => {
  const r = parseRequest(JSON.stringify(good));
  t.ok(r.ok);
  if (r.ok && r.request.type === 'inquiry.numbers') t.equal(r.request.query.limitConsent, false);
});

t.test('each kind of bad frame has its own code and keeps the id when it can', async (t) => {
  t.match(parseRequest('nope'), { ok: false, id: null, error: { code: 'BAD_JSON' } });
  t.match(parseRequest('null'), { ok: false, error: { code: 'INVALID_MESSAGE' } });
  t.match(parseRequest('{"id":"x"}'), { ok: false, id: 'x', error: { code: 'INVALID_MESSAGE', message: /type/ } });
  t.match(parseRequest('{"type":"hack","id":"x"}'), { ok: false, id: 'x', error: { code: 'UNKNOWN_TYPE' } });
  t.match(
    parseRequest('{"type":"__proto__","id":"x"}'),
    { ok: false, error: { code: 'UNKNOWN_TYPE' } },
    'no prototype keys',
  );
  t.match(parseRequest(JSON.stringify({ ...good, id: '' })), {
    ok: false,
    id: null,
    error: { code: 'INVALID_MESSAGE' },
  });
  t.match(parseRequest(JSON.stringify({ ...good, id: 'x'.repeat(65) })), {
    ok: false,
    id: null,
    error: { code: 'INVALID_MESSAGE' },
  });
  t.match(parseRequest(JSON.stringify({ ...good, deadlineMs: 5 })), {
    ok: false,
    error: { code: 'INVALID_MESSAGE', details: { problems: [/deadlineMs/] } },
  });
  t.match(parseRequest(JSON.stringify({ ...good, query: { ...good.query, insurerNumber: '12AB' } })), {
    ok: false,
    error: { details: { problems: [/insurerNumber/] } },
  });
  t.match(parseRequest(JSON.stringify({ ...good, query: { ...good.query, branch: '123' } })), {
    ok: false,
    error: { details: { problems: [/branch/] } },
  });
  t.match(parseRequest(JSON.stringify({ ...good, query: { ...good.query, symbol: 'x'.repeat(21) } })), {
    ok: false,
    error: { details: { problems: [/symbol/] } },
  });
});

t.test('hello: MAJOR.MINOR only; an optional client string', async (t) => {
  t.match(parseRequest('{"type":"hello","id":"h","protocol":"1.0"}'), {
    ok: true,
    request: { type: 'hello', protocol: '1.0' },
  });
  t.match(
    parseRequest('{"type":"hello","id":"h","protocol":"2.13","client":"app 4"}'),
    { ok: true },
    "any major parses: refusing it is the server's job, with a clear error",
  );
  for (const protocol of ['1', 'v1.0', '1.0.0', '', '1.x']) {
    t.match(
      parseRequest(JSON.stringify({ type: 'hello', id: 'h', protocol })),
      { ok: false, error: { code: 'INVALID_MESSAGE', details: { problems: [/protocol/] } } },
      `"${protocol}" refused`,
    );
  }
  t.match(
    parseRequest('{"type":"hello","id":"h"}'),
    { ok: false, error: { code: 'INVALID_MESSAGE' } },
    'protocol is required',
  );
});

t.test('the counter fields: known facts, change of insurer, consent, name target; rechecks requests', async (t) => {
  const r = parseRequest(
    JSON.stringify({
      ...good,
      knownFacts: { birthdate: '1980-04-01', nameKana: 'ﾃｽﾄ', sex: '1' },
      changedInsurer: true,
      consent: { medication: true },
    }),
  );
  t.ok(r.ok);
  if (r.ok && r.request.type === 'inquiry.numbers') {
    t.same(
      r.request.consent,
      { medication: true, healthCheck: false, treatment: false, surgery: false },
      'unset consents default to false',
    );
    t.equal(r.request.nameTarget, 'shift_jis');
    t.equal(r.request.changedInsurer, true);
  }
  const plain = parseRequest(JSON.stringify(good));
  if (plain.ok && plain.request.type === 'inquiry.numbers') t.equal(plain.request.changedInsurer, false);
  const card = parseRequest(
    JSON.stringify({
      type: 'inquiry.card',
      id: 'c',
      mode: 'pin',
      knownFacts: { sex: '2' },
      consent: { surgery: true },
      nameTarget: 'cp932',
    }),
  );
  t.ok(card.ok, 'the same fields on inquiry.card');
  t.match(parseRequest(JSON.stringify({ ...good, knownFacts: { sex: '9' } })), {
    ok: false,
    error: { details: { problems: [/knownFacts\/sex/] } },
  });
  t.match(parseRequest(JSON.stringify({ ...good, knownFacts: { birthdate: '1980-4-1' } })), {
    ok: false,
    error: { details: { problems: [/knownFacts\/birthdate/] } },
  });
  t.match(parseRequest(JSON.stringify({ ...good, consent: { everything: true } })), {
    ok: false,
    error: { message: /unknown field "everything"/ },
  });
  t.match(parseRequest(JSON.stringify({ ...good, nameTarget: 'utf8' })), {
    ok: false,
    error: { details: { problems: [/nameTarget/] } },
  });
  t.match(parseRequest(JSON.stringify({ type: 'rechecks.list', id: 'l', state: 'found' })), {
    ok: true,
    request: { limit: 200 },
  });
  t.match(parseRequest(JSON.stringify({ type: 'rechecks.list', id: 'l', state: 'gone' })), { ok: false });
  t.match(parseRequest(JSON.stringify({ type: 'rechecks.run', id: 'r' })), { ok: true });
  t.match(
    parseRequest(JSON.stringify({ type: 'rechecks.run', id: 'r', now: 1 })),
    { ok: false },
    "no way to move the job's clock",
  );
});
