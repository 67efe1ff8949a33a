/**
 * End to end: WebSocket client → gateway → central simulator over mutual TLS, for every
 * 資格有効性 value in the seed, and every documented outcome for bad input.
 */
import t from 'tap';
import { WebSocket } from 'ws';
import { startHarness, waitFor, type Harness } from '../helpers/gateway.js';
import { stopwatch } from '../helpers/timing.js';
import type { InquiryResult } from '../../src/checks/result.js';
import { peopleRows } from '../../src/sim/central/population.js';
import { todayJst } from '../../src/oqs/dates.js';

let h: Harness;
t.before(async () => {
  h = await startHarness();
});
t.teardown(() => h.close());

const queryOf = (r: { insurerNumber: string; symbol: string; number: string; branch: string; birthdate: string }) => ({
  insurerNumber: r.insurerNumber,
  number: r.number,
  birthdate: r.birthdate,
  ...(r.symbol ? { symbol: r.symbol } : {}),
  ...(r.branch ? { branch: r.branch } : {}),
});

t.test('every seeded person gets the validity the simulator promises', async (t) => {
  const rows = peopleRows(h.central.people, todayJst());
  const validities = new Set(rows.map((r) => r.expectedValidity));
  for (const v of ['1', '2', '3', '4', '5']) t.ok(validities.has(v as never), `the seed covers validity ${v}`);
  const client = await h.connect();
  for (const row of rows) {
    const answer = await client.request({ type: 'inquiry.numbers', query: queryOf(row) });
    const result = answer.result as { validity: string; source: string; results: { name: string }[]; status: string };
    t.equal(answer.type, 'inquiry.result');
    t.equal(result.source, 'central');
    t.equal(result.status, '1', `${row.id}: answered`);
    t.equal(result.validity, row.expectedValidity, `${row.id} (${row.label}) → ${row.expectedValidity}`);
    if (row.expectedValidity === '5')
      t.ok(result.results.length >= 2, '複数該当 returns every match for staff to choose');
    if (row.expectedValidity === '4') t.equal(result.results.length, 0, '該当資格なし carries no person');
  }
});

t.test('names with 髙, 﨑, an IVS sequence and a private-use character arrive unchanged', async (t) => {
  const client = await h.connect();
  for (const id of ['P0000002', 'P0000003', 'P0000004', 'P0000012']) {
    const person = h.central.people.find((p) => p.id === id)!;
    const x = person.qualifications[0]!;
    const answer = await client.request({
      type: 'inquiry.numbers',
      query: queryOf({
        insurerNumber: x.insurerNumber,
        symbol: x.symbol ?? '',
        number: x.number,
        branch: x.branch ?? '',
        birthdate: person.birthdate,
      }),
    });
    const name = (answer.result as { results: { name: string }[] }).results[0]!.name;
    t.equal(name, person.name, `${id}: ${JSON.stringify(name)}`);
  }
});

t.test('後期高齢者 without 枝番, 6-digit 国保 number, and the nested blocks with 限度額 consent', async (t) => {
  const client = await h.connect();
  const elder = (
    await client.request({
      type: 'inquiry.numbers',
      query: { insurerNumber: '39139993', number: '99990001', birthdate: '19450505' },
    })
  ).result as { validity: string; results: { branch?: string; partialContributionRatio?: string }[] };
  t.equal(elder.validity, '1');
  t.equal(elder.results[0]!.branch, undefined, 'no 枝番');
  t.equal(elder.results[0]!.partialContributionRatio, '010');
  const kokuho = (
    await client.request({
      type: 'inquiry.numbers',
      query: { insurerNumber: '139998', symbol: 'ﾃｽﾄ', number: '7777', branch: '1', birthdate: '19880720' },
    })
  ).result as {
    validity: string;
    results: { insurerNumber: string }[];
    query: { insurerNumber: string; branch: string };
  };
  t.equal(kokuho.validity, '1', 'a 6-digit insurer number and a 1-digit branch are normalized');
  t.equal(kokuho.query.insurerNumber, '  139998', 'sent space-padded to 8');
  t.equal(kokuho.query.branch, '01');
  const elderly = (
    await client.request({
      type: 'inquiry.numbers',
      query: {
        insurerNumber: '06279996',
        symbol: 'ｺｳﾚｲ',
        number: '1111',
        branch: '00',
        birthdate: '19540303',
        limitConsent: true,
      },
    })
  ).result as {
    results: {
      elderly?: { contributionRatio?: string };
      limitInfo?: { classificationFlag?: string };
      limitConsent?: { flag: string };
    }[];
  };
  t.equal(elderly.results[0]!.elderly?.contributionRatio, '20');
  t.equal(elderly.results[0]!.limitInfo?.classificationFlag, 'B04');
  t.equal(elderly.results[0]!.limitConsent?.flag, '1');
  const noConsent = (
    await client.request({
      type: 'inquiry.numbers',
      query: { insurerNumber: '06279996', symbol: 'ｺｳﾚｲ', number: '1111', branch: '00', birthdate: '19540303' },
    })
  ).result as { results: { limitInfo?: unknown }[] };
  t.equal(noConsent.results[0]!.limitInfo, undefined, 'no 限度額 information without consent');
});

