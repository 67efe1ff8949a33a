/**
 * The API contract against a real gateway over real sockets (central simulator over mutual TLS,
 * SQLite on disk): version negotiation, scopes, heartbeat, both send-buffer limits, oversized
 * frames. Every message the gateway sent in these tests must match its schema in the AsyncAPI
 * document, so the published contract cannot drift from what the server really sends.
 */
import t from 'tap';
import { writeFileSync, readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { WebSocket } from 'ws';
import { startHarness, waitFor, type Harness } from '../helpers/gateway.js';
import { GatewayClient } from '../../src/client/index.js';
import { apiMessageSchemas, serverMessageName } from '../../src/protocol/asyncapi.js';
import { EVENT_HIGH_WATER_BYTES, SEND_HARD_LIMIT_BYTES } from '../../src/api/ws-server.js';

let h: Harness;
t.before(async () => {
  h = await startHarness({ api: { heartbeatMs: 1000 } });
});
t.teardown(() => h.close());

const ajv = new Ajv({ strict: false, allErrors: true });
const validators = new Map<string, ValidateFunction>(
  Object.entries(apiMessageSchemas()).map(([k, s]) => [k, ajv.compile(s)]),
);
/** every message any test here received, checked against the contract at the end */
const seen: Record<string, unknown>[] = [];

const query = { insurerNumber: '06139992', symbol: 'テスト', number: '12345', branch: '00', birthdate: '19800401' };

function raw(
  token = h.token,
  opts: { autoPong?: boolean } = {},
): Promise<{
  ws: WebSocket;
  messages: Record<string, unknown>[];
  next(pred?: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  closed: Promise<number>;
}> {
  const ws = new WebSocket(h.wsUrl, { headers: { authorization: `Bearer ${token}` }, ...opts });
  const messages: Record<string, unknown>[] = [];
  const waiters: { pred: (m: Record<string, unknown>) => boolean; resolve(m: Record<string, unknown>): void }[] = [];
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as Record<string, unknown>;
    messages.push(m);
    seen.push(m);
    const i = waiters.findIndex((w) => w.pred(m));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
  });
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        closed,
        next: (pred = () => true) =>
          new Promise((r) => {
            const found = messages.find(pred);
            if (found) {
              messages.splice(messages.indexOf(found), 1);
              return r(found);
            }
            waiters.push({
              pred,
              resolve: (m) => {
                messages.splice(messages.indexOf(m), 1);
                r(m);
              },
            });
          }),
      }),
    );
  });
}

const byId = (id: string) => (m: Record<string, unknown>) => m.id === id;
const tracked = async (token?: string): Promise<GatewayClient> => {
  const c = await h.connect(token);
  c.on('message', (m) => seen.push(m));
  return c;
};

t.test(
  'hello: the same major is accepted with the scopes and limits; another major is refused and closed',
  async (t) => {
    const c = await raw();
    const welcome = await c.next((m) => m.type === 'welcome');
    t.match(welcome, { protocol: '1.0', client: { name: 'test-client', scopes: ['full'] } });

    c.ws.send(JSON.stringify({ type: 'hello', id: 'h1', protocol: '1.0', client: 'contract-test 1' }));
    t.match(await c.next(byId('h1')), {
      type: 'hello.accepted',
      protocol: '1.0',
      scopes: ['full'],
      limits: { maxPayloadBytes: 65536, heartbeatMs: 1000, eventHighWaterBytes: 1048576, sendHardLimitBytes: 4194304 },
    });
    c.ws.send(JSON.stringify({ type: 'hello', id: 'h2', protocol: '1.9' }));
    t.match(
      await c.next(byId('h2')),
      { type: 'hello.accepted', protocol: '1.0' },
      'a newer minor is fine: minors only add',
    );

    c.ws.send(JSON.stringify({ type: 'hello', id: 'h3', protocol: 'one' }));
    t.match(
      await c.next(byId('h3')),
      { type: 'error', error: { code: 'INVALID_MESSAGE', message: /protocol/ } },
      'not MAJOR.MINOR',
    );

    c.ws.send(JSON.stringify({ type: 'hello', id: 'h4', protocol: '2.0' }));
    const refused = await c.next(byId('h4'));
    t.match(refused, {
      type: 'error',
      error: {
        code: 'PROTOCOL_UNSUPPORTED',
        retryable: false,
        message: /2\.0 is not supported.*1\.0/,
        details: { requested: '2.0', supported: ['1.0'] },
      },
    });
    t.equal(await c.closed, 4426, 'then the gateway closes with 4426');

    await t.rejects(
      GatewayClient.connect(h.wsUrl, h.token, { protocol: '2.1' }),
      { code: 'PROTOCOL_UNSUPPORTED' },
      'the client library reports it as a typed error',
    );
    const ok = await tracked();
    t.match(ok.session, { type: 'hello.accepted', protocol: '1.0' }, 'the client library says hello by itself');
  },
);

