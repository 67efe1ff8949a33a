/** A corrupt database at start is moved aside (kept for recovery) and a fresh one is created. */
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DB_FILE, GatewayStore } from '../../src/cache/index.js';
import { testdir } from '../helpers/testdir.js';

async function seeded(t: Test): Promise<string> {
  const dir = testdir(t);
  const s = await GatewayStore.open({ dir });
  for (let i = 0; i < 200; i++)
    await s.outbox.enqueue({
      idempotencyKey: `k${i}`,
      kind: 'recheck',
      payload: { i, pad: randomBytes(200).toString('hex') },
    });
  await s.close();
  return dir;
}

async function expectMovedAside(t: Test, dir: string): Promise<void> {
  const store = await GatewayStore.open({ dir });
  t.teardown(() => store.close());
  const alert = store.startupAlerts.find((a) => a.code === 'STORE_CORRUPT');
  t.ok(alert, 'startupAlerts reports the corrupt file');
  const moved = readdirSync(dir).filter((f) => /^gateway\.db\.corrupt-\d{8}T\d{6}Z$/.test(f));
  t.equal(moved.length, 1, `moved aside as ${moved[0]}`);
  t.equal(alert?.details?.movedTo, moved[0]);
  t.match(alert?.message, /not in the new one/, 'the alert says what is lost');
  t.same(store.outbox.stats(), { depth: 0, dead: 0, fillRatio: 0 }, 'a fresh, empty store');
  const { id } = await store.outbox.enqueue({ idempotencyKey: 'after', kind: 'k', payload: 1 });
  t.equal(id, 1, 'and it works');
  t.ok(statSync(join(dir, moved[0]!)).size > 0, 'the old file is kept');
}

t.test('garbage in the database file ("file is not a database")', async (t) => {
  const dir = await seeded(t);
  writeFileSync(join(dir, DB_FILE), randomBytes(64 * 1024));
  await expectMovedAside(t, dir);
});

t.test('a valid header with damaged pages (integrity_check fails)', async (t) => {
  const dir = await seeded(t);
  const path = join(dir, DB_FILE);
  const pageSize = (() => {
    const db = new Database(path, { readonly: true });
    try {
      return db.pragma('page_size', { simple: true }) as number;
    } finally {
      db.close();
    }
  })();
  const fd = openSync(path, 'r+');
  const size = statSync(path).size;
  // scribble over a few pages after the first (which holds the header and the schema root)
  for (const page of [2, Math.floor(size / pageSize / 2), Math.floor(size / pageSize) - 1])
    writeSync(fd, randomBytes(pageSize / 2), 0, pageSize / 2, page * pageSize - pageSize + 100);
  closeSync(fd);
  await expectMovedAside(t, dir);
});

t.test('its -wal travels with it, so sqlite3 .recover can use both', async (t) => {
  const dir = testdir(t);
  writeFileSync(join(dir, DB_FILE), randomBytes(8192));
  writeFileSync(join(dir, `${DB_FILE}-wal`), randomBytes(8192));
  const store = await GatewayStore.open({ dir });
  t.teardown(() => store.close());
  const movedTo = store.startupAlerts.find((a) => a.code === 'STORE_CORRUPT')?.details?.movedTo;
  t.ok(existsSync(join(dir, `${String(movedTo)}-wal`)), 'the old -wal was moved next to it');
});