t.test('bad input: each case has its documented outcome', async (t) => {
  const client = await h.connect();
  const next = (): Promise<Record<string, unknown>> => new Promise((r) => client.once('message', r));

  let reply = next();
  client.sendRaw('{not json');
  t.match(await reply, { type: 'error', id: null, error: { code: 'BAD_JSON' } }, 'bad JSON');

  reply = next();
  client.sendRaw(JSON.stringify({ type: 'inquiry.teleport', id: 'u1' }));
  t.match(await reply, { type: 'error', id: 'u1', error: { code: 'UNKNOWN_TYPE' } }, 'unknown type');

  reply = next();
  client.sendRaw(JSON.stringify([1, 2]));
  t.match(await reply, { type: 'error', id: null, error: { code: 'INVALID_MESSAGE' } }, 'not an object');

  reply = next();
  client.sendRaw(
    JSON.stringify({ type: 'inquiry.numbers', id: 's1', query: { insurerNumber: '06139992', number: '1' } }),
  );
  const missing = await reply;
  t.match(
    missing,
    { type: 'error', id: 's1', error: { code: 'INVALID_MESSAGE' } },
    'schema violation: missing birthdate',
  );
  t.match(String((missing.error as { message: string }).message), /birthdate/);

  reply = next();
  client.sendRaw(
    JSON.stringify({
      type: 'inquiry.numbers',
      id: 's2',
      query: { insurerNumber: '06139992', number: '1', birthdate: '19800401', extra: 1 },
    }),
  );
  t.match(
    await reply,
    { type: 'error', id: 's2', error: { code: 'INVALID_MESSAGE', message: /extra/ } },
    'schema violation: unknown field',
  );

  reply = next();
  client.sendRaw(Buffer.from([1, 2, 3]));
  t.match(await reply, { type: 'error', error: { code: 'INVALID_MESSAGE', message: /binary/ } }, 'binary frame');

  const searchesBefore = h.central.stats.searches;
  await t.rejects(
    client.request({
      type: 'inquiry.numbers',
      query: { insurerNumber: '06139993', number: '1', birthdate: '19800401' },
    }),
    { code: 'OQS_MESSAGE_INVALID' },
    'an insurer number with a wrong check digit is refused before central',
  );
  await t.rejects(
    client.request({
      type: 'inquiry.numbers',
      query: { insurerNumber: '06139992', number: '1', birthdate: '20230229' },
    }),
    { code: 'OQS_MESSAGE_INVALID' },
    'an impossible birth date is refused',
  );
  t.equal(h.central.stats.searches, searchesBefore, 'refused input never reached central');

  const pong = await client.request({ type: 'ping' });
  t.equal(pong.type, 'pong', 'the connection is still usable after every bad frame');
});

t.test('an oversized frame closes the connection with 1009', async (t) => {
  const client = await h.connect();
  const closed = new Promise<number>((r) => client.once('close', r));
  client.sendRaw('x'.repeat(h.config.api.maxPayloadBytes + 1));
  t.equal(await closed, 1009);
});

t.test('unauthenticated upgrades are refused with 401 before any socket exists', async (t) => {
  for (const headers of [
    {},
    { authorization: 'Bearer onshi_00000000_' + 'A'.repeat(43) },
    { authorization: 'Basic abc' },
    { authorization: `Bearer ${h.token}x` },
  ]) {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(h.wsUrl, { headers });
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => {
        resolve(101);
        ws.close();
      });
      ws.on('error', () => {});
    });
    t.equal(status, 401, `refused: ${JSON.stringify(headers).slice(0, 40)}`);
  }
  t.ok(
    h.logs.some((l) => l.includes('auth_failed')),
    'failed authentications are logged',
  );
});

t.test('a revoked token is refused at the next connection', async (t) => {
  const { client: rec, token } = h.clients.add('to-revoke');
  const c = await h.connect(token);
  await c.close();
  h.clients.revoke(rec.id);
  await t.rejects(h.connect(token), { code: 'CLIENT_CONNECT_FAILED', message: /401/ });
});

