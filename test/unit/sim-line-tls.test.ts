import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { FaultProxy } from '../../src/sim/line/index.js';

// A throwaway self-signed certificate, used as server certificate, client certificate and CA.
const dir = t.testdir(); // the file's folder: one certificate for every test
execFileSync(
  'openssl',
  [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-days',
    '1',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ],
  { stdio: 'ignore' },
);
const key = readFileSync(join(dir, 'key.pem'));
const cert = readFileSync(join(dir, 'cert.pem'));
const mtls = { key, cert, ca: cert };

/** Mutual-TLS HTTPS server, like the central simulator: GET /echo-peer answers with the client's CN. */
const server = https.createServer({ ...mtls, requestCert: true, rejectUnauthorized: true }, (req, res) => {
  const sock = req.socket as tls.TLSSocket;
  const peer = sock.getPeerCertificate();
  const body = JSON.stringify({ authorized: sock.authorized, cn: peer.subject?.CN, path: req.url });
  res.writeHead(200, { 'content-type': 'application/json' }).end(body);
});
// Raw TLS echo for byte-level checks.
const echo = tls.createServer({ ...mtls, requestCert: true, rejectUnauthorized: true }, (s) => {
  s.on('error', () => {});
  s.pipe(s);
});
server.on('tlsClientError', () => {});
echo.on('tlsClientError', () => {});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
t.teardown(() => {
  server.closeAllConnections();
  server.close();
  echo.close();
});
const httpsPort = (server.address() as AddressInfo).port;
const echoPort = (echo.address() as AddressInfo).port;

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, servername: 'localhost', agent: false, ...mtls },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function tlsConnect(port: number): Promise<{ sock: tls.TLSSocket; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...mtls }, () =>
      resolve({ sock, ms: performance.now() - t0 }),
    );
    sock.on('error', reject);
  });
}

async function echoThrough(sock: tls.TLSSocket, payload: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    sock.on('data', (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= payload.length) resolve(Buffer.concat(parts));
    });
    sock.on('error', reject);
    sock.write(payload);
  });
}

t.test('HTTPS with mutual TLS passes through the proxy untouched', async (t) => {
  const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: httpsPort });
  t.teardown(() => proxy.close());
  const res = await get(proxy.port, '/echo-peer');
  t.equal(res.status, 200);
  t.same(
    JSON.parse(res.body),
    { authorized: true, cn: 'localhost', path: '/echo-peer' },
    'server verified our client certificate',
  );
  const s = proxy.stats();
  t.ok(s.bytesUp > 500 && s.bytesDown > 500, `bytes counted (${s.bytesUp} up, ${s.bytesDown} down)`);
});

t.test('TLS survives heavy fragmentation', async (t) => {
  const proxy = await FaultProxy.start({
    targetHost: '127.0.0.1',
    targetPort: echoPort,
    mode: { kind: 'fragment', maxChunk: 5 },
  });
  t.teardown(() => proxy.close());
  const { sock } = await tlsConnect(proxy.port);
  t.equal(sock.authorized, true);
  const payload = randomBytes(20_000);
  t.ok((await echoThrough(sock, payload)).equals(payload), 'payload intact');
  sock.destroy();
});

t.test('TLS under latency: the handshake costs at least one round trip', async (t) => {
  const proxy = await FaultProxy.start({
    targetHost: '127.0.0.1',
    targetPort: echoPort,
    mode: { kind: 'latency', ms: 50 },
  });
  t.teardown(() => proxy.close());
  const { sock, ms } = await tlsConnect(proxy.port);
  t.ok(ms >= 100, `handshake ${ms.toFixed(0)} ms >= 100 ms`);
  const payload = Buffer.from('over a slow line');
  t.ok((await echoThrough(sock, payload)).equals(payload));
  sock.destroy();
});

t.test('TLS: reset-after in the middle of the handshake fails the client', async (t) => {
  const proxy = await FaultProxy.start({
    targetHost: '127.0.0.1',
    targetPort: httpsPort,
    mode: { kind: 'reset-after', bytes: 200 },
  });
  t.teardown(() => proxy.close());
  await t.rejects(get(proxy.port, '/'), { code: /^(ECONNRESET|EPROTO)$/ });
  t.equal(proxy.stats().bytesDown, 200);
});
