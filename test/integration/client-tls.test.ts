/**
 * The client library over wss:// against a real TLS server with the gateway's own kind of
 * certificate (tls-identity): trusted by CA, by certificate fingerprint or by SPKI pin; with a
 * wrong pin the token never leaves the client.
 */
import t from 'tap';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { GatewayClient } from '../../src/client/index.js';
import { loadOrCreateTlsIdentity } from '../../src/ops/tls-identity.js';
import { testdir } from '../helpers/testdir.js';

const dir = testdir(t); // the file's folder: one server identity (and another) for every test
const id = loadOrCreateTlsIdentity({ stateDir: dir, machineName: 'gw-test' });
const other = loadOrCreateTlsIdentity({ stateDir: join(dir, 'other'), machineName: 'gw-other' });

/** Authorization headers the server received: what reached the wire. */
const seenTokens: string[] = [];
const https = createServer({ cert: id.certPem, key: id.keyPem });
const wss = new WebSocketServer({ server: https });
wss.on('headers', (_h, req) => {
  seenTokens.push(String(req.headers.authorization));
});
wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ type: 'welcome', protocol: '1.0', client: { id: 'x', name: 'x', scopes: ['full'] } }));
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as { type: string; id: string };
    if (m.type === 'hello')
      ws.send(
        JSON.stringify({
          type: 'hello.accepted',
          id: m.id,
          protocol: '1.0',
          scopes: ['full'],
          limits: { maxPayloadBytes: 65536, heartbeatMs: 30000, eventHighWaterBytes: 1, sendHardLimitBytes: 4 },
        }),
      );
    if (m.type === 'ping') ws.send(JSON.stringify({ type: 'pong', id: m.id }));
  });
});
await new Promise<void>((r) => https.listen(0, '127.0.0.1', () => r()));
t.teardown(() => {
  wss.close();
  https.close();
});
const url = `wss://127.0.0.1:${(https.address() as AddressInfo).port}/v1`;
const token = 'onshi_00000000_' + 'A'.repeat(43);

t.test('trusted by its certificate fingerprint, as `onshi status` prints it', async (t) => {
  const before = seenTokens.length;
  const c = await GatewayClient.connect(url, token, { fingerprint256: id.fingerprint });
  t.equal((await c.request({ type: 'ping' })).type, 'pong');
  t.equal(seenTokens.length, before + 1);
  t.equal(seenTokens.at(-1), `Bearer ${token}`);
  await c.close();
  const lower = await GatewayClient.connect(url, token, {
    fingerprint256: id.fingerprint.replace(/:/g, '').toLowerCase(),
  });
  await lower.close();
  t.pass('colons and case do not matter');
});

t.test('trusted by SPKI pin (stable across renewals) and by CA', async (t) => {
  const a = await GatewayClient.connect(url, token, { spkiSha256: id.spkiSha256 });
  await a.close();
  const b = await GatewayClient.connect(url, token, { ca: id.certPem });
  await b.close();
  t.pass('both connect');
});

t.test('a wrong pin or an unknown certificate: refused before the token is sent', async (t) => {
  const before = seenTokens.length;
  await t.rejects(GatewayClient.connect(url, token, { fingerprint256: other.fingerprint }), {
    code: 'CLIENT_PIN_MISMATCH',
    message: /does not match the pinned one/,
  });
  await t.rejects(GatewayClient.connect(url, token, { spkiSha256: other.spkiSha256 }), { code: 'CLIENT_PIN_MISMATCH' });
  await t.rejects(
    GatewayClient.connect(url, token, { ca: other.certPem }),
    { code: 'CLIENT_CONNECT_FAILED' },
    'another CA',
  );
  await t.rejects(
    GatewayClient.connect(url, token),
    { code: 'CLIENT_CONNECT_FAILED' },
    'no CA, no pin: the self-signed certificate is not trusted',
  );
  t.equal(seenTokens.length, before, 'the server never received the token');
});
