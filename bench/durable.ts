/**
 * 4. Durable writes: outbox commits per second through the store (writer worker, one
 * synchronous=FULL commit per awaited enqueue) against a bare better-sqlite3 loop doing the same
 * single-row synchronous=FULL inserts on the main thread, in interleaved blocks on the same disk;
 * and the event loop's lag (p99) while the store commits.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GatewayStore } from '../src/cache/index.js';
import { cleanup, interleaved, round, scaled, tempDir, type BenchContext, type BenchResult } from './lib.js';

const BLOCK = 100;

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const dir = tempDir('durable');
  const store = await GatewayStore.open({ dir: join(dir, 'store'), outboxMax: 1_000_000 });
  const bare = new Database(join(dir, 'bare.db'));
  bare.pragma('journal_mode = WAL');
  bare.pragma('synchronous = FULL');
  bare.exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    payload BLOB NOT NULL, created_at INTEGER NOT NULL, state TEXT NOT NULL)`);
  const insert = bare.prepare(`INSERT INTO outbox (idempotency_key, kind, payload, created_at, state) VALUES (?, 'numbers', ?, ?, 'pending')`);
  // a payload the size of a real numbers check (request + what the counter was told)
  const payload = { request: { confirmationDate: '20261201', institutionCode: '1319999996', fileId: randomUUID(), query: { insurerNumber: '06139992', symbol: 'テスト', number: '12345', branch: '00', birthdate: '19800401', limitConsent: '0' } }, inquiryId: randomUUID(), told: { source: 'cache', status: '1', validity: '1', validityLabel: '有効', insurances: [] }, toldAt: new Date().toISOString() };
  const payloadBytes = Buffer.from(JSON.stringify(payload));
  const lag = monitorEventLoopDelay({ resolution: 1 });
  let oursMs = 0, refMs = 0, oursN = 0, refN = 0;
  try {
    const ours = async (): Promise<number[]> => {
      lag.enable();
      const t0 = performance.now();
      for (let k = 0; k < BLOCK; k++) await store.enqueue({ idempotencyKey: randomUUID(), kind: 'numbers', payload });
      oursMs += performance.now() - t0; oursN += BLOCK;
      lag.disable();
      return [];
    };
    const ref = async (): Promise<number[]> => {
      const t0 = performance.now();
      for (let k = 0; k < BLOCK; k++) insert.run(randomUUID(), payloadBytes, Date.now());
      refMs += performance.now() - t0; refN += BLOCK;
      return [];
    };
    await interleaved(2, ours, ref);
    oursMs = refMs = oursN = refN = 0;
    lag.reset();
    await interleaved(scaled(ctx, 20, 2), ours, ref);
    const oursRate = oursN / (oursMs / 1000), refRate = refN / (refMs / 1000);
    // group commit: the same entries with 16 in flight (as when many counters check during an outage)
    const tg = performance.now();
    const groupN = scaled(ctx, 2000, 200);
    for (let k = 0; k < groupN; k += 16) {
      await Promise.all(Array.from({ length: 16 }, () => store.enqueue({ idempotencyKey: randomUUID(), kind: 'numbers', payload })));
    }
    const groupRate = groupN / ((performance.now() - tg) / 1000);
    const figures = {
      store_commits_per_s: round(oursRate, 1), bare_commits_per_s: round(refRate, 1), rate_ratio: round(oursRate / refRate),
      event_loop_lag_p99_ms: round(lag.percentile(99) / 1e6), event_loop_lag_max_ms: round(lag.max / 1e6),
      store_16_in_flight_per_s: round(groupRate, 1), commits: oursN,
    };
    return {
      name: 'durable-writes', figures,
      target: 'outbox commits/s ≥ 0.5 × a bare better-sqlite3 synchronous=FULL insert loop; event-loop lag p99 ≤ 20 ms while committing',
      met: figures.rate_ratio >= 0.5 && figures.event_loop_lag_p99_ms <= 20,
    };
  } finally {
    bare.close();
    await store.close();
    cleanup(dir);
  }
}