t.test('scopes: each request and topic is checked against the token; refusals name the scope needed', async (t) => {
  const display = await tracked(h.clients.add('waiting-room', ['events:read']).token);
  t.same(display.session?.scopes, ['events:read']);
  t.equal((await display.request({ type: 'status' })).type, 'status', 'status is for everyone');
  t.same(await display.subscribe(['line', 'reader']), ['line', 'reader']);
  await t.rejects(display.request({ type: 'inquiry.numbers', query }), {
    code: 'SCOPE_DENIED',
    message: /"inquiry\.numbers" needs the scope inquiry or full; this token has events:read/,
    details: { needed: ['inquiry', 'full'], have: ['events:read'] },
  });
  await t.rejects(display.request({ type: 'reconciliation.list' }), {
    code: 'SCOPE_DENIED',
    details: { needed: ['admin-ops', 'full'] },
  });
  await t.rejects(display.request({ type: 'reconciliation.handle', itemId: 1 }), { code: 'SCOPE_DENIED' });
  await t.rejects(
    display.request({ type: 'pin.submit', inquiryId: 'x', pin: '1234' }),
    { code: 'SCOPE_DENIED' },
    'a display cannot send a PIN',
  );
  await t.rejects(
    display.subscribe(['reconciliation']),
    { code: 'SCOPE_DENIED', message: /topic "reconciliation"/, details: { needed: ['admin-ops', 'full'] } },
    'reconciliation items carry names',
  );
  await t.rejects(
    display.subscribe(['outbox', 'line']),
    { code: 'SCOPE_DENIED', message: /topic "outbox"/ },
    'all or nothing',
  );
  t.same(display.subscriptions, ['line', 'reader'], 'a refused subscribe changes nothing');
  t.ok(
    h.logs.some((l) => l.includes('"event":"scope_denied"') && l.includes('"type":"inquiry.numbers"')),
    'a refusal is logged with the client and the request type',
  );

  const searches = h.central.stats.searches;
  const reception = await tracked(h.clients.add('reception', ['inquiry']).token);
  t.equal((await reception.request({ type: 'inquiry.numbers', query })).type, 'inquiry.result', 'inquiry may check');
  t.equal(h.central.stats.searches, searches + 1, 'and only the permitted check reached central');
  await t.rejects(reception.request({ type: 'reconciliation.list' }), { code: 'SCOPE_DENIED' });
  t.same(await reception.subscribe(['line', 'outbox', 'reader']), ['line', 'outbox', 'reader']);

  const office = await tracked(h.clients.add('office', ['admin-ops']).token);
  t.equal((await office.request({ type: 'reconciliation.list' })).type, 'reconciliation.items');
  await t.rejects(office.request({ type: 'inquiry.numbers', query }), {
    code: 'SCOPE_DENIED',
    details: { needed: ['inquiry', 'full'] },
  });
  t.same(await office.subscribe(['reconciliation']), ['reconciliation']);

  const batcher = await tracked(h.clients.add('batch-pc', ['batch']).token);
  await t.rejects(
    batcher.request({ type: 'batch.status', batchId: '00000000deadbeef' }),
    { code: 'BATCH_NOT_FOUND' },
    'batch may ask about batches (past the scope check)',
  );
  t.same(await batcher.subscribe(['line', 'batches']), ['line', 'batches']);
  await t.rejects(batcher.request({ type: 'inquiry.numbers', query }), {
    code: 'SCOPE_DENIED',
    details: { needed: ['inquiry', 'full'] },
  });
  await t.rejects(
    reception.request({ type: 'batch.status', batchId: '00000000deadbeef' }),
    { code: 'SCOPE_DENIED', details: { needed: ['batch', 'full'] } },
    'inquiry may not',
  );
  await t.rejects(display.subscribe(['batches']), { code: 'SCOPE_DENIED' });

  const both = await tracked(h.clients.add('front-desk', ['inquiry', 'admin-ops']).token);
  t.equal((await both.request({ type: 'reconciliation.list' })).type, 'reconciliation.items', 'scopes add up');
  t.equal((await both.request({ type: 'inquiry.numbers', query })).type, 'inquiry.result');

  // A clients.json from before scopes: records without the field keep full access.
  const { token: legacyToken } = h.clients.add('legacy');
  const again = JSON.parse(readFileSync(h.clients.path, 'utf8')) as { clients: { name: string; scopes?: string[] }[] };
  for (const c of again.clients) if (c.name === 'legacy') delete c.scopes;
  writeFileSync(h.clients.path, JSON.stringify(again));
  const legacy = await tracked(legacyToken);
  t.same(legacy.session?.scopes, ['full']);
  t.equal((await legacy.request({ type: 'reconciliation.list' })).type, 'reconciliation.items');
  t.same(await legacy.subscribe(['reconciliation', 'outbox']), ['reconciliation', 'outbox']);
});

