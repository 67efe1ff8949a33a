/**
 * One case of the failed-start test (test/integration/daemon-failed-start.test.ts), in a process of
 * its own: starts the gateway with `failAt` (or starts and closes it, with "-"), then writes what
 * the process still holds — threads, open files and sockets, active handles and timers, node-cron
 * tasks — next to what it held before the start. Nothing here keeps the process alive: the parent
 * checks that it exits on its own.
 * Usage: node --import ./test/helpers/ts-register.mjs failed-start-child.ts <config.json> <failAt|-> <result.json>
 */
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Writable } from 'node:stream';
import cron from 'node-cron';
import { validateConfig } from '../../src/core/config.js';
import { codeOf } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { startGateway } from '../../src/daemon/index.js';
import { gainedFds } from './held-fds.js';

export interface Held {
  threads: number;
  fds: string[];
  resources: string[];
  cronTasks: number;
}

export interface ChildResult {
  started: boolean;
  code?: string;
  before: Held;
  after: Held;
  /** the steps the lifecycle had started when the start failed (its start_failed log event) */
  startedSteps?: string[];
}

const [configFile, failAt, resultFile] = process.argv.slice(2) as [string, string, string];

function held(): Held {
  const fds = readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return []; // the directory handle readdirSync itself used, already closed
    }
  });
  return {
    threads: readdirSync('/proc/self/task').length,
    fds: fds.filter((f) => !f.startsWith('/proc/')).sort(),
    resources: process.getActiveResourcesInfo().sort(),
    cronTasks: cron.getTasks().size,
  };
}

// libuv starts its whole thread pool on first use: let that happen before the baseline.
await stat('.');
const config = validateConfig(JSON.parse(readFileSync(configFile, 'utf8')));
const lines: string[] = [];
const stream = new Writable({
  write(chunk, _enc, cb) {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    cb();
  },
});
const logger = createLogger({ level: 'info', stream });
const before = held();
const result: Omit<ChildResult, 'after'> = { started: false, before };
try {
  const gateway = await startGateway(config, { logger, ...(failAt === '-' ? {} : { failAt }) });
  result.started = true;
  await gateway.close();
} catch (e) {
  result.code = codeOf(e);
}
// Closed handles are released on the loop's next turns; a socket's descriptor may take a few more
// on a loaded machine (closed, no longer an active handle, its fd freed by a later turn). Wait until
// nothing is open beyond the baseline, up to a ceiling: a real leak stays open, and the test sees it.
for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
for (const until = Date.now() + 3000; gainedFds(before.fds, held().fds).length > 0 && Date.now() < until; )
  await new Promise((r) => setTimeout(r, 20));
const failed = lines
  .map((l) => JSON.parse(l) as { event?: string; started?: string[] })
  .find((l) => l.event === 'start_failed');
writeFileSync(
  resultFile,
  JSON.stringify({ ...result, after: held(), ...(failed?.started ? { startedSteps: failed.started } : {}) }),
);
