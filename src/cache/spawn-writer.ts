/**
 * Starts the writer worker, from `dist/` (plain .js) or from `src/` (.ts, in tests and tsx runs).
 * Worker threads do not reliably inherit a TypeScript loader: tsx registers its hooks only on the
 * main thread, so for .ts sources the worker is booted through tsx's register() API; without tsx,
 * it falls back to inheriting the parent's execArgv (works with tap's ts-node import hook).
 */
import { Worker } from 'node:worker_threads';
import type { WorkerInit } from './protocol.js';

export function spawnWriter(init: WorkerInit): Worker {
  const fromSource = import.meta.url.endsWith('.ts');
  if (!fromSource) return new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: init });
  const entry = new URL('./writer-worker.ts', import.meta.url).href;
  let tsxApi: string | undefined;
  try { tsxApi = import.meta.resolve('tsx/esm/api'); } catch { /* not installed: inherit the loader */ }
  if (tsxApi === undefined) return new Worker(new URL(entry), { workerData: init });
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`
    + `.catch((e) => { process.nextTick(() => { throw e; }); });`;
  return new Worker(boot, { eval: true, workerData: init, execArgv: [] });
}
