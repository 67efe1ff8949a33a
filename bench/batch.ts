/**
 * 6. Batch: 2,000 reservations through the gateway's batch inquiry (API batch.submit →
 * batch.accepted {batchId}, batch.status, batch.results; events batch.progress / batch.done) with
 * central at 20 ms latency and no simulated processing time. The reference is the ideal for the
 * runner's concurrency: rounds of `batch.concurrency` chunks, each one submit, the first poll wait
 * and one fetch. The entries go in parts of BATCH_PART_MAX, as a receipt computer sends them; the
 * clock runs from the last part's batch.accepted to the batch.done event.
 */
import { cpus } from 'node:os';
import { BATCH_PART_MAX, FINAL_TYPES } from '../src/protocol/schema.js';
import { validateConfig } from '../src/core/config.js';
import { todayJst } from '../src/oqs/dates.js';
import { type Answer, GatewayClient } from '../src/client/index.js';
import { toNumbersQuery } from '../src/checks/numbers.js';
import { batchOutcome } from '../src/oqs/batch.js';
import {
  centralClient,
  cleanup,
  pool,
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
/** The longest the batch may take before the run is failed (it takes about a second here). */
const DONE_WITHIN_MS = 60_000;

/**
 * The reference in the same run: the same chunks through the gateway's own CentralClient and codecs
 * straight to the simulator, in the runner's schedule (`concurrency` chunks at once, each a submit,
 * the first poll wait, fetches until done) — no store, encryption, pairing, events or API. What it
 * takes over the ideal is the simulator's work and the hops on this machine, which no gateway saves.
 */
async function bareBatch(
  url: string,
  entries: Array<Parameters<typeof toNumbersQuery>[0]>,
  o: { chunkSize: number; concurrency: number; pollMs: number },
): Promise<number> {
  const central = centralClient(url);
  const chunks = Array.from({ length: Math.ceil(entries.length / o.chunkSize) }, (_x, i) =>
    entries.slice(i * o.chunkSize, (i + 1) * o.chunkSize).map(toNumbersQuery),
  );
  try {
    return await pool(chunks.length, o.concurrency, async (i) => {
      const deadline = Date.now() + 30_000;
      const receipt = await central.submitBatch(
        { confirmationDate: todayJst(), institutionCode: '1319999996', fileId: `bare-${i}`, entries: chunks[i]! },
        { deadline, idempotencyKey: `bare-${Date.now()}-${i}` },
      );
      for (let attempt = 0; ; attempt++) {
        await sleep(o.pollMs * 2 ** attempt);
        const result = await central.fetchBatch(receipt.receptionNumber!, '1319999996', { deadline });
        if (batchOutcome(result).state !== 'pending') return;
      }
    });
  } finally {
    central.close();
  }
}

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
    let t0 = 0;
    let cpu0 = { daemon: 0, central: 0 };
    // Parts of at most BATCH_PART_MAX entries (one frame each); the last one closes the batch.
    // the reference before and after the gateway's batch (the mean of the two), in the same run
    const bareMs = [await bareBatch(central.url, entries, { concurrency, chunkSize, pollMs })];
    const b0 = await central.batchStats();
    let batchId: string | undefined;
    // The clock stops at batch.done, as a subscribed receipt computer learns it: polling
    // batch.status every 20 ms (as this benchmark did up to the fifth round) added half a poll
    // on average and the polls' own work to the figure.
    await client.subscribe(['batches']);
    const done = new Promise<void>((resolve) => {
      const off = client.onEvent('batches', (e) => {
        if (e.event !== 'batch.done' || e.data.batchId !== batchId) return;
        off();
        resolve();
      });
    });
    for (let at = 0; at < n; at += BATCH_PART_MAX) {
      const part = entries.slice(at, at + BATCH_PART_MAX);
      const final = at + BATCH_PART_MAX >= n;
      const accepted = await client.request({
        type: 'batch.submit',
        ...(batchId ? { batchId } : { confirmationDate: todayJst(), run: 'now' }),
        final,
        entries: part,
      });
      batchId = accepted.batchId;
      // The batch starts when its last part is accepted: the clock starts there too.
      if (final) {
        t0 = performance.now();
        if (process.env.BENCH_WINDOW) console.error(`WINDOW_START ${process.hrtime.bigint() / 1000n}`);
        cpu0 = { daemon: daemon.cpuMs(), central: cpuMsOf(central.pid) };
      }
    }
    // a daemon that died or hung fails the run (as the polls' requests did) rather than leaving it waiting
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no batch.done for batch ${batchId} within ${DONE_WITHIN_MS} ms`)),
          DONE_WITHIN_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const ms = performance.now() - t0;
    if (process.env.BENCH_WINDOW) console.error(`WINDOW_END ${process.hrtime.bigint() / 1000n}`);
    // What the batch cost each process while the clock ran (CPU, all threads): on a busy 2-core
    // machine the wall time is theirs to share with everything else.
    const cpu = { daemon: daemon.cpuMs() - cpu0.daemon, central: cpuMsOf(central.pid) - cpu0.central };
    let count = 0;
    for (let from: number | undefined = 0; from !== undefined; ) {
      const page: Answer<'batch.results'> = await client.request({
        type: 'batch.results',
        batchId: batchId!,
        from,
        limit: 500,
      });
      count += page.results.length;
      from = page.next;
    }
    const b1 = await central.batchStats();
    bareMs.push(await bareBatch(central.url, entries, { concurrency, chunkSize, pollMs }));
    const bare = (bareMs[0]! + bareMs[1]!) / 2;
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
      bare_client_ms: round(bare, 1),
      bare_client_ratio_to_ideal: round(bare / ideal),
      gateway_to_bare_client: round(ms / bare),
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
        `both processes share ${cpus().length} cores with whatever else runs; the bare client (the same chunks straight to the simulator, ` +
        `no gateway) takes ${round(bare / ideal)} × the ideal in the same run, the gateway ${round(ms / bare)} × the bare client`;
    return { name: NAME, figures, target, met, ...(note ? { note } : {}) };
  } finally {
    await client.close();
    await daemon.stop();
    await central.close();
    cleanup(dir);
  }
}
