/**
 * The time-lag recheck job over a real store (SQLite on disk, sealed personal fields) and a fake
 * central answering from the simulator's population on a day the test sets: scheduling rules,
 * attempts before the registration, the day it appears, failures, the end of the window.
 */
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DB_FILE, GatewayStore } from '../../src/cache/index.js';
import { OnshiError } from '../../src/core/errors.js';
import { EventHub, type GatewayEvent } from '../../src/protocol/events.js';
import { toNumbersQuery } from '../../src/checks/numbers.js';
import { toInquiryResult, type InquiryResult } from '../../src/checks/result.js';
import { silentLogger } from '../helpers/logger.js';
import { isFound, listRecheckItems, RecheckJob } from '../../src/checks/rechecks.js';
import { createReplay } from '../../src/checks/replay.js';
import { createJobs } from '../../src/daemon/jobs.js';
import { gatewayConfig } from '../helpers/gateway.js';
import type { QualificationRequest, QualificationResponse, Validity } from '../../src/oqs/types.js';
import { addDays, eligibilityByNumbers, seedPopulation, toResult } from '../../src/sim/central/population.js';
import type { CentralClient } from '../../src/sync/central-client.js';
import { subdir } from '../helpers/testdir.js';

const DAY1 = '20261201';
const DAY_MS = 86_400_000;

async function setup(t: Test, o: { all?: boolean; windowDays?: number } = {}) {
  const dir = subdir(t);
  const store = await GatewayStore.open({ dir });
  t.teardown(() => store.close());
  const people = seedPopulation(DAY1);
  const sim = { today: DAY1, fail: false, calls: 0 };
  const central = {
    async searchByNumbers(req: QualificationRequest): Promise<QualificationResponse> {
      sim.calls++;
      if (sim.fail) throw new OnshiError('CENTRAL_UNREACHABLE', 'line down', { retryable: true });
      const e = eligibilityByNumbers(people, req.query, req.confirmationDate, sim.today);
      return {
        header: {
          processTime: `${sim.today}090000`,
          confirmationDate: req.confirmationDate,
          institutionCode: req.institutionCode,
          referenceClassification: '2',
          segmentOfResult: '1',
          characterCode: '0',
        },
        body: {
          status: '1',
          validity: e.validity as Validity,
          results: e.matches.map((m) => toResult(m.person, m.qualification, false)),
        },
      };
    },
  } as unknown as CentralClient;
  const events = new EventHub();
  const seen: GatewayEvent[] = [];
  events.subscribe('test', ['rechecks'], (e) => seen.push(e));
  let now = new Date('2026-12-01T01:00:00Z');
  const logger = silentLogger();
  const job = new RecheckJob({
    enabled: true,
    all: o.all ?? false,
    windowDays: o.windowDays ?? 10,
    schedule: '0 7 * * *',
    store,
    central,
    events,
    logger,
    institutionCode: '1319999996',
    timeoutMs: 1000,
    now: () => now,
  });
  t.teardown(() => job.stop());
  const check = async (
    personId: string,
    qualification: number,
    opts: { changedInsurer?: boolean; arbitraryId?: string } = {},
  ) => {
    const p = people.find((x) => x.id === personId)!;
    const x = p.qualifications[qualification]!;
    const query = toNumbersQuery({
      insurerNumber: x.insurerNumber,
      number: x.number,
      birthdate: p.birthdate,
      ...(x.symbol ? { symbol: x.symbol } : {}),
      ...(x.branch ? { branch: x.branch } : {}),
      ...(opts.arbitraryId ? { arbitraryId: opts.arbitraryId } : {}),
    });
    const request: QualificationRequest = { confirmationDate: DAY1, institutionCode: '1319999996', query };
    const result: InquiryResult = toInquiryResult(
      await central.searchByNumbers(request, { deadline: Date.now() + 1000 }),
    );
    await job.consider(result, {
      request,
      clientId: 'c1',
      inquiryId: `inq-${personId}-${qualification}`,
      changedInsurer: opts.changedInsurer ?? false,
    });
    return result;
  };
  return {
    store,
    dir,
    sim,
    job,
    seen,
    check,
    people,
    central,
    events,
    logger,
    setNow: (d: Date) => {
      now = d;
    },
    getNow: () => now,
  };
}

