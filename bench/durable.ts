/**
 * 4. Durable writes: outbox commits per second through the store (writer worker, one
 * synchronous=FULL commit per awaited enqueue) against a bare better-sqlite3 loop doing the same
 * single-row synchronous=FULL inserts on the main thread, in interleaved blocks on the same disk;
 * and the event loop's lag (p99) while the store commits. A third party in the same blocks, the
 * same bare loop in a worker thread awaited one insert at a time, is the least an off-the-event-
 * loop writer can cost: bare-in-worker ÷ bare is the thread hand-off alone on this machine.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { GatewayStore } from '../src/cache/index.js';
import {
  cleanup,
  interleaved,
  percentile,
  round,
  scaled,
  tempDir,
  type BenchContext,
  type BenchResult,
} from './lib.js';

const BLOCK = 100;

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const dir = tempDir('durable');
  const store = await GatewayStore.open({ dir: join(dir, 'store'), outboxMax: 1_000_000 });
  const bare = new Database(join(dir, 'bare.db'));
  bare.pragma('journal_mode = WAL');
  bare.pragma('synchronous = FULL');
  bare.exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    payload BLOB NOT NULL, created_at INTEGER NOT NULL, state TEXT NOT NULL)`);
  const insert = bare.prepare(
    `INSERT INTO outbox (idempotency_key, kind, payload, created_at, state) VALUES (?, 'numbers', ?, ?, 'pending')`,
  );
  // a payload the size of a real numbers check (request + what the counter was told)
  const payload = {
    request: {
      confirmationDate: '20261201',
      institutionCode: '1319999996',
      fileId: randomUUID(),
      query: {
        insurerNumber: '06139992',
        symbol: 'テスト',
        number: '12345',
        branch: '00',
        birthdate: '19800401',
        limitConsent: '0',
      },
    },
    inquiryId: randomUUID(),
    told: { source: 'cache', status: '1', validity: '1', validityLabel: '有効', insurances: [] },
    toldAt: new Date().toISOString(),
  };
  const payloadBytes = Buffer.from(JSON.stringify(payload));
  // the bare loop behind a thread hand-off: one message in, one insert + commit, one message out
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
const Database = require('better-sqlite3');
const db = new Database(workerData);
db.pragma('journal_mode = WAL'); db.pragma('synchronous = FULL');
db.exec('CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, payload BLOB NOT NULL, created_at INTEGER NOT NULL, state TEXT NOT NULL)');
const insert = db.prepare("INSERT INTO outbox (idempotency_key, kind, payload, created_at, state) VALUES (?, 'numbers', ?, ?, 'pending')");
parentPort.on('message', (m) => { insert.run(m.key, m.payload, Date.now()); parentPort.postMessage(m.n); });`,
    { eval: true, workerData: join(dir, 'bare-worker.db') },
  );
  const inWorker = (payload: Buffer, n: number): Promise<void> =>
    new Promise((resolve) => {
      worker.once('message', () => resolve());
      worker.postMessage({ key: randomUUID(), payload, n });
    });
  // The event loop's lag while the store commits, sampled by a 1 ms timer during our blocks only.
  // (Not monitorEventLoopDelay with enable/disable around each block: its first interval after a
  // re-enable spans the time it was disabled, which here is the bare loop blocking on purpose.)
  const lagMs: number[] = [];
  const watchLag = (): (() => void) => {
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      lagMs.push(Math.max(0, now - last - 1));
      last = now;
    }, 1);
    return () => clearInterval(timer);
  };
  let oursMs = 0,
    refMs = 0,
    oursN = 0,
    refN = 0,
    workerMs = 0,
    workerN = 0,
    turn = 0;
  try {
    const ours = async (): Promise<number[]> => {
      const stopWatch = watchLag();
      const t0 = performance.now();
      for (let k = 0; k < BLOCK; k++)
        await store.outbox.enqueue({ idempotencyKey: randomUUID(), kind: 'numbers', payload });
      oursMs += performance.now() - t0;
      oursN += BLOCK;
      stopWatch();
      return [];
    };
    const bareInWorker = async (): Promise<void> => {
      const t0 = performance.now();
      for (let k = 0; k < BLOCK; k++) await inWorker(payloadBytes, k);
      workerMs += performance.now() - t0;
      workerN += BLOCK;
    };
    const ref = async (): Promise<number[]> => {
      const first = turn++ % 2 === 0;
      if (!first) await bareInWorker();
      const t0 = performance.now();
      for (let k = 0; k < BLOCK; k++) insert.run(randomUUID(), payloadBytes, Date.now());
      refMs += performance.now() - t0;
      refN += BLOCK;
      if (first) await bareInWorker();
      return [];
    };
    await interleaved(2, ours, ref);
    oursMs = refMs = oursN = refN = workerMs = workerN = 0;
    lagMs.length = 0;
    await interleaved(scaled(ctx, 20, 2), ours, ref);
    const oursRate = oursN / (oursMs / 1000),
      refRate = refN / (refMs / 1000),
      workerRate = workerN / (workerMs / 1000);
    // group commit: the same entries with 16 in flight (as when many counters check during an outage)
    const tg = performance.now();
    const groupN = scaled(ctx, 2000, 200);
    for (let k = 0; k < groupN; k += 16) {
      await Promise.all(
        Array.from({ length: 16 }, () =>
          store.outbox.enqueue({ idempotencyKey: randomUUID(), kind: 'numbers', payload }),
        ),
      );
    }
    const groupRate = groupN / ((performance.now() - tg) / 1000);
    const figures = {
      store_commits_per_s: round(oursRate, 1),
      bare_commits_per_s: round(refRate, 1),
      rate_ratio: round(oursRate / refRate),
      bare_in_worker_commits_per_s: round(workerRate, 1),
      hand_off_ratio: round(workerRate / refRate),
      store_to_bare_in_worker: round(oursRate / workerRate),
      event_loop_lag_p99_ms: round(percentile(lagMs, 99)),
      event_loop_lag_max_ms: round(Math.max(...lagMs)),
      store_16_in_flight_per_s: round(groupRate, 1),
      commits: oursN,
    };
    return {
      name: 'durable-writes',
      figures,
      // The reference is the bare loop in a worker thread (the least an off-the-event-loop writer
      // costs): the first round's 0.5 × the main-thread loop is retired (issue 22: the hand-off
      // alone leaves a bare loop at ~0.6 × it here); its ratio stays as rate_ratio.
      target:
        'outbox commits/s ≥ 0.5 × a bare better-sqlite3 synchronous=FULL insert loop in a worker thread (awaited one at a time); event-loop lag p99 ≤ 20 ms while committing',
      met: figures.store_to_bare_in_worker >= 0.5 && figures.event_loop_lag_p99_ms <= 20,
      ...(figures.store_to_bare_in_worker < 0.5
        ? {
            note: `the store commits at ${figures.store_to_bare_in_worker} × the bare loop in a worker thread (an enqueue writes the outbox row with its three indexes and the depth counter, and seals the payload); the thread hand-off alone leaves that bare loop at ${figures.hand_off_ratio} × its main-thread rate (retired target: ${figures.rate_ratio} × the main-thread loop)`,
          }
        : {}),
    };
  } finally {
    bare.close();
    await worker.terminate();
    await store.close();
    cleanup(dir);
  }
}
