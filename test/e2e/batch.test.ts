/**
 * Batch inquiry end to end: the built daemon (`bin/onshi.js start`, a real process with a real
 * SQLite file) against the central simulator over mutual TLS. 2,000 reservations are submitted
 * with `onshi batch submit` (in parts over the WebSocket); the daemon is SIGKILLed once some chunks
 * are finished and others are at central, and started again. Afterwards every entry has exactly one
 * result (read with `onshi batch results`), no chunk was submitted to central twice, and the
 * chunks finished before the kill were not even fetched again.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CentralSim } from '../../src/sim/central/server.js';
import { peopleRows } from '../../src/sim/central/population.js';
import { REVOKED_CARD_SERIAL } from '../../src/sim/pki.js';
import { ClientStore } from '../../src/api/tokens.js';
import { GatewayClient } from '../../src/client/index.js';
import { validateConfig } from '../../src/core/config.js';
import type { GatewayEvent } from '../../src/protocol/events.js';
import { DB_FILE } from '../../src/cache/index.js';
import { todayJst } from '../../src/oqs/dates.js';
import { BIN, kill, startDaemon } from '../helpers/daemon-process.js';
import { pkiFiles, sharedPki, waitFor } from '../helpers/gateway.js';

const ENTRIES = 2000;
const CHUNK = 200;
const run = promisify(execFile);
t.setTimeout(300_000);
process.once('beforeExit', (code) => process.exit(code));

interface Status {
  state: string;
  total: number;
  finished: number;
  chunks: { total: number; done: number; submitted: number };
}

t.test(`a batch of ${ENTRIES} interrupted by SIGKILL halfway: one result per entry, no chunk redone`, async (t) => {
  const pki = await sharedPki();
  const central = await CentralSim.start({ pki, revokedSerials: [REVOKED_CARD_SERIAL] });
  // central takes a while per batch, so that chunks are at central (処理中) when the kill comes
  central.batches.updateSettings({ readyAfterMs: 1200, perEntryMs: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'onshi-batch-e2e-'));
  const stateDir = join(dir, 'state');
  t.teardown(async () => {
    await central.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const f = pkiFiles();
  const configFile = join(dir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify(
      validateConfig({
        stateDir,
        log: { level: 'info' },
        api: { host: '127.0.0.1', port: 0 },
        central: { url: central.url, caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile, timeoutMs: 5000 },
        reader: { enabled: false, jpkiCaFile: f.jpkiCaFile },
        admin: { enabled: false },
        health: { enabled: false },
        batch: { chunkSize: CHUNK, concurrency: 2, pollMs: 200, pollMaxMs: 800 },
      }),
    ),
  );
  const { token } = new ClientStore(stateDir).add('reservations');

  // 2,000 reservations: the population's rows over and over, each with its own patient key.
  const rows = peopleRows(central.people, todayJst());
  const entries = Array.from({ length: ENTRIES }, (_, i) => {
    const r = rows[i % rows.length]!;
    return {
      arbitraryId: `R${String(i).padStart(5, '0')}_1`,
      insurerNumber: r.insurerNumber,
      number: r.number,
      birthdate: r.birthdate,
      ...(r.symbol ? { symbol: r.symbol } : {}),
      ...(r.branch ? { branch: r.branch } : {}),
    };
  });
  const file = join(dir, 'reservations.json');
  writeFileSync(file, JSON.stringify({ confirmationDate: todayJst(), entries }));

  const first = startDaemon(configFile);
  t.teardown(() => kill(first.child));
  const wsUrl = `ws://127.0.0.1:${await first.ready}/v1`;
  const cli = (...args: string[]) =>
    run(process.execPath, [BIN, ...args, '--ws', wsUrl, '--token', token], { maxBuffer: 64 * 1024 * 1024 });

  // Events go to the submitting client's connections only; this one has the same token.
  const watcher = await GatewayClient.connect(wsUrl, token);
  watcher.on('error', () => {});
  const events: GatewayEvent[] = [];
  watcher.on('message', (m: Record<string, unknown>) => {
    if (m.type === 'event') events.push(m as unknown as GatewayEvent);
  });
  await watcher.request({ type: 'subscribe', topics: ['batches'] });

  const submitted = JSON.parse((await cli('batch', 'submit', file, '--now', '--json')).stdout) as {
    batchId: string;
    total: number;
    state: string;
  };
  t.match(submitted, { total: ENTRIES, batchId: /^[0-9a-f]{16}$/ });
  const batchId = submitted.batchId;
  const status = async (): Promise<Status> =>
    JSON.parse((await cli('batch', 'status', batchId, '--json')).stdout) as Status;

  // Halfway: some chunks finished, some at central.
  await waitFor(
    async () => {
      const s = await status();
      return s.chunks.done >= 3 && s.chunks.submitted >= 1;
    },
    'three chunks done and one at central',
    60_000,
  );
  await kill(first.child);
  await watcher.close().catch(() => {});

  const db = new Database(join(stateDir, DB_FILE), { readonly: true });
  const before = db
    .prepare('SELECT chunk, state, reception_number AS rn FROM batch_chunks WHERE batch_id = ? ORDER BY chunk')
    .all(batchId) as { chunk: number; state: string; rn: string | null }[];
  db.close();
  const doneBefore = before.filter((c) => c.state === 'done');
  const atCentralBefore = before.filter((c) => c.state === 'submitted');
  t.ok(
    doneBefore.length >= 3 && doneBefore.length < ENTRIES / CHUNK,
    `killed halfway: ${doneBefore.length} of ${before.length} chunks done, ${atCentralBefore.length} at central`,
  );
  t.ok(atCentralBefore.length >= 1, 'at least one chunk was at central (submitted, not finished) when the daemon died');
  t.ok(
    events.some((e) => e.event === 'batch.progress' && e.data.batchId === batchId),
    'progress events reached the submitting client',
  );
  t.ok(
    events.some((e) => e.event === 'batch.results' && Array.isArray(e.data.results)),
    'results events reached it too',
  );
  const fetchesBefore = { ...central.batches.stats.fetchesByReception };

  const second = startDaemon(configFile);
  t.teardown(() => kill(second.child));
  const wsUrl2 = `ws://127.0.0.1:${await second.ready}/v1`;
  const cli2 = (...args: string[]) =>
    run(process.execPath, [BIN, ...args, '--ws', wsUrl2, '--token', token], { maxBuffer: 64 * 1024 * 1024 });
  await waitFor(
    async () => (JSON.parse((await cli2('batch', 'status', batchId, '--json')).stdout) as Status).state === 'done',
    'the batch finished after the restart',
    90_000,
  );

  const results = JSON.parse((await cli2('batch', 'results', batchId, '--json')).stdout) as {
    index: number;
    arbitraryId: string;
    state: string;
    result?: { query?: { arbitraryId?: string; number?: string } };
  }[];
  t.equal(results.length, ENTRIES, 'one row per entry');
  const ids = new Set(results.map((r) => r.arbitraryId));
  t.equal(ids.size, ENTRIES, 'every arbitraryId exactly once');
  t.ok(
    entries.every((e) => ids.has(e.arbitraryId)),
    'and they are the submitted ones',
  );
  const wrong = results.filter(
    (r, i) =>
      r.index !== i ||
      r.state !== 'answered' ||
      r.result?.query?.arbitraryId !== r.arbitraryId ||
      r.result?.query?.number !== entries[i]!.number,
  );
  t.same(wrong.slice(0, 3), [], 'every entry answered by central with its own echo');

  const stats = central.batches.stats;
  const fileIds = Object.keys(stats.submitsByFileId)
    .filter((k) => k.startsWith(`B${batchId}-`))
    .sort();
  t.equal(fileIds.length, ENTRIES / CHUNK, 'every chunk reached central');
  t.same(
    Object.entries(stats.submitsByFileId).filter(([, n]) => n !== 1),
    [],
    'no chunk was submitted twice',
  );
  for (const c of doneBefore)
    t.equal(
      stats.fetchesByReception[c.rn!],
      fetchesBefore[c.rn!],
      `chunk ${c.chunk} (done before the kill) was not fetched again`,
    );
  for (const c of atCentralBefore)
    t.ok(
      (stats.fetchesByReception[c.rn!] ?? 0) > (fetchesBefore[c.rn!] ?? 0),
      `chunk ${c.chunk} (at central at the kill) was fetched by its reception number ${c.rn}`,
    );
  const dup = Object.entries(central.stats.effectsByKey).filter(([k, n]) => k.startsWith(`batch-${batchId}-`) && n > 1);
  t.same(dup, [], 'no submit acted twice at central');
  const db2 = new Database(join(stateDir, DB_FILE), { readonly: true });
  t.equal(db2.pragma('integrity_check', { simple: true }), 'ok');
  db2.close();
  await kill(second.child);
});
