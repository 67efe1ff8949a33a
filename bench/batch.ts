/**
 * 6. Batch: 2,000 reservations through the gateway's batch inquiry (API batch.submit →
 * batch.accepted {batchId}, batch.status, batch.results; events batch.progress / batch.done) with
 * central at 20 ms latency and no simulated processing time. The reference is the ideal for the
 * runner's concurrency: every call it made to central × 20 ms / the calls it had in flight
 * (`concurrency` from batch.accepted, 1 if it does not say).
 *
 * Written against the batch runner's API (branch batch); when the build has no batch inquiry the
 * benchmark reports `skipped` instead.
 */
import { FINAL_TYPES } from '../src/gateway/api-schema.js';
import { GatewayClient } from '../src/gateway/client.js';
import {
  cleanup, round, scaled, sleep, startCentral, startDaemon, tempDir, validQueries, writeDaemonConfig,
  type BenchContext, type BenchResult,
} from './lib.js';
import { LATENCY_MS } from './replay.js';

const NAME = 'batch';

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const target = `2,000 reservations through the batch inquiry at ${LATENCY_MS} ms central latency: ≤ 1.2 × the ideal for its concurrency`;
  if (!(FINAL_TYPES as readonly string[]).includes('batch.accepted')) {
    return { name: NAME, figures: {}, target, met: false, skipped: 'batch inquiry not in this build' };
  }
  const n = scaled(ctx, 2000, 200);
  const dir = tempDir('batch');
  const central = await startCentral();
  const cfg = writeDaemonConfig(dir, 'gw', { centralUrl: central.url });
  const daemon = await startDaemon(cfg.file);
  const client = await GatewayClient.connect(daemon.wsUrl, cfg.token);
  try {
    await central.settings({ latencyMs: LATENCY_MS });
    await central.batchSettings({ readyAfterMs: 0, perEntryMs: 0 });
    const queries = validQueries();
    const entries = Array.from({ length: n }, (_x, i) => ({ query: queries[i % queries.length]!, reservationId: `R${i}` }));
    const b0 = await central.batchStats();
    const t0 = performance.now();
    const accepted = await client.request({ type: 'batch.submit', entries });
    const batchId = accepted.batchId as string;
    let done = false;
    client.on('message', (m: Record<string, unknown>) => { if (m.type === 'batch.done' && m.batchId === batchId) done = true; });
    // the event, or batch.status saying so, whichever comes first
    while (!done) {
      const st = await client.request({ type: 'batch.status', batchId });
      if (['done', 'completed', 'failed'].includes(String((st.status as { state?: string } | undefined)?.state ?? st.state))) break;
      await sleep(20);
    }
    const ms = performance.now() - t0;
    const results = await client.request({ type: 'batch.results', batchId });
    const count = Array.isArray(results.results) ? results.results.length : NaN;
    const b1 = await central.batchStats();
    const calls = b1.submits + b1.fetches - b0.submits - b0.fetches;
    const concurrency = typeof accepted.concurrency === 'number' ? accepted.concurrency : 1;
    const ideal = Math.ceil(calls / concurrency) * LATENCY_MS;
    const figures = { entries: n, results: count, gateway_ms: round(ms, 1), central_calls: calls, concurrency, ideal_ms: ideal, ratio_to_ideal: round(ms / ideal) };
    return { name: NAME, figures, target, met: count === n && figures.ratio_to_ideal <= 1.2 };
  } finally {
    await client.close();
    await daemon.stop();
    await central.close();
    cleanup(dir);
  }
}
