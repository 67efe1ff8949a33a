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
