/**
 * Starts the writer worker, from `dist/` (plain .js) or from `src/` (.ts, in tests and tsx runs).
 * Worker threads do not reliably inherit a TypeScript loader: tsx registers its hooks only on the
 * main thread, so for .ts sources the worker is booted through tsx's register() API; without tsx,
 * it falls back to inheriting the parent's execArgv (works with tap's ts-node import hook). The
 * test runner may instead name a bundle of the same sources (ONSHI_TEST_WRITER_MODULE), honoured
 * only when running from source.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { WorkerInit } from './protocol.js';

/**
 * The writer's own V8 heap, sized for what it does. Its young generation would otherwise grow as
 * the main thread's may (V8's default, up to 16 MB semi-spaces): the writer's garbage is a request's
 * arguments and rows, so a small one is enough and costs no measurable commit rate. The old
 * generation is capped far above the measured peak — 27 MB used at most with 40 batches of
 * 300-entry parts, 40 chunk results of 200 and 60,000 outbox entries (64 in flight) at once —
 * so that only a runaway, never a big batch, reaches it (the store then fails with
 * STORE_WORKER_FAILED instead of the appliance swapping). Under the systemd unit, node's
 * --max-semi-space-size=2 (process-wide) takes precedence over the young-generation size here.
 */
export const WRITER_RESOURCE_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 128 };

export function spawnWriter(init: WorkerInit): Worker {
  const resourceLimits = WRITER_RESOURCE_LIMITS;
  const fromSource = import.meta.url.endsWith('.ts');
  if (!fromSource)
    return new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: init, resourceLimits });
  // scripts/test.sh bundles the writer from these sources once per run (esbuild): booting tsx in
  // every worker took ~150 ms of each store's open, hundreds of times in a run.
  const bundled = process.env['ONSHI_TEST_WRITER_MODULE'];
  if (bundled) return new Worker(bundled, { workerData: init, execArgv: [], resourceLimits });
  const entry = new URL('./writer-worker.ts', import.meta.url).href;
  let tsxApi: string | undefined;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    /* not installed: inherit the loader */
  }
  if (tsxApi === undefined) return new Worker(new URL(entry), { workerData: init, resourceLimits });
  const boot =
    `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })` +
    `.catch((e) => { process.nextTick(() => { throw e; }); });`;
  return new Worker(boot, { eval: true, workerData: init, execArgv: [], resourceLimits });
}