t.test('isFound: 有効, or 新しい資格あり where there was none', async (t) => {
  t.ok(isFound('4', '1'));
  t.ok(isFound('2', '3'));
  t.ok(isFound('3', '1'));
  t.notOk(isFound('3', '3'), 'still the same answer');
  t.notOk(isFound('2', '2'));
  t.notOk(isFound('4', '4'));
});

t.test('only lag answers of flagged patients (or all, when on) are scheduled', async (t) => {
  const { check, store } = await setup(t);
  t.equal((await check('P0000018', 1)).timeLagRecheck, undefined, 'not flagged, all off');
  t.equal((await check('P0000001', 0, { changedInsurer: true })).timeLagRecheck, undefined, '有効 is not rechecked');
  const r = await check('P0000018', 1, { changedInsurer: true, arbitraryId: 'PAT-18' });
  t.equal(r.validity, '4');
  t.match(r.timeLagRecheck, { scheduled: true, id: Number, duplicate: false, until: '2026-12-11T01:00:00.000Z' });
  const items = listRecheckItems(store);
  t.match(
    items,
    [
      {
        state: 'scheduled',
        attempts: 0,
        client: 'c1',
        patientRef: 'PAT-18',
        until: '2026-12-11T01:00:00.000Z',
        nextAt: '2026-12-02T01:00:00.000Z',
      },
    ],
    "the admin page's RecheckItem shape",
  );

  const all = await setup(t, { all: true });
  t.match((await all.check('P0000006', 0)).timeLagRecheck, { scheduled: true }, 'rechecks.all: every 無効 answer');
});

t.test('the personal fields are sealed at rest; the lookup is a keyed hash', async (t) => {
  const { check, store, dir } = await setup(t);
  await check('P0000018', 0, { changedInsurer: true, arbitraryId: 'PAT-SECRET' });
  await store.close();
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  t.teardown(() => db.close());
  const row = db.prepare('SELECT * FROM rechecks').get() as Record<string, unknown>;
  const raw = Buffer.concat(Object.values(row).map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v))))).toString(
    'latin1',
  );
  for (const secret of ['PAT-SECRET', '1818', '19880808'])
    t.notOk(
      raw.includes(secret) || Buffer.concat(Object.values(row).filter(Buffer.isBuffer)).includes(Buffer.from(secret)),
      `${secret} is not stored in clear`,
    );
  t.equal(row.first_validity, '2');
  t.equal(row.state, 'scheduled');
});

t.test('day by day: waiting, a failed attempt, then found on day 4 (event + list); never reopened', async (t) => {
  const { check, job, sim, seen, store } = await setup(t);
  const a = (await check('P0000018', 1, { changedInsurer: true })).timeLagRecheck as { id: number };
  const b = (await check('P0000018', 0, { changedInsurer: true })).timeLagRecheck as { id: number };
  t.same(await job.run(), { checked: 2, found: 0, expired: 0, failed: 0, stillWaiting: 2 }, 'day 1');
  sim.today = addDays(DAY1, 1);
  sim.fail = true;
  t.match(await job.run(), { checked: 2, failed: 2 }, 'day 2: central unreachable');
  t.match(
    store.rechecks.get(a.id),
    { state: 'scheduled', attempts: 2, lastError: 'CENTRAL_UNREACHABLE' },
    'kept, tried again next time',
  );
  sim.fail = false;
  sim.today = addDays(DAY1, 2);
  t.match(await job.run(), { stillWaiting: 2 }, 'day 3');
  sim.today = addDays(DAY1, 3);
  t.match(await job.run(), { checked: 2, found: 2, stillWaiting: 0 }, 'day 4');
  const found = seen.filter((e) => e.event === 'recheck.found');
  t.equal(found.length, 2);
  t.match(found.find((e) => e.data.recheckId === a.id)?.data, {
    firstValidity: '4',
    validity: '1',
    clientId: 'c1',
    confirmationDate: DAY1,
    found: { insurances: [{ insurerNumber: '01130020' }] },
  });
  t.match(found.find((e) => e.data.recheckId === b.id)?.data, { firstValidity: '2', validity: '3' });
  t.match(store.rechecks.get(a.id), {
    state: 'found',
    attempts: 4,
    lastValidity: '1',
    found: { validity: '1' },
    settledAt: Date,
  });
  await store.rechecks.update(a.id, { state: 'scheduled', nextAt: new Date() });
  t.equal(store.rechecks.get(a.id)?.state, 'found', 'a settled recheck stays settled');
  t.match(await job.run(), { checked: 0 });
});

