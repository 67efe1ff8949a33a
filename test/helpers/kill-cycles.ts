/**
 * The gateway killed with SIGKILL at random moments — while starting, while the outbox fills
 * (line down) and while it replays (line up). After every kill the database passes
 * `PRAGMA integrity_check` and holds every outbox entry whose answer reached the client; at the end
 * one clean run drains them all, each acted on once at central. The gateway is the built daemon
 * (`bin/onshi.js start`), exactly as systemd runs it. The suite's 100 kills are split over
 * test/fault/gateway-kill-*.test.ts, each with its own state, so that they run side by side.
 */
import type { Test } from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CentralSim } from '../../src/sim/central/server.js';
import { peopleRows } from '../../src/sim/central/population.js';
import { FaultProxy } from '../../src/sim/line/index.js';
import { REVOKED_CARD_SERIAL } from '../../src/sim/pki.js';
import { ClientStore } from '../../src/api/tokens.js';
import { GatewayClient } from '../../src/client/index.js';
import type { InquiryResult } from '../../src/checks/result.js';
import { DB_FILE } from '../../src/cache/index.js';
import { todayJst } from '../../src/oqs/dates.js';
import { kill, startDaemon } from './daemon-process.js';
import { sharedPki } from './gateway.js';
import { outageConfig, queryOf } from './outage.js';

export async function killCycles(t: Test, kills: number, part: string): Promise<void> {
  const pki = await sharedPki();
  const central = await CentralSim.start({ pki, revokedSerials: [REVOKED_CARD_SERIAL] });
  const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: Number(new URL(central.url).port) });
  const stateDir = mkdtempSync(join(tmpdir(), 'onshi-kill-'));
  t.teardown(async () => {
    await proxy.close();
    await central.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const configFile = join(stateDir, 'config.json');
  writeFileSync(configFile, JSON.stringify(outageConfig(join(stateDir, 'state'), `https://127.0.0.1:${proxy.port}`)));
  const { token } = new ClientStore(join(stateDir, 'state')).add('kill-test');
  const rows = peopleRows(central.people, todayJst()).slice(0, 6);

  const acked = new Set<number>();
  let checks = 0;
  let killedBeforeReady = 0;
  let integrityFailures = 0;
  let missing = 0;
  const started = Date.now();

  for (let i = 0; i < kills; i++) {
    const replaying = i % 2 === 1;
    proxy.setMode(replaying ? { kind: 'up' } : { kind: 'down' });
    const { child, ready } = startDaemon(configFile);
    if (i % 10 === 9) {
      // Now and then, during start: open, integrity check, migration, key load.
      await new Promise((r) => setTimeout(r, Math.random() * 400));
      if (child.exitCode === null) killedBeforeReady++;
      await kill(child);
    } else {
      const port = await ready;
      const client = await GatewayClient.connect(`ws://127.0.0.1:${port}/v1`, token);
      client.on('error', () => {});
      let stop = false;
      const loop = async (): Promise<void> => {
        while (!stop) {
          const row = rows[Math.floor(Math.random() * rows.length)]!;
          checks++;
          try {
            const a = (await client.request({ type: 'inquiry.numbers', deadlineMs: 2000, query: queryOf(row) })) as {
              result: InquiryResult;
            };
            if (a.result.recheck?.queued) acked.add(a.result.recheck.outboxId);
          } catch {
            return; /* the kill */
          }
        }
      };
      const loops = [loop(), loop(), loop()];
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 500));
      await kill(child);
      stop = true;
      await Promise.all(loops);
      await client.close().catch(() => {});
    }
    // What a restart would find: an intact file with every acknowledged entry.
    const db = new Database(join(stateDir, 'state', DB_FILE));
    try {
      const ok = db.pragma('integrity_check', { simple: true });
      if (ok !== 'ok') integrityFailures++;
      const present = new Set(db.prepare('SELECT id FROM outbox').pluck().all() as number[]);
      for (const id of acked) if (!present.has(id)) missing++;
    } finally {
      db.close();
    }
  }
  t.equal(integrityFailures, 0, `integrity_check ok after all ${kills} kills`);
  t.equal(missing, 0, 'every acknowledged entry survived every kill');
  t.ok(acked.size > kills, `${acked.size} entries acknowledged across the kills`);

  // One clean run with the line up drains everything.
  proxy.setMode({ kind: 'up' });
  const { child, ready } = startDaemon(configFile);
  t.teardown(() => kill(child));
  const client = await GatewayClient.connect(`ws://127.0.0.1:${await ready}/v1`, token);
  t.teardown(() => client.close().catch(() => {}));
  const drainStart = Date.now();
  for (;;) {
    const s = (await client.request({ type: 'status' })) as { status: { outbox: { depth: number } } };
    if (s.status.outbox.depth === 0) break;
    if (Date.now() - drainStart > 120_000) {
      t.fail('the outbox did not drain');
      break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const drainMs = Date.now() - drainStart;
  await kill(child);
  const db = new Database(join(stateDir, 'state', DB_FILE), { readonly: true });
  const states = new Map(
    (db.prepare('SELECT id, state FROM outbox').all() as { id: number; state: string }[]).map((r) => [r.id, r.state]),
  );
  db.close();
  const notDone = [...acked].filter((id) => states.get(id) !== 'done').length;
  const duplicateEffects = Object.values(central.stats.effectsByKey).filter((n) => n > 1).length;
  t.equal(notDone, 0, 'every acknowledged entry was re-verified');
  t.equal(duplicateEffects, 0, 'no duplicate effects at central');
  t.comment(
    `FIGURES ${JSON.stringify({ scenario: `SIGKILL while filling and replaying (${part})`, kills: kills, killedBeforeReady, attempted: checks, acknowledged: acked.size, lost: missing, duplicateEffects, integrityFailures, drainMs, totalMs: Date.now() - started })}`,
  );
}
