/**
 * Power-cut stand-in: a child process enqueues in a loop (several writes in flight, so group commits
 * happen) and prints each acknowledged id; we SIGKILL it at random moments — during open, migration,
 * commits — and after each kill check that every acknowledged entry is there and the file is sound.
 * CACHE_CRASH_KILLS=100 for a longer run.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DB_FILE, GatewayStore } from '../../src/cache/index.js';
import { testdir } from '../helpers/testdir.js';
import { RUN_TYPESCRIPT } from '../helpers/typescript.js';

const KILLS = Number(process.env.CACHE_CRASH_KILLS ?? 20);
const storeUrl = new URL('../../src/cache/index.ts', import.meta.url).href;

const CHILD = `
import { GatewayStore } from ${JSON.stringify(storeUrl)};
const store = await GatewayStore.open({ dir: process.env.STORE_DIR, outboxMax: 1e9 });
process.stdout.write('READY\\n');
const run = process.env.RUN;
let n = 0;
async function loop(lane) {
  for (;;) {
    const key = run + '-' + lane + '-' + (n++);
    const { id } = await store.outbox.enqueue({ idempotencyKey: key, kind: 'recheck', payload: { key, name: '髙橋　一郎', pad: 'x'.repeat(300) } });
    process.stdout.write('ACK ' + id + ' ' + key + '\\n'); // a pipe write is synchronous on Linux
  }
}
await Promise.all([0, 1, 2, 3].map(loop));
`;

interface Ack {
  id: number;
  key: string;
}

/** Kills `killAfterMs` after READY, or after spawn when `fromSpawn` (then it may land during open/migration). */
function runAndKill(
  dir: string,
  run: number,
  killAfterMs: number,
  fromSpawn: boolean,
): Promise<{ acks: Ack[]; ready: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...RUN_TYPESCRIPT, '--input-type=module', '-e', CHILD], {
      env: { ...process.env, STORE_DIR: dir, RUN: String(run) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer ??= setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    };
    if (fromSpawn) arm();
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.startsWith('READY\n')) arm();
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') return reject(new Error(`child exited by itself (${code}/${signal}): ${err}`));
      const acks: Ack[] = [];
      for (const line of out.split('\n').slice(0, -1)) {
        // the last piece may be a torn line
        const m = /^ACK (\d+) (\S+)$/.exec(line);
        if (m) acks.push({ id: Number(m[1]), key: m[2]! });
      }
      resolve({ acks, ready: out.startsWith('READY\n') });
    });
  });
}

t.test(
  `every acknowledged entry survives ${KILLS} SIGKILLs`,
  { timeout: Math.max(120_000, KILLS * 6000) }, // a durability test, not a speed one: room for a loaded machine
  async (t) => {
    const dir = testdir(t);
    const all: Ack[] = [];
    let killedWhileWriting = 0;
    for (let run = 0; run < KILLS; run++) {
      // mostly mid-loop; every fourth run anywhere from process start (open, integrity check, migration)
      const fromSpawn = run % 4 === 3;
      const wait = fromSpawn ? Math.floor(Math.random() * 900) : Math.floor(Math.random() * 250);
      const { acks, ready } = await runAndKill(dir, run, wait, fromSpawn);
      if (acks.length > 0) killedWhileWriting++;
      all.push(...acks);
      const db = new Database(join(dir, DB_FILE)); // read-write: replays the WAL like a restart would
      try {
        t.same(db.pragma('integrity_check', { simple: true }), 'ok', `run ${run}: integrity_check ok`);
        const hasOutbox = db.prepare(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'outbox'`).pluck().get() === 1;
        if (!hasOutbox) {
          t.equal(all.length, 0, `run ${run}: not yet created, nothing acknowledged`);
          continue;
        }
        const byKey = db.prepare('SELECT id FROM outbox WHERE idempotency_key = ?').pluck();
        const missing = all.filter((a) => byKey.get(a.key) !== a.id);
        t.same(
          missing,
          [],
          `run ${run} (killed after ${wait} ms, ${fromSpawn ? 'from start' : 'after ready'}, ${ready ? 'was ready' : 'while opening'}, ${acks.length} acks): all ${all.length} acknowledged entries present`,
        );
      } finally {
        db.close();
      }
    }
    t.ok(killedWhileWriting >= KILLS / 3, `${killedWhileWriting} of ${KILLS} kills landed while writing`);
    t.ok(all.length > 0);

    const store = await GatewayStore.open({ dir, outboxMax: 1e9 });
    t.teardown(() => store.close());
    t.notOk(
      store.startupAlerts.some((a) => a.code === 'STORE_CORRUPT'),
      'never treated as corrupt',
    );
    const total = store.outbox.stats().depth;
    t.ok(
      total >= all.length,
      `${total} entries stored, ${all.length} acknowledged (the rest committed just before a kill)`,
    );
    const entries = await store.outbox.nextDue(total + 10);
    t.equal(entries.length, total, 'every entry decrypts');
    const byKey = new Map(entries.map((e) => [e.idempotencyKey, e]));
    t.ok(
      all.every(
        (a) =>
          byKey.get(a.key)?.id === a.id && (byKey.get(a.key)?.payload as { key: string } | undefined)?.key === a.key,
      ),
      'payloads match their keys',
    );
  },
);