t.test('the window ends: recheck.expired, and no more attempts', async (t) => {
  const { check, job, seen, store, setNow, getNow, sim } = await setup(t, { windowDays: 2 });
  const { id } = (await check('P0000006', 0, { changedInsurer: true, arbitraryId: 'PAT-6' })).timeLagRecheck as {
    id: number;
  };
  const start = getNow().getTime();
  setNow(new Date(start + DAY_MS));
  t.match(await job.run(), { checked: 1, stillWaiting: 1 });
  setNow(new Date(start + 2 * DAY_MS));
  const calls = sim.calls;
  t.match(await job.run(), { checked: 0, expired: 1 });
  t.equal(sim.calls, calls, 'central was not asked after the window');
  t.match(
    seen.filter((e) => e.event === 'recheck.expired').map((e) => e.data),
    [{ recheckId: id, patientRef: 'PAT-6', firstValidity: '2', lastValidity: '2', attempts: 1, message: /資格確認書/ }],
  );
  t.match(store.rechecks.get(id), { state: 'expired', settledAt: Date });
  t.match(listRecheckItems(store)[0], { state: 'expired', lastResult: '無効' });
});

t.test('one open recheck per patient; a bad schedule is refused', async (t) => {
  const { check } = await setup(t);
  const first = (await check('P0000018', 0, { changedInsurer: true })).timeLagRecheck as { id: number };
  t.match((await check('P0000018', 0, { changedInsurer: true })).timeLagRecheck, { id: first.id, duplicate: true });
  // The daily run is scheduled by the daemon's jobs service, which refuses the schedule before anything starts.
  const config = gatewayConfig('/nonexistent', 'https://127.0.0.1:1');
  t.throws(
    () =>
      createJobs(
        { ...config, rechecks: { ...config.rechecks, enabled: true, schedule: 'every day' } },
        { logger: silentLogger(), revocation: false },
      ),
    { code: 'CONFIG_INVALID', message: /rechecks\.schedule "every day"/ },
  );
});

t.test('an outage check replayed when the line is back schedules its recheck like a live answer (once)', async (t) => {
  const { store, central, events, logger, job, people, seen } = await setup(t);
  const replay = createReplay({ central, store, events, logger, timeoutMs: 1000, rechecks: job });
  const p = people.find((x) => x.id === 'P0000018')!;
  const x = p.qualifications[1]!;
  const request: QualificationRequest = {
    confirmationDate: DAY1,
    institutionCode: '1319999996',
    query: toNumbersQuery({
      insurerNumber: x.insurerNumber,
      symbol: x.symbol!,
      number: x.number,
      branch: x.branch!,
      birthdate: p.birthdate,
    }),
  };
  const entry = (changedInsurer: boolean, id: number) => ({
    id,
    idempotencyKey: `k${id}`,
    kind: 'numbers',
    createdAt: new Date(),
    attempts: 1,
    payload: {
      request,
      told: { source: 'none', insurances: [] },
      toldAt: new Date().toISOString(),
      inquiryId: `outage-${id}`,
      clientId: 'c1',
      ...(changedInsurer ? { changedInsurer } : {}),
    },
  });
  await replay(entry(false, 1));
  t.same(store.rechecks.list(), [], 'not flagged: nothing scheduled');
  await replay(entry(true, 2));
  await replay(entry(true, 2));
  t.equal(store.rechecks.list().length, 1, 'scheduled once');
  t.match(
    store.rechecks.list(),
    [{ state: 'scheduled', firstValidity: '4', personal: { inquiryId: 'outage-2' } }],
    'for the outage check',
  );
  t.match(
    seen.filter((e) => e.event === 'recheck.scheduled'),
    [{ data: { inquiryId: 'outage-2' } }],
  );
});
