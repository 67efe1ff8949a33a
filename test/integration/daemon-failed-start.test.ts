/**
 * A failed start leaks nothing. For each start step in turn, a child process starts the real gateway
 * (real SQLite in its worker thread, the central simulator, TLS identity, health, admin page, file
 * exchange, WebSocket API) with a failure injected right after that step; startGateway must reject
 * with that failure, and then the process must hold no more threads, open files or sockets, handles,
 * timers or cron tasks than before the start — and exit on its own.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { CentralSim } from '../../src/sim/central/server.js';
import type { ChildResult } from '../helpers/failed-start-child.js';
import { pkiFiles, sharedPki } from '../helpers/gateway.js';
import { added, gainedFds } from '../helpers/held-fds.js';
import { RUN_TYPESCRIPT } from '../helpers/typescript.js';

const CHILD = fileURLToPath(new URL('../helpers/failed-start-child.ts', import.meta.url));
/** How long a child may take to start, fail, clean up and exit (a loaded CI box; no timing is asserted). */
const EXIT_CEILING_MS = 60_000;
/** The daemon's start steps, in order (src/daemon/index.ts). */
const STEPS = [
  'log-ring',
  'store',
  'central',
  'reader',
  'line',
  'checks',
  'token-audit',
  'jobs',
  'life-audit',
  'metrics',
  'tls',
  'health',
  'admin',
  'file-exchange',
  'kiosk',
  'api',
  'ready',
];

t.setTimeout(20 * 60_000);

const pki = await sharedPki();
const central = await CentralSim.start({ pki });
t.teardown(() => central.close());
const root = t.testdir({});

function configFor(name: string, overrides: Record<string, unknown> = {}): string {
  const dir = join(root, name);
  const fx = Object.fromEntries(['req', 'res', 'face', 'done'].map((d) => [d, join(dir, d)]));
  for (const d of Object.values(fx)) mkdirSync(d, { recursive: true });
  const f = pkiFiles();
  const file = join(dir, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      stateDir: join(dir, 'state'),
      log: { level: 'info' },
      api: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      health: { port: 0 },
      central: { url: central.url, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile, timeoutMs: 5000 },
      // No pcscd needed: the reader step runs (and is failed after) with the reader disabled.
      reader: { enabled: false, jpkiCaFile: f.jpkiCaFile },
      rechecks: { enabled: true },
      fileExchange: { enabled: true, reqDir: fx.req, resDir: fx.res, faceDir: fx.face, doneDir: fx.done },
      ...overrides,
    }),
  );
  return file;
}

/** Runs one case; resolves with the child's report once it has exited by itself. */
function runChild(
  configFile: string,
  failAt: string,
): Promise<{ exit: number | null; result: ChildResult; stderr: string }> {
  const resultFile = join(configFile, '..', 'result.json');
  const env = { ...process.env };
  delete env.NOTIFY_SOCKET;
  delete env.CREDENTIALS_DIRECTORY;
  const child = spawn(process.execPath, [...RUN_TYPESCRIPT, CHILD, configFile, failAt, resultFile], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const ceiling = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `the child (failAt ${failAt}) did not exit on its own within ${EXIT_CEILING_MS} ms: something kept its event loop alive\n${stderr}`,
        ),
      );
    }, EXIT_CEILING_MS);
    child.on('exit', (exit) => {
      clearTimeout(ceiling);
      try {
        resolve({ exit, result: JSON.parse(readFileSync(resultFile, 'utf8')) as ChildResult, stderr });
      } catch (e) {
        reject(
          new Error(`the child (failAt ${failAt}) exited ${exit} without a report: ${(e as Error).message}\n${stderr}`),
        );
      }
    });
  });
}

function assertNothingLeft(t: Test, r: { exit: number | null; result: ChildResult; stderr: string }): void {
  const { before, after } = r.result;
  t.equal(r.exit, 0, 'the process exited on its own, cleanly');
  t.equal(after.threads, before.threads, "no thread left (the store's worker is gone)");
  t.same(gainedFds(before.fds, after.fds), [], 'no file or socket left open');
  t.same(added(before.resources, after.resources), [], 'no handle or timer left active');
  t.equal(after.cronTasks, 0, 'no cron task left');
}

for (const [i, step] of STEPS.entries()) {
  t.test(`a failure right after the ${step} step leaves nothing running`, async (t) => {
    const r = await runChild(configFor(step), step);
    t.equal(r.result.started, false, 'startGateway rejected');
    t.equal(r.result.code, 'START_FAULT_INJECTED', 'with the failure of the step (the original error)');
    t.same(r.result.startedSteps, STEPS.slice(0, i + 1), `the steps up to ${step} had started`);
    assertNothingLeft(t, r);
  });
}

t.test('a start refused by a bad schedule opens nothing', async (t) => {
  const r = await runChild(configFor('bad-cron', { audit: { purgeSchedule: 'every night' } }), '-');
  t.equal(r.result.started, false);
  t.equal(r.result.code, 'CONFIG_INVALID');
  t.equal(r.result.startedSteps, undefined, 'refused before the first step');
  assertNothingLeft(t, r);
});

t.test('a full start and stop leaves nothing running either', async (t) => {
  const r = await runChild(configFor('full'), '-');
  t.equal(r.result.started, true);
  assertNothingLeft(t, r);
});
