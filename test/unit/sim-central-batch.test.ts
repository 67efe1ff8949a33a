/**
 * The central simulator's batch inquiry through the real CentralClient over mutual TLS: the
 * two-step protocol, simulated processing time, the Idempotency-Key, the latency and failure
 * settings, the registration lag on a later simulated day, and a 2,000-entry batch.
 */
import t from 'tap';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CentralSim } from '../../src/sim/central/server.js';
import { SIM_BATCH_CODES } from '../../src/sim/central/batch.js';
import type { SimQualification } from '../../src/sim/central/population.js';
import { ensureSandboxPki } from '../../src/sim/pki.js';
import { CentralClient } from '../../src/sync/central-client.js';
import {
  batchOutcome,
  checkRatioConsistency,
  encodeBatchResultJson,
  multipleMatches,
  pairBatchResults,
  type BatchResult,
  type BatchResultUnit,
  type BatchSubmitRequest,
  type NumbersQuery,
} from '../../src/oqs/index.js';
import { WEB_API_PATHS } from '../../src/oqs/web-api.js';

// The same PKI directory as the other tests (ensureSandboxPki is idempotent and locked).
const pki = await ensureSandboxPki(join(tmpdir(), 'onshi-test-pki'));
const central = await CentralSim.start({ pki });
const client = new CentralClient({
  url: central.url,
  ca: pki.centralCa.certPem,
  cert: pki.gatewayClient.certPem,
  key: pki.gatewayClient.keyPem,
  userId: 'sandbox',
  timeoutMs: 5000,
});
t.teardown(async () => {
  client.close();
  await central.close();
});

const INSTITUTION = '1319999994';
const soon = (ms = 4000) => ({ deadline: Date.now() + ms });
const q = (
  arbitraryId: string,
  insurerNumber: string,
  symbol: string | undefined,
  number: string,
  branch: string | undefined,
  birthdate: string,
  limitConsent: '0' | '1' = '0',
): NumbersQuery => ({
  insurerNumber,
  number,
  birthdate,
  limitConsent,
  arbitraryId,
  ...(symbol !== undefined ? { symbol } : {}),
  ...(branch !== undefined ? { branch } : {}),
});

// One entry per answer the counter must handle (population.ts).
const ENTRIES: NumbersQuery[] = [
  q('P0000001_1', '06139992', 'テスト', '12345', '00', '19800401'),
  q('P0000002_1', '01130012', '１２３', '4567', '01', '19750315'),
  q('P0000003_1', '  139998', 'ﾃｽﾄ', '7777', '01', '19880720'),
  q('P0000005_1', '39139993', undefined, '99990001', undefined, '19450505'),
  q('P0000006_1', '06270011', 'ﾑｺｳ', '606', '00', '19900202'),
  q('P0000007_1', '06270011', 'ﾃﾝｼｮｸ', '707', '00', '19850606'),
  q('DUP_1', '27139997', 'ﾌｸｽｳ', '1001', '00', '20100101'),
  q('NONE_1', '06139992', 'テスト', '99999', '00', '19900101'),
  q('P0000013_1', '06279996', 'ﾜﾘｱｲ', '13001', '00', '19530909', '1'),
  q('BAD_1', '06139993', 'テスト', '12345', '00', '19800401'), // check digit fails
];
const batch = (over: Partial<BatchSubmitRequest> = {}): BatchSubmitRequest => ({
  confirmationDate: '20250402',
  institutionCode: INSTITUTION,
  fileId: 'B-1',
  entries: ENTRIES,
  ...over,
});

