/**
 * The client library's connection handling against a scripted WebSocket server (the real gateway
 * is in test/e2e/client-resume.test.ts): a gateway that stops pinging is dropped and reconnected,
 * requests in flight at a drop are rejected and never re-sent, and a refused token or protocol
 * ends the reconnecting. The package as a consumer installs it is in test/e2e/client-package.test.ts.
 */
import t, { type Test } from 'tap';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ANSWER_MARGIN_MS, answerTimeoutMs, GatewayClient } from '../../src/client/index.js';
import { waitFor } from '../helpers/gateway.js';

interface Script {
  heartbeatMs: number;
  refuse401: boolean;
  received: Record<string, unknown>[];
  sockets: WebSocket[];
  answer: boolean;
}

async function fakeGateway(t: Test): Promise<{ url: string; script: Script }> {
  const script: Script = { heartbeatMs: 30_000, refuse401: false, received: [], sockets: [], answer: true };
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    verifyClient: (_info, cb) => (script.refuse401 ? cb(false, 401) : cb(true)),
  });
  wss.on('connection', (ws) => {
    script.sockets.push(ws);
    ws.send(JSON.stringify({ type: 'welcome', protocol: '1.0', client: { id: 'x', name: 'x', scopes: ['full'] } }));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string; id: string; topics?: string[] };
      script.received.push(m);
      if (m.type === 'hello')
        ws.send(
          JSON.stringify({
            type: 'hello.accepted',
            id: m.id,
            protocol: '1.0',
            scopes: ['full'],
            limits: {
              maxPayloadBytes: 65536,
              heartbeatMs: script.heartbeatMs,
              eventHighWaterBytes: 1,
              sendHardLimitBytes: 4,
            },
          }),
        );
      else if (m.type === 'subscribe') ws.send(JSON.stringify({ type: 'subscribed', id: m.id, topics: m.topics }));
      else if (m.type === 'ping' && script.answer) ws.send(JSON.stringify({ type: 'pong', id: m.id }));
    });
  });
  await new Promise((r) => wss.once('listening', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of wss.clients) s.terminate();
        wss.close(() => r());
      }),
  );
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/v1`, script };
}

t.test('a gateway that stops pinging is dropped after 2.5 heartbeats and reconnected', async (t) => {
  const { url, script } = await fakeGateway(t);
  script.heartbeatMs = 200; // the fake never pings
  const c = await GatewayClient.connect(url, 'tok', { reconnect: { baseMs: 50, capMs: 100 } });
  t.teardown(() => c.close());
  await c.subscribe(['line']);
  const closes: number[] = [];
  c.on('close', (code) => closes.push(code));
  await waitFor(() => script.sockets.length >= 2, 'a second connection after the watchdog fired');
  t.equal(closes[0], 1006, 'the silent connection was dropped by the client');
  await c.waitConnected();
  await waitFor(() => script.received.filter((m) => m.type === 'subscribe').length >= 2, 'resubscribed');
  t.same(script.received.filter((m) => m.type === 'subscribe').at(-1)?.topics, ['line']);
});

t.test('requests in flight at a drop reject CLIENT_CLOSED and are not re-sent', async (t) => {
  const { url, script } = await fakeGateway(t);
  const c = await GatewayClient.connect(url, 'tok', { reconnect: { baseMs: 50, capMs: 100 } });
  t.teardown(() => c.close());
  script.answer = false;
  const pending = c.request({ type: 'ping', id: 'p-1' });
  await waitFor(() => script.received.some((m) => m.id === 'p-1'), 'the request reached the gateway');
  script.sockets[0]!.terminate();
  await t.rejects(pending, { code: 'CLIENT_CLOSED', retryable: true, details: { closeCode: 1006 } });
  await c.waitConnected();
  script.answer = true;
  t.equal((await c.request({ type: 'ping' })).type, 'pong', 'new requests work on the new connection');
  t.equal(script.received.filter((m) => m.id === 'p-1').length, 1, 'the lost request was sent once only');
});

t.test('a request the gateway never answers rejects CLIENT_TIMEOUT after its deadline and margin', async (t) => {
  const { url, script } = await fakeGateway(t);
  const c = await GatewayClient.connect(url, 'tok');
  t.teardown(() => c.close());
  script.answer = false;
  const started = Date.now();
  await t.rejects(c.request({ type: 'ping', id: 'p-lost' }, { timeoutMs: 300 }), {
    code: 'CLIENT_TIMEOUT',
    retryable: true,
    details: { type: 'ping', id: 'p-lost', timeoutMs: 300 },
  });
  t.ok(Date.now() - started >= 290, 'not before its timeout');
  // A late answer to the given-up request is dropped; the connection goes on.
  script.sockets[0]!.send(JSON.stringify({ type: 'pong', id: 'p-lost' }));
  script.answer = true;
  t.equal((await c.request({ type: 'ping' })).type, 'pong');
  // The default is the request's own deadline plus the margin, not a fixed wait.
  t.equal(answerTimeoutMs({ type: 'inquiry.numbers', deadlineMs: 2000 }), 2000 + ANSWER_MARGIN_MS);
  t.equal(answerTimeoutMs({ type: 'inquiry.card' }), 120_000 + ANSWER_MARGIN_MS, "the card check's own default");
  t.equal(answerTimeoutMs({ type: 'status' }), 300_000 + ANSWER_MARGIN_MS, 'the longest default the gateway may have');
});

t.test('a token refused at a reconnect ends the reconnecting (no hammering)', async (t) => {
  const { url, script } = await fakeGateway(t);
  const c = await GatewayClient.connect(url, 'tok', { reconnect: { baseMs: 50, capMs: 100 } });
  t.teardown(() => c.close());
  const ended = new Promise<Error & { code?: string }>((r) => c.once('end', r));
  script.refuse401 = true;
  script.sockets[0]!.close(1001);
  const e = await ended;
  t.equal(e.code, 'CLIENT_CONNECT_FAILED');
  t.match(e.message, /401/);
  const attempts = script.sockets.length;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(script.sockets.length, attempts, 'no further attempts');
  t.notOk(c.connected);
});

t.test('without reconnect, a drop just closes', async (t) => {
  const { url, script } = await fakeGateway(t);
  const c = await GatewayClient.connect(url, 'tok');
  const closed = new Promise<number>((r) => c.once('close', r));
  script.sockets[0]!.close(1001);
  t.equal(await closed, 1001);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(script.sockets.length, 1, 'no reconnect');
  await t.rejects(c.request({ type: 'ping' }), { code: 'CLIENT_CLOSED' });
});