t.test('heartbeat: a client that stops answering pings is dropped after at most two pings', async (t) => {
  let pings = 0;
  const connectedAt = Date.now();
  const silent = await raw(h.token, { autoPong: false });
  silent.ws.on('ping', () => {
    pings++;
  });
  const lively = await raw();
  let livelyPings = 0;
  lively.ws.on('ping', () => {
    livelyPings++;
  });
  t.equal(await silent.closed, 1006, 'terminated, not closed politely');
  // The drop comes at the beat after an unanswered ping, so never sooner than one interval
  // (1000 ms here, less timer slack). Whether the client read that ping is not asserted: a starved
  // client may still have it unread when the reset arrives, and the kernel then discards it.
  const lasted = Date.now() - connectedAt;
  t.ok(lasted >= 900, `the silent client was dropped after ${lasted} ms: not before one heartbeat interval`);
  t.ok(pings <= 2, `the silent client saw ${pings} ping(s) before the drop: two intervals at most`);
  await waitFor(() => livelyPings >= pings + 2, 'the lively client keeps being pinged', 10_000);
  t.equal(lively.ws.readyState, WebSocket.OPEN, 'a client that answers pings stays');
  t.ok(
    h.logs.some((l) => l.includes('"heartbeat_timeout"')),
    'the drop is logged',
  );
  lively.ws.close();
});

t.test('oversized frames: 64 KiB is accepted, one byte more closes with 1009', async (t) => {
  const max = h.config.api.maxPayloadBytes;
  t.equal(max, 65536);
  const c = await raw();
  await c.next((m) => m.type === 'welcome');
  const pad = 'x'.repeat(max - JSON.stringify({ type: 'ping', id: 'big', p: '' }).length);
  const exact = JSON.stringify({ type: 'ping', id: 'big', p: pad });
  t.equal(Buffer.byteLength(exact), max);
  c.ws.send(exact);
  t.match(
    await c.next(byId('big')),
    { type: 'error', error: { code: 'INVALID_MESSAGE', message: /unknown field "p"/ } },
    'a frame of exactly maxPayload is read and answered',
  );
  c.ws.send('x'.repeat(max + 1));
  t.equal(await c.closed, 1009);
});

