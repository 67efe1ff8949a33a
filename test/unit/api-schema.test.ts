import t from 'tap';
import { parseRequest } from '../../src/gateway/api-schema.js';

const good = { type: 'inquiry.numbers', id: 'a1', query: { insurerNumber: '06139992', number: '1', birthdate: '19800401' } };

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
  t.match(parseRequest('{"type":"__proto__","id":"x"}'), { ok: false, error: { code: 'UNKNOWN_TYPE' } }, 'no prototype keys');
  t.match(parseRequest(JSON.stringify({ ...good, id: '' })), { ok: false, id: null, error: { code: 'INVALID_MESSAGE' } });
  t.match(parseRequest(JSON.stringify({ ...good, id: 'x'.repeat(65) })), { ok: false, id: null, error: { code: 'INVALID_MESSAGE' } });
  t.match(parseRequest(JSON.stringify({ ...good, deadlineMs: 5 })), { ok: false, error: { code: 'INVALID_MESSAGE', details: { problems: [/deadlineMs/] } } });
  t.match(parseRequest(JSON.stringify({ ...good, query: { ...good.query, insurerNumber: '12AB' } })), { ok: false, error: { details: { problems: [/insurerNumber/] } } });
  t.match(parseRequest(JSON.stringify({ ...good, query: { ...good.query, branch: '123' } })), { ok: false, error: { details: { problems: [/branch/] } } });
  t.match(parseRequest(JSON.stringify({ ...good, query: { ...good.query, symbol: 'x'.repeat(21) } })), { ok: false, error: { details: { problems: [/symbol/] } } });
});

t.test('hello: MAJOR.MINOR only; an optional client string', async (t) => {
  t.match(parseRequest('{"type":"hello","id":"h","protocol":"1.0"}'), { ok: true, request: { type: 'hello', protocol: '1.0' } });
  t.match(parseRequest('{"type":"hello","id":"h","protocol":"2.13","client":"app 4"}'), { ok: true }, 'any major parses: refusing it is the server\'s job, with a clear error');
  for (const protocol of ['1', 'v1.0', '1.0.0', '', '1.x']) {
    t.match(parseRequest(JSON.stringify({ type: 'hello', id: 'h', protocol })), { ok: false, error: { code: 'INVALID_MESSAGE', details: { problems: [/protocol/] } } }, `"${protocol}" refused`);
  }
  t.match(parseRequest('{"type":"hello","id":"h"}'), { ok: false, error: { code: 'INVALID_MESSAGE' } }, 'protocol is required');
});
