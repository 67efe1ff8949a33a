/**
 * The central client against the real simulator over mutual TLS: the CA pin, the client
 * certificate, idempotency keys, Retry-After, and hostile answers from central.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CentralSim } from '../../src/sim/central/server.js';
import { CentralClient } from '../../src/sync/central-client.js';
import { createCa, issueCertificate } from '../../src/sim/pki.js';
import { WEB_API_PATHS } from '../../src/oqs/web-api.js';
import { encodeResponseXml, encodeRequestJson } from '../../src/oqs/index.js';
import type { QualificationRequest } from '../../src/oqs/types.js';
import { pkiFiles, sharedPki } from '../helpers/gateway.js';

const files = pkiFiles();
let central: CentralSim;
t.before(async () => {
  central = await CentralSim.start({ pki: await sharedPki() });
});
t.teardown(() => central.close());

const clientFor = (over: Partial<ConstructorParameters<typeof CentralClient>[0]> = {}): CentralClient =>
  new CentralClient({
    url: central.url,
    ca: readFileSync(files.caFile),
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    userId: 'sandbox',
    timeoutMs: 5000,
    ...over,
  });

const REQ: QualificationRequest = {
  confirmationDate: '20250401',
  institutionCode: '1319999994',
  fileId: 'f1',
  query: {
    insurerNumber: '06139992',
    symbol: 'テスト',
    number: '12345',
    branch: '00',
    birthdate: '19800401',
    limitConsent: '0',
  },
};
const soon = (ms = 3000) => ({ deadline: Date.now() + ms });

t.test('a check by numbers over mutual TLS', async (t) => {
  const c = clientFor();
  t.teardown(() => c.close());
  const res = await c.searchByNumbers(REQ, { ...soon(), idempotencyKey: 'k-ok' });
  t.equal(res.body.validity, '1');
  t.equal(res.header.fileId, 'f1', 'the file id is echoed');
  t.equal(res.body.results[0]?.name, 'テスト　太郎');
});

t.test('the central CA is pinned: a server from another CA is refused', async (t) => {
  const otherCa = await createCa({ subject: 'CN=Some Other CA' });
  const c = clientFor({ ca: otherCa.certPem });
  t.teardown(() => c.close());
  await t.rejects(c.searchByNumbers(REQ, soon()), { code: 'CENTRAL_TLS_FAILED', retryable: false });
});

t.test('the hostname is checked', async (t) => {
  const c = clientFor({ servername: 'central.example.invalid' });
  t.teardown(() => c.close());
  await t.rejects(c.searchByNumbers(REQ, soon()), { code: 'CENTRAL_TLS_FAILED' });
});

t.test('TLS 1.2 or later: a central that offers only TLS 1.1 is refused before anything is sent', async (t) => {
  const pki = await sharedPki();
  let requests = 0;
  const start = async (maxVersion: 'TLSv1.1' | 'TLSv1.2') => {
    const server = createHttpsServer(
      {
        key: pki.centralServer.keyPem,
        cert: pki.centralServer.certPem,
        minVersion: 'TLSv1',
        maxVersion,
        ciphers: 'DEFAULT@SECLEVEL=0',
      },
      (_q, res) => {
        requests++;
        res.writeHead(500).end();
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.teardown(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    );
    return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const old = clientFor({ url: await start('TLSv1.1') });
  t.teardown(() => old.close());
  await t.rejects(
    old.searchByNumbers(REQ, soon()),
    { code: 'CENTRAL_TLS_FAILED', retryable: false },
    'refused as a TLS failure, not retried as a line fault',
  );
  t.equal(requests, 0, 'no request (no login, no patient data) crossed the weak connection');
  const current = clientFor({ url: await start('TLSv1.2') });
  t.teardown(() => current.close());
  await t.rejects(
    current.searchByNumbers(REQ, soon()),
    { code: 'CENTRAL_UNAVAILABLE' },
    'the same server at TLS 1.2 is reached (and answers 500)',
  );
  t.equal(requests, 1);
});

t.test('central refuses a gateway without a client certificate, or with one from another CA', async (t) => {
  const pki = await sharedPki();
  const stranger = await issueCertificate({
    ca: await createCa({ subject: 'CN=Rogue CA' }),
    subject: 'CN=rogue',
    usage: 'client',
    notBefore: new Date(Date.now() - 86400_000),
    notAfter: new Date(Date.now() + 86400_000),
  });
  const c = clientFor({ cert: stranger.certPem, key: stranger.keyPem });
  t.teardown(() => c.close());
  const authsBefore = central.stats.auths;
  // An answer instead of a refusal has no code, so the check below fails (and shows the answer).
  const err = await c.searchByNumbers(REQ, soon()).then(
    (answer): { code?: string; details: unknown } => ({ details: answer }),
    (e: unknown) => e as { code: string; details: unknown },
  );
  // Under TLS 1.3 the server's refusal of our certificate arrives after the handshake, as an alert
  // or a bare reset, which the client cannot tell from a line fault: either way, no answer.
  t.ok(
    err.code === 'CENTRAL_TLS_FAILED' || err.code === 'CENTRAL_UNREACHABLE',
    `refused: ${err.code} ${JSON.stringify(err.details)}`,
  );
  t.equal(central.stats.auths, authsBefore, 'the rogue gateway never got a login');
  const noCert = await new Promise<string>((resolve) => {
    const req = request(central.url + WEB_API_PATHS.auth, { method: 'POST', ca: pki.centralCa.certPem }, () =>
      resolve('answered'),
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end('{}');
  });
  t.not(noCert, 'answered', `no client certificate, no answer (${noCert})`);
});

t.test('Idempotency-Key: replay, 409 while in flight, 422 for another payload', async (t) => {
  const c = clientFor();
  t.teardown(() => c.close());
  await c.searchByNumbers(REQ, { ...soon(), idempotencyKey: 'k-replay' });
  const again = await c.searchByNumbers(REQ, { ...soon(), idempotencyKey: 'k-replay' });
  t.equal(again.body.validity, '1', 'the stored answer is replayed');
  t.equal(central.stats.effectsByKey['k-replay'], 1, 'one effect at central');
  t.ok(central.stats.replays >= 1);

  await t.rejects(c.searchByNumbers({ ...REQ, fileId: 'other' }, { ...soon(), idempotencyKey: 'k-replay' }), {
    code: 'CENTRAL_REFUSED',
    retryable: false,
    details: { status: 422 },
  });

  central.updateSettings({ latencyMs: 400 });
  t.teardown(() => central.updateSettings({ latencyMs: 0 }));
  const first = c.searchByNumbers(REQ, { ...soon(), idempotencyKey: 'k-flight' });
  await new Promise((r) => setTimeout(r, 150));
  await t.rejects(
    c.searchByNumbers(REQ, { ...soon(), idempotencyKey: 'k-flight' }),
    { code: 'CENTRAL_IN_FLIGHT', retryable: true },
    '409 while the first is processed',
  );
  t.equal((await first).body.validity, '1', 'the first still completes');
  t.equal(central.stats.effectsByKey['k-flight'], 1, 'never two effects for one key');
  t.equal(
    (await c.searchByNumbers(REQ, { ...soon(), idempotencyKey: 'k-flight' })).body.validity,
    '1',
    'afterwards, a replay',
  );
});

t.test('503 with Retry-After is retryable and carries the delay', async (t) => {
  central.updateSettings({ errorRate: 1, errorStatus: 503, retryAfterSec: 7 });
  t.teardown(() => central.updateSettings({ errorRate: 0 }));
  const c = clientFor();
  t.teardown(() => c.close());
  await t.rejects(c.searchByNumbers(REQ, { ...soon(), idempotencyKey: 'k-503' }), {
    code: 'CENTRAL_UNAVAILABLE',
    retryable: true,
    details: { status: 503, retryAfterMs: 7000 },
  });
  t.equal(central.stats.effectsByKey['k-503'], undefined, 'a refused request left no effect');
});

t.test('a deadline shorter than central latency → CENTRAL_TIMEOUT, on time', async (t) => {
  central.updateSettings({ latencyMs: 2000 });
  t.teardown(() => central.updateSettings({ latencyMs: 0 }));
  const c = clientFor();
  t.teardown(() => c.close());
  await c.probe(soon()).catch(() => {});
  const started = Date.now();
  await t.rejects(c.searchByNumbers(REQ, soon(300)), { code: 'CENTRAL_TIMEOUT', retryable: true });
  t.ok(Date.now() - started < 600, 'gave up at the deadline');
});

t.test('hostile or broken answers from central end in CENTRAL_MALFORMED', async (t) => {
  const valid = encodeResponseXml({
    header: {
      processTime: '20250401093004',
      confirmationDate: '20250401',
      institutionCode: '1319999994',
      referenceClassification: '2',
      segmentOfResult: '1',
      characterCode: '0',
    },
    body: { status: '1', validity: '1', results: [] },
  }).toString('utf8');
  const cases: Record<string, { body: string; contentType: string }> = {
    doctype: {
      contentType: 'application/xml',
      body: '<?xml version="1.0"?><!DOCTYPE XmlMsg [<!ELEMENT XmlMsg ANY>]><XmlMsg/>',
    },
    'entity bomb': {
      contentType: 'application/xml',
      body: '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><XmlMsg>&lol3;</XmlMsg>',
    },
    'external entity': {
      contentType: 'application/xml',
      body: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><XmlMsg>&xxe;</XmlMsg>',
    },
    'truncated XML': { contentType: 'application/xml', body: valid.slice(0, Math.floor(valid.length / 2)) },
    'truncated JSON': { contentType: 'application/json', body: JSON.stringify(encodeRequestJson(REQ)).slice(0, 40) },
    'JSON of the wrong shape': {
      contentType: 'application/json',
      body: '{"XmlMsg":{"MessageHeader":{},"MessageBody":{}}}',
    },
  };
  const c = clientFor();
  t.teardown(() => c.close());
  for (const [name, { body, contentType }] of Object.entries(cases)) {
    await fetch(central.controlUrl + '/control/responses', {
      method: 'POST',
      body: JSON.stringify({ status: 200, contentType, body }),
    });
    await t.rejects(c.searchByNumbers(REQ, soon()), { code: 'CENTRAL_MALFORMED' }, name);
  }
  const ok = await c.searchByNumbers(REQ, soon());
  t.equal(ok.body.validity, '1', 'the client still works afterwards');
  t.ok(valid.includes('<XmlMsg>'), 'the XML case started from a valid message');
});

t.test('an expired login token is renewed once, transparently', async (t) => {
  const c = clientFor();
  t.teardown(() => c.close());
  await c.searchByNumbers(REQ, soon());
  const authsBefore = central.stats.auths;
  (central as unknown as { tokens: Map<string, number> }).tokens.clear();
  const res = await c.searchByNumbers(REQ, soon());
  t.equal(res.body.validity, '1');
  t.equal(central.stats.auths, authsBefore + 1, 'one new login');
});
