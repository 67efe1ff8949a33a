/**
 * `npm run bench`: runs every benchmark, each paired with its reference measured in the same run,
 * and prints a readable table (stderr) and one JSON object of figures (stdout). Benchmarks never
 * fail the test suite; `met` says whether a target was reached on this machine.
 *
 *   npm run bench                          everything (the soak takes BENCH_SOAK_S, default 600 s)
 *   npm run bench -- --quick               everything shortened, for development
 *   npm run bench -- replay growth         only the named ones
 */
import { cpus, totalmem } from 'node:os';
import { ensureBuilt, type BenchContext, type BenchResult } from './lib.js';

const BENCHES: Record<string, () => Promise<{ run(ctx: BenchContext): Promise<BenchResult> }>> = {
  'gateway-overhead': () => import('./overhead.js'),
  'outage-answer': () => import('./outage.js'),
  'card-path': () => import('./card-path.js'),
  'durable-writes': () => import('./durable.js'),
  replay: () => import('./replay.js'),
  batch: () => import('./batch.js'),
  growth: () => import('./growth.js'),
  footprint: () => import('./footprint.js'),
};

const args = process.argv.slice(2);
const ctx: BenchContext = { quick: args.includes('--quick') };
const only = args.filter((a) => !a.startsWith('--'));
for (const name of only) {
  if (!(name in BENCHES)) {
    process.stderr.write(`bench: unknown benchmark ${name} (known: ${Object.keys(BENCHES).join(', ')})\n`);
    process.exit(2);
  }
}
ensureBuilt();

const results: BenchResult[] = [];
for (const [name, load] of Object.entries(BENCHES)) {
  if (only.length > 0 && !only.includes(name)) continue;
  process.stderr.write(`bench: ${name} …\n`);
  const t0 = performance.now();
  try {
    results.push(await (await load()).run(ctx));
  } catch (e) {
    results.push({
      name,
      figures: {},
      target: '',
      met: false,
      note: `could not run: ${(e as Error).stack ?? (e as Error).message}`,
    });
  }
  process.stderr.write(`bench: ${name} took ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  arch: process.arch,
  memGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  at: new Date().toISOString(),
  quick: ctx.quick,
};
for (const r of results) {
  const verdict = r.skipped ? `SKIPPED: ${r.skipped}` : r.met ? 'target met' : 'TARGET MISSED';
  process.stderr.write(
    `\n${r.name}: ${verdict}${r.target ? ` (${r.target})` : ''}${r.note ? `\n  note: ${r.note}` : ''}\n`,
  );
  for (const [k, v] of Object.entries(r.figures))
    process.stderr.write(`  ${k.padEnd(32)} ${Number.isInteger(v) ? v : v.toFixed(3)}\n`);
}
process.stdout.write(JSON.stringify({ machine, results }, null, 2) + '\n');
process.exit(0);
