/**
 * 6. Batch: 2,000 reservations through the gateway's batch inquiry (API batch.submit →
 * batch.accepted {batchId}, batch.status, batch.results; events batch.progress / batch.done) with
 * central at 20 ms latency and no simulated processing time. The reference is the ideal for the
 * runner's concurrency: rounds of `batch.concurrency` chunks, each one submit, the first poll wait
 * and one fetch. The entries go in parts of BATCH_PART_MAX, as a receipt computer sends them.
 */
import { cpus } from 'node:os';
import { BATCH_PART_MAX, FINAL_TYPES } from '../src/protocol/schema.js';
import { validateConfig } from '../src/core/config.js';
import { todayJst } from '../src/oqs/dates.js';
import { GatewayClient } from '../src/client/index.js';
import {
  cleanup,
  cpuMsOf,
  round,
  scaled,
  sleep,
  startCentral,
  startDaemon,
  tempDir,
  validQueries,
  writeDaemonConfig,
  type BenchContext,
  type BenchResult,
} from './lib.js';
import { LATENCY_MS } from './replay.js';

const NAME = 'batch';
/** Chunks of 200 (10 for 2,000 entries) so the concurrency is exercised; the shortest first poll. */
const BATCH = { chunkSize: 200, pollMs: 100, concurrency: 2 };

export async function run(ctx: BenchContext): Promise<BenchResult> {
  const target = `2,000 reservations through the batch inquiry at ${LATENCY_MS} ms central latency: ≤ 1.2 × the ideal for its concurrency`;
  if (!(FINAL_TYPES as readonly string[]).includes('batch.accepted')) {
    return { name: NAME, figures: {}, target, met: false, skipped: 'batch inquiry not in this build' };
  }
  const n = scaled(ctx, 2000, 200);
  const dir = tempDir('batch');
  const central = await startCentral();
  const cfg = writeDaemonConfig(dir, 'gw', { centralUrl: central.url, batch: BATCH });
  const daemon = await startDaemon(cfg.file);
  const client = await GatewayClient.connect(daemon.wsUrl, cfg.token);
  try {
    await central.settings({ latencyMs: LATENCY_MS });
    await central.batchSettings({ readyAfterMs: 0, perEntryMs: 0 });
    const queries = validQueries();
    const entries = Array.from({ length: n }, (_x, i) => ({ arbitraryId: `R${i}`, ...queries[i % queries.length]! }));
    const { concurrency, chunkSize, pollMs } = validateConfig({ batch: BATCH }).batch;
    const b0 = await central.batchStats();
    let t0 = 0;
    let cpu0 = { daemon: 0, central: 0 };
    // Parts of at most BATCH_PART_MAX entries (one frame each); the last one closes the batch.
    let batchId: string | undefined;
    for (let at = 0; at < n; at += BATCH_PART_MAX) {
      const part = entries.slice(at, at + BATCH_PART_MAX);
      const final = at + BATCH_PART_MAX >= n;
      const accepted = await client.request({
        type: 'batch.submit',
        ...(batchId ? { batchId } : { confirmationDate: todayJst(), run: 'now' }),
        final,
        entries: part,
      });
      batchId = accepted.batchId as string;
      // The batch starts when its last part is accepted: the clock starts there too.
      if (final) {
        t0 = performance.now();
        cpu0 = { daemon: daemon.cpuMs(), central: cpuMsOf(central.pid) };
      }
    }
    for (;;) {
      const st = await client.request({ type: 'batch.status', batchId: batchId! });
      if (['done', 'failed'].includes((st.batch as { state: string }).state)) break;
      await sleep(20);
    }
    const ms = performance.now() - t0;
    // What the batch cost each process while the clock ran (CPU, all threads): on a busy 2-core
    // machine the wall time is theirs to share with everything else.
    const cpu = { daemon: daemon.cpuMs() - cpu0.daemon, central: cpuMsOf(central.pid) - cpu0.central };
    let count = 0;
    for (let from: number | undefined = 0; from !== undefined; ) {
      const page = await client.request({ type: 'batch.results', batchId: batchId!, from, limit: 500 });
      count += (page.results as unknown[]).length;
      from = page.next as number | undefined;
    }
    const b1 = await central.batchStats();
    const calls = b1.submits + b1.fetches - b0.submits - b0.fetches;
    // Ideal for its concurrency: rounds of `concurrency` chunks, each a submit, the first poll wait
    // (central is never ready at once in real life) and one fetch.
    const ideal = Math.ceil(Math.ceil(n / chunkSize) / concurrency) * (2 * LATENCY_MS + pollMs);
    const figures = {
      entries: n,
      results: count,
      gateway_ms: round(ms, 1),
      central_calls: calls,
      concurrency,
      ideal_ms: ideal,
      ratio_to_ideal: round(ms / ideal),
      daemon_cpu_ms: round(cpu.daemon, 0),
      central_cpu_ms: round(cpu.central, 0),
    };
    const met = count === n && figures.ratio_to_ideal <= 1.2;
    const rounds = Math.ceil(Math.ceil(n / chunkSize) / concurrency);
    // The ideal counts only waiting; on this machine the work is not free: say how much there was.
    const note = met
      ? undefined
      : `the daemon used ${round(cpu.daemon / rounds, 0)} ms of CPU a round (decoding central's ${chunkSize * concurrency} results, pairing, encrypting, ` +
        `committing) and the simulator ${round(cpu.central / rounds, 0)} ms, against an ideal round of ${2 * LATENCY_MS + pollMs} ms of waiting; ` +
        `both processes share ${cpus().length} cores with whatever else runs`;
    return { name: NAME, figures, target, met, ...(note ? { note } : {}) };
  } finally {
    await client.close();
    await daemon.stop();
    await central.close();
    cleanup(dir);
  }
}
