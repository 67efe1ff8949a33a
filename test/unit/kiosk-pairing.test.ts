// Pairing a kiosk: a one-time code, valid minutes, used once; the token it yields has the scope
// kiosk alone, bound to one reader, and opens nothing on the WebSocket API.
import t from 'tap';
import { ClientStore } from '../../src/api/tokens.js';
import { isOnshiError } from '../../src/core/errors.js';
import { KioskPairing, PAIRING_TTL_MS } from '../../src/kiosk/pairing.js';
import { EVENT_TOPICS } from '../../src/protocol/events.js';
import { REQUEST_SCHEMAS } from '../../src/protocol/requests.js';
import { allows, effectiveScopes, scopesForRequest, scopesForTopic } from '../../src/protocol/scopes.js';

const code = (e: unknown): string | undefined => (isOnshiError(e) ? e.code : undefined);

t.test('a code pairs once, within its time, and binds the token to its reader', async (t) => {
  let now = 1_000_000;
  const clients = new ClientStore(t.testdir());
  const p = new KioskPairing(clients, () => now);
  const { code: c } = p.issue('Virtual PCD 00 00', 'counter tablet');
  t.match(c, /^\d{8}$/);
  const { client, token } = p.redeem(c);
  t.same(client.scopes, ['kiosk']);
  t.equal(client.reader, 'Virtual PCD 00 00');
  t.equal(clients.authenticateKiosk(token)?.id, client.id);
  t.equal(clients.authenticateKiosk(token, 'Virtual PCD 00 00')?.id, client.id, 'its own reader');
  t.equal(clients.authenticateKiosk(token, 'Virtual PCD 00 01'), undefined, 'refused on a different reader');
  t.throws(() => p.redeem(c), { code: 'KIOSK_CODE_INVALID' }, 'single use');
  const late = p.issue('Virtual PCD 00 00', 'late');
  now += PAIRING_TTL_MS;
  t.throws(() => p.redeem(late.code), { code: 'KIOSK_CODE_INVALID' }, 'expired');
});

t.test('wrong codes void every outstanding code', async (t) => {
  const p = new KioskPairing(new ClientStore(t.testdir()));
  const { code: c } = p.issue('r', 'k');
  const wrong = c === '00000000' ? '00000001' : '00000000';
  for (let i = 0; i < 5; i++) t.throws(() => p.redeem(wrong));
  let err: unknown;
  try {
    p.redeem(c);
  } catch (e) {
    err = e;
  }
  t.equal(code(err), 'KIOSK_PAIRING_LOCKED', 'the right code no longer works');
});

t.test('a non-kiosk token is no kiosk token; a kiosk token must be bound', async (t) => {
  const clients = new ClientStore(t.testdir());
  const { token } = clients.add('receipt', ['inquiry']);
  t.equal(clients.authenticateKiosk(token), undefined);
  t.throws(() => clients.add('k', ['kiosk']), { code: 'CLIENT_READER_INVALID' });
  t.throws(() => clients.add('k', ['kiosk', 'inquiry'], { reader: 'r' }), { code: 'CLIENT_READER_INVALID' });
  t.throws(() => clients.add('k', ['full'], { reader: 'r' }), { code: 'CLIENT_READER_INVALID' });
});

t.test('the kiosk scope is refused for every API request type and every topic', async (t) => {
  const kiosk = effectiveScopes(['kiosk']);
  const types = Object.keys(REQUEST_SCHEMAS);
  t.ok(types.includes('inquiry.card') && types.includes('pin.submit') && types.includes('status'));
  t.same(
    types.filter((type) => allows(kiosk, scopesForRequest(type))),
    [],
    'no request type',
  );
  t.same(
    EVENT_TOPICS.filter((topic) => allows(kiosk, scopesForTopic(topic))),
    [],
    'no topic',
  );
  t.ok(allows(effectiveScopes(['events:read']), scopesForRequest('status')), 'other scopes keep status');
});
