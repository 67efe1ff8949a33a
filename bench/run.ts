/**
 * `npm run bench`: runs every benchmark, each paired with its reference measured in the same run,
 * and prints a readable table (stderr) and one JSON object of figures (stdout). Benchmarks never
 * fail the test suite; `met` says whether a target was reached on this machine.
 * `npm run bench -- card-path` runs only the named ones.
 */
import { cpus, totalmem } from 'node:os';

export interface BenchResult { name: string; figures: Record<string, number>; target: string; met: boolean; note?: string }

const BENCHES: Record<string, () => Promise<{ run(): Promise<BenchResult> }>> = {
  'card-path': () => import('./card-path.js'),
};

const only = process.argv.slice(2);
const results: BenchResult[] = [];
for (const [name, load] of Object.entries(BENCHES)) {
  if (only.length > 0 && !only.includes(name)) continue;
  process.stderr.write(`bench: ${name} …\n`);
  try {
    results.push(await (await load()).run());
  } catch (e) {
    results.push({ name, figures: {}, target: '', met: false, note: `could not run: ${(e as Error).message}` });
  }
}

const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, at: new Date().toISOString() };
for (const r of results) {
  process.stderr.write(`\n${r.name}: ${r.met ? 'target met' : 'TARGET MISSED'} (${r.target})${r.note ? `\n  note: ${r.note}` : ''}\n`);
  for (const [k, v] of Object.entries(r.figures)) process.stderr.write(`  ${k.padEnd(32)} ${Number.isInteger(v) ? v : v.toFixed(3)}\n`);
}
process.stdout.write(JSON.stringify({ machine, results }, null, 2) + '\n');
process.exit(0);