t.test(
  'send buffer: above 1 MiB unsent, events are dropped and counted; at 4 MiB the connection closes with 1013',
  async (t) => {
    const flow = (): { droppedEvents: number; overflowCloses: number } => {
      const { droppedEvents = 0, overflowCloses = 0 } = h.gateway.status().api;
      return { droppedEvents, overflowCloses };
    };
    const before = flow();
    const c = await raw();
    await c.next((m) => m.type === 'welcome');
    c.ws.send(JSON.stringify({ type: 'subscribe', id: 's', topics: ['line'] }));
    await c.next(byId('s'));
    // Stop reading: the kernel buffers fill, then the gateway's.
    const sock = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
    sock.pause();
    const pad = 'e'.repeat(16 * 1024);
    let sent = 0;
    let published = 0;
    let droppedSeenAt: number | undefined;
    const logOf = (event: string): Record<string, unknown> | undefined => {
      const line = h.logs.find((l) => l.includes(`"event":"${event}"`));
      return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
    };
    for (let round = 0; round < 4000 && !logOf('send_buffer_overflow'); round++) {
      // Events (droppable) and pipelined requests whose answers may not be dropped.
      for (let i = 0; i < 8; i++, published++) h.gateway.events.publish('line', 'test.padding', { pad });
      for (let i = 0; i < 20; i++) c.ws.send(JSON.stringify({ type: 'status', id: `q${sent++}` }));
      await new Promise((r) => setTimeout(r, 5));
      if (droppedSeenAt === undefined && flow().droppedEvents > before.droppedEvents) droppedSeenAt = sent;
    }
    const dropLog = logOf('events_dropped');
    const overflow = logOf('send_buffer_overflow');
    t.ok(dropLog, 'the first drop is logged');
    t.ok(
      (dropLog?.bufferedBytes as number) > EVENT_HIGH_WATER_BYTES,
      `events were dropped only above 1 MiB unsent (${String(dropLog?.bufferedBytes)} bytes)`,
    );
    t.ok(overflow, 'the hard limit was reached');
    t.ok(
      (overflow?.bufferedBytes as number) > SEND_HARD_LIMIT_BYTES - 64 * 1024 &&
        (overflow?.bufferedBytes as number) <= SEND_HARD_LIMIT_BYTES,
      `closed at 4 MiB unsent (${String(overflow?.bufferedBytes)} bytes)`,
    );
    t.ok((overflow?.droppedEvents as number) > 0, `${String(overflow?.droppedEvents)} events were dropped before that`);
    const after = flow();
    t.ok(after.droppedEvents > before.droppedEvents, 'the drop counter rose (status api.droppedEvents)');
    t.equal(after.overflowCloses, before.overflowCloses + 1, 'one overflow close counted');
    // Read again: everything queued arrives, then the close frame with 1013.
    sock.resume();
    t.equal(await c.closed, 1013);
    const answers = c.messages.filter((m) => m.type === 'status');
    t.ok(answers.length > 0, 'answers queued before the limit still arrived');
    const ids = answers.map((m) => Number(String(m.id).slice(1)));
    t.same(
      ids,
      [...ids].sort((a, b) => a - b),
      'in order',
    );
    const events = c.messages.filter((m) => m.type === 'event' && m.event === 'test.padding');
    t.ok(
      events.length < published,
      `fewer events arrived (${events.length}) than were published (${published}): the rest were dropped`,
    );
    t.ok(droppedSeenAt !== undefined && droppedSeenAt < sent, 'events were being dropped while answers still queued');
  },
);

t.test('every message the gateway sent matches its schema in the AsyncAPI document', async (t) => {
  t.ok(seen.length > 20, `${seen.length} messages checked`);
  const kinds = new Set<string>();
  for (const m of seen) {
    if (m.event === 'test.padding') continue; // the buffer test's own filler
    const name = serverMessageName(m);
    if (kinds.has(name)) continue; // one report per kind, not thousands
    const v = validators.get(name);
    if (!v) {
      kinds.add(name);
      t.fail(`no schema for "${name}"`);
      continue;
    }
    if (!v(m)) {
      kinds.add(name);
      t.fail(`${name} does not match: ${ajv.errorsText(v.errors)}: ${JSON.stringify(m).slice(0, 300)}`);
    }
  }
  t.same([...kinds], [], 'no message outside the contract');
  for (const m of seen) kinds.add(serverMessageName(m));
  for (const k of [
    'welcome',
    'hello.accepted',
    'error',
    'status.answer',
    'subscribed',
    'inquiry.result',
    'reconciliation.items',
    'event.line',
  ])
    t.ok(kinds.has(k), `checked at least one ${k}`);
});

t.test('wss:// to the real gateway: the client library pins its certificate by fingerprint or SPKI', async (t) => {
  const h3 = await startHarness({ api: { tls: 'on' } });
  t.teardown(() => h3.close());
  const tls = h3.gateway.status().tls!;
  const url = `wss://127.0.0.1:${h3.gateway.wsPort}/v1`;
  for (const pin of [{ fingerprint256: tls.fingerprint }, { spkiSha256: tls.spkiSha256 }]) {
    const c = await GatewayClient.connect(url, h3.token, pin);
    t.equal((await c.request({ type: 'ping' })).type, 'pong', `pinned by ${Object.keys(pin)[0]}`);
    await c.close();
  }
  const upgrades = (): number =>
    h3.logs.filter((l) => l.includes('"event":"connect"') || l.includes('"auth_failed"')).length;
  const before = upgrades();
  await t.rejects(
    GatewayClient.connect(url, h3.token, { fingerprint256: 'AB'.repeat(32) }),
    { code: 'CLIENT_PIN_MISMATCH' },
    'another certificate: refused by the client',
  );
  t.equal(upgrades(), before, 'no upgrade with the token reached the gateway');
});