async function fetchUntilDone(
  receptionNumber: string,
  institution = INSTITUTION,
  maxMs = 5000,
): Promise<{ result: BatchResult; pendingSeen: number }> {
  const until = Date.now() + maxMs;
  let pendingSeen = 0;
  for (;;) {
    const result = await client.fetchBatch(receptionNumber, institution, soon());
    if (batchOutcome(result).state !== 'pending' || Date.now() > until) return { result, pendingSeen };
    pendingSeen++;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const byId = (units: BatchResultUnit[]): Map<string, BatchResultUnit> =>
  new Map(units.map((u) => [u.query?.arbitraryId ?? '', u]));

t.beforeEach(() => {
  central.updateSettings({ latencyMs: 0, jitterMs: 0, errorRate: 0, today: '20250401' });
  central.batches.updateSettings({ readyAfterMs: 0, perEntryMs: 0, maxEntries: 2000 });
});

t.test('submit → reception number → 処理中 → one unit per entry', async (t) => {
  central.batches.updateSettings({ readyAfterMs: 400 });
  const receipt = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-main' });
  t.equal(receipt.header.segmentOfResult, '1');
  t.equal(receipt.header.fileId, 'B-1', 'the file id is echoed');
  t.match(receipt.receptionNumber, /^R[0-9A-F]{4}\d{8}$/);
  t.match(receipt.receptionTime, /^20250401\d{6}$/, 'received on the simulated day');

  const early = await client.fetchBatch(receipt.receptionNumber!, INSTITUTION, soon());
  t.strictSame(batchOutcome(early), { state: 'pending' }, 'not ready before the processing time');
  t.equal(early.header.receptionNumber, receipt.receptionNumber);

  const { result, pendingSeen } = await fetchUntilDone(receipt.receptionNumber!);
  t.ok(pendingSeen >= 1, `処理中 until ready (${pendingSeen} more polls)`);
  t.match(result.header, {
    segmentOfResult: '1',
    confirmationDate: '20250402',
    fileId: 'B-1',
    total: ENTRIES.length,
    normal: ENTRIES.length - 1,
    errors: 1,
  });
  const pairing = pairBatchResults(ENTRIES, result.units);
  t.equal(pairing.paired.length, ENTRIES.length, 'every entry answered');
  t.strictSame([pairing.missing, pairing.unmatched], [[], []]);

  const u = byId(result.units);
  const validity = Object.fromEntries(
    [...u].map(([id, x]) => [id, x.status === '1' ? x.validity : `error:${x.resultCode}`]),
  );
  t.strictSame(validity, {
    P0000001_1: '1',
    P0000002_1: '1',
    P0000003_1: '1',
    P0000005_1: '1',
    P0000006_1: '2',
    P0000007_1: '3',
    DUP_1: '5',
    NONE_1: '4',
    P0000013_1: '1',
    BAD_1: `error:${SIM_BATCH_CODES.queryInvalid}`,
  });
  t.equal(u.get('P0000002_1')?.results[0]?.name, '髙橋　一郎', 'names as registered');
  t.equal(u.get('P0000003_1')?.query?.insurerNumber, '  139998', 'the echo is the entry as sent');
  t.equal(multipleMatches(u.get('DUP_1')!)?.candidates.length, 2, '複数該当 arrives as a list');
  t.match(
    checkRatioConsistency(u.get('P0000013_1')!.results[0]!),
    { ratio: 1, classificationFlag: 'B03' },
    'the inconsistent ratio person (限度額 consent given)',
  );
  t.equal(u.get('P0000001_1')?.results[0]?.limitInfo, undefined, 'no 限度額 information without consent');
  t.match(
    u.get('BAD_1'),
    { status: '2', results: [], resultMessage: /check-digit/ },
    'a per-entry error; the rest is answered',
  );

  central.updateSettings({ today: '20250410' });
  const again = await client.fetchBatch(receipt.receptionNumber!, INSTITUTION, soon());
  t.strictSame(again.units, result.units, 'a finished batch answers the same on a later fetch');
});

t.test('Idempotency-Key: one batch per key, 422 for another payload, 409 while in flight', async (t) => {
  const before = central.batches.stats.submits;
  const a = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-idem' });
  const b = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-idem' });
  t.equal(b.receptionNumber, a.receptionNumber, 'the same receipt is replayed');
  t.equal(central.batches.stats.submits, before + 1, 'one batch created');
  t.equal(central.stats.effectsByKey['b-idem'], 1);
  await t.rejects(client.submitBatch(batch({ fileId: 'B-2' }), { ...soon(), idempotencyKey: 'b-idem' }), {
    code: 'CENTRAL_REFUSED',
    retryable: false,
    details: { status: 422 },
  });
  const c = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-idem-2' });
  t.not(c.receptionNumber, a.receptionNumber, 'a new key is a new batch');

  central.updateSettings({ latencyMs: 400 });
  const first = client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-flight' });
  await new Promise((r) => setTimeout(r, 150));
  await t.rejects(client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-flight' }), {
    code: 'CENTRAL_IN_FLIGHT',
    retryable: true,
  });
  const done = await first;
  t.equal(
    (await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-flight' })).receptionNumber,
    done.receptionNumber,
  );
  t.equal(central.stats.effectsByKey['b-flight'], 1, 'never two batches for one key');
});

t.test('the latency and failure settings apply to both steps', async (t) => {
  const receipt = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-fail-0' });
  const before = central.batches.stats.submits;
  central.updateSettings({ errorRate: 1, errorStatus: 503, retryAfterSec: 3 });
  await t.rejects(client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-fail' }), {
    code: 'CENTRAL_UNAVAILABLE',
    retryable: true,
    details: { status: 503, retryAfterMs: 3000 },
  });
  await t.rejects(client.fetchBatch(receipt.receptionNumber!, INSTITUTION, soon()), {
    code: 'CENTRAL_UNAVAILABLE',
    retryable: true,
  });
  t.equal(central.batches.stats.submits, before, 'a refused submit created no batch');
  t.equal(central.stats.effectsByKey['b-fail'], undefined);
  central.updateSettings({ errorRate: 0, latencyMs: 1500 });
  const started = Date.now();
  await t.rejects(client.fetchBatch(receipt.receptionNumber!, INSTITUTION, soon(300)), {
    code: 'CENTRAL_TIMEOUT',
    retryable: true,
  });
  t.ok(Date.now() - started < 700, 'gave up at the deadline');
  central.updateSettings({ latencyMs: 0 });
  t.equal(
    batchOutcome((await fetchUntilDone(receipt.receptionNumber!)).result).state,
    'done',
    'still there afterwards',
  );
});

t.test('registration lag: a later simulated day shows the new qualification', async (t) => {
  const person = central.people.find((p) => p.id === 'P0000006')!;
  const added: SimQualification = {
    insurerNumber: '01130012',
    symbol: 'ｼﾝｷ',
    number: '6060',
    branch: '00',
    insurerName: '全国健康保険協会東京支部',
    cardClassification: '01',
    personalFamily: '1',
    qualificationDate: '20250301',
    registeredOn: '20250404',
  };
  person.qualifications.push(added);
  t.teardown(() => {
    person.qualifications.splice(person.qualifications.indexOf(added), 1);
  });
  const entries = [
    q('OLD', '06270011', 'ﾑｺｳ', '606', '00', '19900202'),
    q('NEW', '01130012', 'ｼﾝｷ', '6060', '00', '19900202'),
  ];
  const run = async (key: string): Promise<Record<string, string | undefined>> => {
    const r = await client.submitBatch(batch({ entries }), { ...soon(), idempotencyKey: key });
    return Object.fromEntries(
      (await fetchUntilDone(r.receptionNumber!)).result.units.map((u) => [u.query!.arbitraryId!, u.validity]),
    );
  };
  central.updateSettings({ today: '20250401' });
  t.strictSame(await run('lag-day1'), { OLD: '2', NEW: '4' }, 'day 1: 無効, the new insurer not registered yet');
  central.updateSettings({ today: '20250404' });
  t.strictSame(
    await run('lag-day4'),
    { OLD: '3', NEW: '1' },
    'day 4: 無効（新しい資格あり）, and the new numbers are 有効',
  );

  // Eligibility is taken when central finishes processing, on the simulated day of that moment.
  central.updateSettings({ today: '20250401' });
  central.batches.updateSettings({ readyAfterMs: 300 });
  const r = await client.submitBatch(batch({ entries }), { ...soon(), idempotencyKey: 'lag-overnight' });
  central.updateSettings({ today: '20250404' });
  const { result } = await fetchUntilDone(r.receptionNumber!);
  t.strictSame(
    result.units.map((u) => u.validity),
    ['3', '1'],
    'submitted on day 1, processed on day 4',
  );
});

t.test('unknown numbers, another institution, too many entries', async (t) => {
  const unknown = await client.fetchBatch('R0000NOPE', INSTITUTION, soon());
  t.match(batchOutcome(unknown), { state: 'failed', errorCode: SIM_BATCH_CODES.unknownReception });
  const receipt = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-other' });
  const other = await client.fetchBatch(receipt.receptionNumber!, '1319999986', soon());
  t.match(
    batchOutcome(other),
    { state: 'failed', errorCode: SIM_BATCH_CODES.unknownReception },
    "another institution's batch is not shown",
  );

  central.batches.updateSettings({ maxEntries: 3 });
  const refused = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-large' });
  t.match(refused, { header: { segmentOfResult: '9', errorCode: SIM_BATCH_CODES.tooLarge } });
  t.equal(refused.receptionNumber, undefined);

  await t.rejects(
    client.submitBatch(
      batch({ entries: [ENTRIES[0]!, { ...ENTRIES[1]!, arbitraryId: ENTRIES[0]!.arbitraryId! }] }),
      soon(),
    ),
    { code: 'OQS_MESSAGE_INVALID', details: { reason: 'duplicate-identifier' } },
    'the client refuses to send a batch it could not pair',
  );
});

t.test('a batch answer that lost units is refused by the client', async (t) => {
  const receipt = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-lost' });
  const { result } = await fetchUntilDone(receipt.receptionNumber!);
  const json = encodeBatchResultJson(result) as { XmlMsg: { MessageBody: { BulkConfirmUnit: unknown[] } } };
  json.XmlMsg.MessageBody.BulkConfirmUnit.pop();
  await fetch(central.controlUrl + '/control/responses', {
    method: 'POST',
    body: JSON.stringify({ status: 200, body: JSON.stringify(json) }),
  });
  await t.rejects(client.fetchBatch(receipt.receptionNumber!, INSTITUTION, soon()), {
    code: 'CENTRAL_MALFORMED',
    details: { reason: 'OQS_MESSAGE_INVALID' },
  });
});

t.test('2,000 reservations in one batch', async (t) => {
  const seeds = ENTRIES.filter((e) => !e.arbitraryId!.startsWith('BAD'));
  const entries = Array.from({ length: 2000 }, (_, i) => ({
    ...seeds[i % seeds.length]!,
    arbitraryId: `R${String(i).padStart(5, '0')}_${i}`,
  }));
  central.batches.updateSettings({ readyAfterMs: 100, perEntryMs: 0.1 });
  const started = Date.now();
  const receipt = await client.submitBatch(batch({ entries }), { ...soon(10_000), idempotencyKey: 'b-2000' });
  const { result } = await fetchUntilDone(receipt.receptionNumber!, INSTITUTION, 10_000);
  const size = Buffer.byteLength(JSON.stringify(encodeBatchResultJson(result)));
  t.comment(`2,000 entries: ${Date.now() - started} ms, answer ${(size / 1024).toFixed(0)} KiB`);
  t.ok(size < 4 * 1024 * 1024, "the answer fits the client's default 4 MiB");
  const pairing = pairBatchResults(entries, result.units);
  t.equal(pairing.paired.length, 2000);
  t.equal(pairing.missing.length, 0);
  t.equal(result.header.total, 2000);
});

t.test('control API: settings, stats, list, reset', async (t) => {
  const ctl = (path: string, init?: RequestInit) => fetch(central.controlUrl + path, init);
  t.match(await (await ctl('/control/batch/settings')).json(), { readyAfterMs: 0, perEntryMs: 0, maxEntries: 2000 });
  const put = await ctl('/control/batch/settings', { method: 'PUT', body: JSON.stringify({ readyAfterMs: 60_000 }) });
  t.equal(put.status, 200);
  t.equal(central.batches.settings.readyAfterMs, 60_000);
  for (const bad of [{ readyAfterMs: -1 }, { maxEntries: 0 }, { perEntryMs: 'x' }, { nope: 1 }]) {
    t.equal(
      (await ctl('/control/batch/settings', { method: 'PUT', body: JSON.stringify(bad) })).status,
      400,
      JSON.stringify(bad),
    );
  }
  t.equal(central.batches.settings.readyAfterMs, 60_000, 'a refused patch changes nothing');
  const receipt = await client.submitBatch(batch(), { ...soon(), idempotencyKey: 'b-ctl' });
  const list = (await (await ctl('/control/batch/list')).json()) as Array<{
    receptionNumber: string;
    state: string;
    entries: number;
  }>;
  t.match(
    list.find((b) => b.receptionNumber === receipt.receptionNumber),
    { state: 'processing', entries: ENTRIES.length },
  );
  t.match(await (await ctl('/control/batch/stats')).json(), { submits: Number, fetches: Number });
  t.equal((await ctl('/control/reset', { method: 'POST' })).status, 204);
  t.strictSame(await (await ctl('/control/batch/list')).json(), [], 'reset forgets the batches');
  t.match(batchOutcome(await client.fetchBatch(receipt.receptionNumber!, INSTITUTION, soon())), { state: 'failed' });
  t.equal((await ctl('/control/batch/nope')).status, 404);
});

t.test('the batch endpoints are behind the login like the rest', async (t) => {
  const res = await new Promise<number>((resolve, reject) => {
    import('node:https').then(({ request }) => {
      const req = request(
        central.url + WEB_API_PATHS.batchFetch,
        {
          method: 'POST',
          ca: pki.centralCa.certPem,
          cert: pki.gatewayClient.certPem,
          key: pki.gatewayClient.keyPem,
          headers: { 'content-type': 'application/json' },
        },
        (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('{}');
    }, reject);
  });
  t.equal(res, 401, 'no idToken, no answer');
});