t.test('a duplicate in-flight id is refused; the first still gets its answer', async (t) => {
  h.central.updateSettings({ latencyMs: 300 });
  t.teardown(() => h.central.updateSettings({ latencyMs: 0 }));
  // A raw socket: the client library never reuses an id, so it cannot send this.
  const ws = new WebSocket(h.wsUrl, { headers: { authorization: `Bearer ${h.token}` } });
  const messages: Record<string, unknown>[] = [];
  const gotResult = new Promise<void>((resolve) =>
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as Record<string, unknown>;
      messages.push(m);
      if (m.type === 'inquiry.result') resolve();
    }),
  );
  await new Promise((r) => ws.once('open', r));
  const q = { insurerNumber: '06139992', symbol: 'テスト', number: '12345', branch: '00', birthdate: '19800401' };
  ws.send(JSON.stringify({ type: 'inquiry.numbers', id: 'dup', query: q }));
  ws.send(JSON.stringify({ type: 'inquiry.numbers', id: 'dup', query: q }));
  await gotResult;
  ws.close();
  t.match(
    messages
      .filter((m) => m.id === 'dup')
      .map((m) => (m.type === 'error' ? (m.error as { code: string }).code : m.type)),
    ['DUPLICATE_ID', 'inquiry.result'],
  );
});

t.test('the deadline is kept whatever central does: a slow central is answered from the cache in time', async (t) => {
  const client = await h.connect();
  const query = { insurerNumber: '06139992', symbol: 'テスト', number: '12345', branch: '00', birthdate: '19800401' };
  const fresh = (await client.request({ type: 'inquiry.numbers', query })) as { result: InquiryResult };
  t.equal(fresh.result.source, 'central');
  await waitFor(
    () =>
      h.gateway.store.eligibility.get({ kind: 'numbers', ...query, insurerNumber: '06139992' }, 60_000) !== undefined,
    'the answer is cached',
  );
  h.central.updateSettings({ latencyMs: 3000 });
  t.teardown(() => h.central.updateSettings({ latencyMs: 0 }));
  const clock = stopwatch();
  const slow = (await client.request({ type: 'inquiry.numbers', deadlineMs: 800, query })) as { result: InquiryResult };
  const took = clock.ms();
  t.ok(
    took < Math.min(clock.allowance(800), 3000),
    `answered by the deadline + 100 ms + 3 × lag, before central's 3 s (took ${took.toFixed(0)} ms)`,
  );
  t.equal(slow.result.source, 'cache', 'from the cache, never presented as fresh');
  t.equal(slow.result.verifiedAt, fresh.result.verifiedAt, 'with the time central confirmed it');
  t.equal(slow.result.validity, fresh.result.validity);
  t.match(slow.result.recheck, { queued: true }, 'and queued for re-verification before the answer');
});

t.test('central unreachable: an honest "unavailable" with the fallback guidance, queued for later', async (t) => {
  const h2 = await startHarness({ central: { url: 'https://127.0.0.1:1' } });
  t.teardown(() => h2.close());
  const client = await h2.connect();
  const { result } = (await client.request({
    type: 'inquiry.numbers',
    query: { insurerNumber: '06139992', number: '1', birthdate: '19800401' },
  })) as { result: InquiryResult };
  t.equal(result.source, 'none');
  t.equal(result.unavailable?.code, 'ELIGIBILITY_UNAVAILABLE');
  t.ok(
    result.unavailable?.guidance.some((g) => g.includes('資格確認書')),
    'guidance names the 資格確認書',
  );
  t.ok(
    result.unavailable?.guidance.some((g) => g.includes('被保険者資格申立書')),
    'and the 被保険者資格申立書',
  );
  t.equal(result.results.length, 0, 'no made-up eligibility');
  t.match(result.recheck, { queued: true });
  t.equal(h2.gateway.store.outbox.stats().depth, 1, 'the check is in the outbox');
});

t.test('no personal data in the gateway log at info level', async (t) => {
  const infoLines = h.logs.filter((l) => (JSON.parse(l) as { level: string }).level !== 'debug');
  t.ok(infoLines.length > 5, 'the gateway logged requests');
  for (const secret of ['テスト　太郎', '19800401', '12345', '髙橋', h.token]) {
    t.notOk(
      infoLines.some((l) => l.includes(secret)),
      `"${secret.slice(0, 12)}" never logged`,
    );
  }
});

t.test('heartbeat: a client that stops answering pings is dropped within two intervals', async (t) => {
  const h2 = await startHarness({ api: { heartbeatMs: 1000 } });
  t.teardown(() => h2.close());
  const silent = new WebSocket(h2.wsUrl, { headers: { authorization: `Bearer ${h2.token}` }, autoPong: false });
  const lively = new WebSocket(h2.wsUrl, { headers: { authorization: `Bearer ${h2.token}` } });
  await Promise.all([new Promise((r) => silent.once('open', r)), new Promise((r) => lively.once('open', r))]);
  const clock = stopwatch();
  const closed = await new Promise<number>((r) => silent.once('close', (code) => r(code)));
  const after = clock.ms();
  t.equal(closed, 1006, 'terminated, not closed politely');
  t.ok(after >= 1000 && after < clock.allowance(2000, 1500), `dropped after ${after.toFixed(0)} ms`);
  t.equal(lively.readyState, WebSocket.OPEN, 'a client that answers pings stays');
  t.ok(
    h2.logs.some((l) => l.includes('heartbeat_timeout')),
    'the drop is logged',
  );
  lively.close();
});
