// The hash-chained audit log: append in commit order, purge personal fields, and verify catching
// every kind of tampering done directly on the database file.
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DB_FILE, GatewayStore, verifyAuditFile, type AuditInput } from '../../src/cache/index.js';
import { migrate } from '../../src/cache/schema.js';
import { testdir } from '../helpers/testdir.js';

const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const patient = {
  requestId: 'r-1',
  name: '髙橋　一郎',
  insurerNumber: '06139992',
  number: '12345',
  birthdate: '19800401',
};

function entry(i: number): AuditInput {
  if (i % 3 === 0) return { kind: 'token', actor: 'admin', action: 'token.add' };
  if (i % 3 === 1)
    return {
      kind: 'check',
      actor: `client-${i}`,
      action: 'inquiry.numbers',
      mode: 'numbers',
      outcome: 'valid',
      source: 'central',
      personal: { ...patient, requestId: `r-${i}` },
    };
  return { kind: 'admin', actor: 'staff1', action: 'login', outcome: 'ok', remote: '192.168.1.20', target: 'settings' };
}

/**
 * A closed store with n entries, entry i written at T0 + i minutes. Written once per n and copied:
 * the tampering cases each need a fresh one, and opening a store starts its writer thread.
 */
const templates = new Map<number, Promise<string>>();
async function seeded(t: Test, n = 6): Promise<string> {
  if (!templates.has(n)) {
    const dir = mkdtempSync(join(tmpdir(), 'onshi-audit-seed-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    templates.set(
      n,
      (async () => {
        const s = await GatewayStore.open({ dir });
        for (let i = 1; i <= n; i++) await s.audit.append(entry(i), new Date(T0 + i * 60_000));
        await s.close();
        return dir;
      })(),
    );
  }
  const dir = testdir(t);
  cpSync(await templates.get(n)!, dir, { recursive: true });
  return dir;
}

/** Tampers with the file directly, then verifies through both paths (open store and read-only CLI path). */
async function tamperAndVerify(t: Test, dir: string, edit: (db: Database.Database) => void) {
  const db = new Database(join(dir, DB_FILE));
  edit(db);
  db.close();
  const cli = verifyAuditFile({ dir });
  const s = await GatewayStore.open({ dir });
  t.teardown(() => s.close());
  const viaStore = await s.audit.verify();
  t.same(viaStore, cli, 'the store and the read-only path agree');
  return { result: viaStore, store: s };
}

t.test('entries chain in commit order and list back, personal fields decrypted', async (t) => {
  const dir = testdir(t);
  const s = await GatewayStore.open({ dir });
  t.teardown(() => s.close());
  t.same(
    await s.audit.verify(),
    { ok: true, entries: 0, head: { seq: 0, hash: '0'.repeat(64) } },
    'empty log verifies',
  );
  // concurrent appends land in one group commit: still one chain, seq 1..n
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => s.audit.append(entry(i + 1), new Date(T0 + i))),
  );
  t.same(
    results.map((r) => r.seq).sort((a, b) => a - b),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  const list = s.audit.list({ limit: 1000 });
  t.equal(list.length, 40);
  const first = list.find((e) => e.kind === 'check')!;
  t.match(first, {
    actor: 'client-1',
    action: 'inquiry.numbers',
    mode: 'numbers',
    outcome: 'valid',
    source: 'central',
  });
  t.same(first.personal, { ...patient, requestId: 'r-1' });
  t.equal(list.find((e) => e.kind === 'admin')?.personal, undefined, 'no personal fields given, none stored');
  t.same(
    s.audit.list({ after: 38 }).map((e) => e.seq),
    [39, 40],
    'paging by seq',
  );
  t.same(
    s.audit.list({ before: 4, newestFirst: true, limit: 2 }).map((e) => e.seq),
    [3, 2],
    'newest first, before a seq',
  );
  t.match(
    list.find((e) => e.kind === 'admin'),
    { actor: 'staff1', action: 'login', outcome: 'ok', remote: '192.168.1.20', target: 'settings' },
  );
  t.equal(s.audit.list({ personal: false })[0]?.personal, undefined, 'personal: false skips decryption');
  const v = await s.audit.verify();
  t.match(v, { ok: true, entries: 40, head: { seq: 40, hash: list[39]!.hash } });
  t.same(verifyAuditFile({ dir }), v, 'the read-only path works next to the open store');
});

t.test('clear fields are short codes, never free text', async (t) => {
  const s = await GatewayStore.open({ dir: testdir(t) });
  t.teardown(() => s.close());
  const bad: Array<[string, Partial<AuditInput>]> = [
    ['kind', { kind: 'other' as 'check' }],
    ['empty actor', { actor: '' }],
    ['actor with a newline', { actor: 'a\nb' }],
    ['remote too long', { remote: 'x'.repeat(65) }],
    ['target with a control character', { target: 'a\u0007' }],
    ['action with spaces', { action: 'did something' }],
    ['outcome as a sentence', { outcome: 'patient 髙橋 is valid' }],
    ['mode', { mode: 'face' as 'card' }],
    ['source', { source: 'guess' as 'cache' }],
    ['personal not JSON', { personal: 10n }],
  ];
  for (const [what, patch] of bad) {
    await t.rejects(s.audit.append({ ...entry(1), ...patch } as AuditInput), { code: 'STORE_INPUT_INVALID' }, what);
  }
  await t.rejects(s.audit.append(entry(1), new Date(NaN)), { code: 'STORE_INPUT_INVALID' });
  t.same(s.audit.list(), [], 'nothing was appended');
});

t.test('no personal field in clear in the .db, -wal or -shm', async (t) => {
  const dir = testdir(t);
  const s = await GatewayStore.open({ dir });
  for (let i = 1; i <= 4; i++) await s.audit.append(entry(i));
  const files = [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`].map((f) => join(dir, f));
  const check = (when: string) => {
    for (const f of files.filter((x) => existsSync(x))) {
      const raw = readFileSync(f);
      for (const secret of ['髙橋', '06139992', '12345', '19800401', 'r-1']) {
        t.notOk(
          raw.includes(Buffer.from(secret, 'utf8')) || raw.includes(Buffer.from(secret, 'utf16le')),
          `${when}: ${secret} not in ${f.split('/').pop()}`,
        );
      }
    }
  };
  check('open');
  await s.close();
  check('closed');
});

t.test('retention purges personal fields; the chain still verifies and grows', async (t) => {
  const dir = await seeded(t, 7);
  const s = await GatewayStore.open({ dir });
  t.teardown(() => s.close());
  const purgeAt = new Date(T0 + 99 * 60_000);
  const n = await s.audit.purgePersonal(new Date(T0 + 4.5 * 60_000), purgeAt);
  t.equal(n, 2, 'the check entries 1 and 4 had personal fields');
  const list = s.audit.list();
  t.equal(list[0]!.personal, undefined);
  t.same(list[0]!.purgedAt, purgeAt);
  t.match(
    list[0],
    { kind: 'check', actor: 'client-1', mode: 'numbers', outcome: 'valid', source: 'central' },
    'clear fields kept',
  );
  t.same(list[6]!.personal, { ...patient, requestId: 'r-7' }, 'newer entry untouched');
  t.equal(await s.audit.purgePersonal(new Date(T0 + 4.5 * 60_000)), 0, 'idempotent');
  t.match(await s.audit.verify(), { ok: true, entries: 7 });
  await s.audit.append(entry(8));
  t.match(await s.audit.verify(), { ok: true, entries: 8 });
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  t.teardown(() => db.close());
  t.equal(
    db.prepare('SELECT COUNT(*) FROM audit WHERE personal IS NULL AND personal_digest IS NOT NULL').pluck().get(),
    2,
  );
});

t.test('verify catches tampering done on the database file', async (t) => {
  const cases: Array<[string, (db: Database.Database) => void, object]> = [
    [
      'a clear field changed',
      (db) => db.prepare(`UPDATE audit SET outcome = 'invalid' WHERE seq = 4`).run(),
      { seq: 4, reason: 'changed' },
    ],
    [
      'the actor changed',
      (db) => db.prepare(`UPDATE audit SET actor = 'someone-else' WHERE seq = 2`).run(),
      { seq: 2, reason: 'changed' },
    ],
    [
      'the source address changed',
      (db) => db.prepare(`UPDATE audit SET remote = '10.0.0.1' WHERE seq = 2`).run(),
      { seq: 2, reason: 'changed' },
    ],
    [
      'the time changed',
      (db) => db.prepare('UPDATE audit SET at = at + 1 WHERE seq = 5').run(),
      { seq: 5, reason: 'changed' },
    ],
    [
      'a personal blob changed',
      (db) => {
        const b = db.prepare('SELECT personal FROM audit WHERE seq = 1').pluck().get() as Buffer;
        b[b.length - 1]! ^= 1;
        db.prepare('UPDATE audit SET personal = ? WHERE seq = 1').run(b);
      },
      { seq: 1, reason: 'changed' },
    ],
    [
      'a personal blob moved to another entry',
      (db) => db.prepare('UPDATE audit SET personal = (SELECT personal FROM audit WHERE seq = 1) WHERE seq = 4').run(),
      { seq: 4, reason: 'changed' },
    ],
    [
      'personal fields added to an entry that had none',
      (db) => db.prepare("UPDATE audit SET personal = x'00', personal_digest = x'00' WHERE seq = 3").run(),
      { seq: 3, reason: 'changed' },
    ],
    [
      'a digest changed after purge',
      (db) => db.prepare('UPDATE audit SET personal = NULL, personal_digest = zeroblob(32) WHERE seq = 1').run(),
      { seq: 1, reason: 'changed' },
    ],
    [
      'a hash replaced by text',
      (db) => db.prepare(`UPDATE audit SET hash = 'x' WHERE seq = 2`).run(),
      { seq: 2, reason: 'changed' },
    ],
    [
      'a row deleted in the middle',
      (db) => db.prepare('DELETE FROM audit WHERE seq = 3').run(),
      { seq: 3, reason: 'removed' },
    ],
    [
      'the first row deleted',
      (db) => db.prepare('DELETE FROM audit WHERE seq = 1').run(),
      { seq: 1, reason: 'removed' },
    ],
    [
      'the last row deleted',
      (db) => db.prepare('DELETE FROM audit WHERE seq = 6').run(),
      { seq: 6, reason: 'removed' },
    ],
    [
      'the last two rows deleted',
      (db) => db.prepare('DELETE FROM audit WHERE seq >= 5').run(),
      { seq: 5, reason: 'removed' },
    ],
    [
      'a row deleted and the rest renumbered',
      (db) => {
        db.prepare('DELETE FROM audit WHERE seq = 3').run();
        db.prepare('UPDATE audit SET seq = seq - 1 WHERE seq > 3').run();
      },
      { seq: 3, reason: 'removed' },
    ],
    [
      'two rows swapped',
      (db) => {
        db.prepare('UPDATE audit SET seq = -1 WHERE seq = 2').run();
        db.prepare('UPDATE audit SET seq = 2 WHERE seq = 3').run();
        db.prepare('UPDATE audit SET seq = 3 WHERE seq = -1').run();
      },
      { seq: 2, reason: 'reordered' },
    ],
    [
      'the first row moved to the end',
      (db) => {
        db.prepare('UPDATE audit SET seq = 100 WHERE seq = 1').run();
        db.prepare('UPDATE audit SET seq = seq - 1 WHERE seq BETWEEN 2 AND 6').run();
        db.prepare('UPDATE audit SET seq = 6 WHERE seq = 100').run();
      },
      { seq: 1, reason: 'reordered' },
    ],
    [
      'the head record deleted',
      (db) => db.prepare(`DELETE FROM meta WHERE key = 'store.audit_head'`).run(),
      { seq: 0, reason: 'removed' },
    ],
    [
      'the head moved back one entry (no key to sign it)',
      (db) => {
        const h = JSON.parse(
          db.prepare(`SELECT value FROM meta WHERE key = 'store.audit_head'`).pluck().get() as string,
        ) as { seq: number; hash: string; mac: string };
        const prev = (db.prepare('SELECT hash FROM audit WHERE seq = 5').pluck().get() as Buffer).toString('hex');
        db.prepare('DELETE FROM audit WHERE seq = 6').run();
        db.prepare(`UPDATE meta SET value = ? WHERE key = 'store.audit_head'`).run(
          JSON.stringify({ ...h, seq: 5, hash: prev }),
        );
      },
      { seq: 0, reason: 'changed' },
    ],
  ];
  for (const [what, edit, expected] of cases) {
    await t.test(what, async (t) => {
      const dir = await seeded(t);
      const { result } = await tamperAndVerify(t, dir, edit);
      t.match(result, { ok: false, ...expected }, JSON.stringify(result));
      t.type((result as { message?: unknown }).message, 'string');
    });
  }
});

t.test('a tampered tail stays visible after the gateway appends again', async (t) => {
  const dir = await seeded(t);
  const { store } = await tamperAndVerify(t, dir, (db) => db.prepare('DELETE FROM audit WHERE seq = 6').run());
  t.same(
    await store.audit.append(entry(7)).then((r) => r.seq),
    7,
    'new entries chain from the authenticated head, not the last row',
  );
  t.match(await store.audit.verify(), { ok: false, seq: 6, reason: 'removed' });
});

t.test('a forged or missing head stops appends with a typed error', async (t) => {
  const dir = await seeded(t);
  const { store } = await tamperAndVerify(t, dir, (db) =>
    db.prepare(`UPDATE meta SET value = '{"seq":1}' WHERE key = 'store.audit_head'`).run(),
  );
  await t.rejects(store.audit.append(entry(7)), {
    code: 'STORE_CORRUPT',
    details: { table: 'audit', reason: 'head-invalid' },
  });
  t.equal(store.audit.list({ limit: 100 }).length, 6, 'nothing appended');
});

t.test('a v2 database migrates to v3 with an empty, verifiable log', async (t) => {
  const dir = testdir(t);
  const v2 = new Database(join(dir, DB_FILE));
  v2.pragma('journal_mode = WAL');
  t.same(migrate(v2, 2), [1, 2]);
  v2.close();
  const s = await GatewayStore.open({ dir });
  t.teardown(() => s.close());
  t.match(await s.audit.verify(), { ok: true, entries: 0 });
  await s.audit.append(entry(1));
  t.match(await s.audit.verify(), { ok: true, entries: 1 });
});

t.test('the read-only path refuses what it cannot verify', async (t) => {
  const root = testdir(t, { state: {}, other: {} });
  const dir = join(root, 'state');
  t.throws(() => verifyAuditFile({ dir }), { code: 'AUDIT_UNAVAILABLE' }, 'no database');
  t.notOk(existsSync(join(dir, 'cache.key')), 'no key was created');
  const s = await GatewayStore.open({ dir });
  await s.close();
  const other = join(root, 'other', 'k');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(other, Buffer.alloc(32, 7), { mode: 0o600 });
  t.throws(() => verifyAuditFile({ dir, keyFile: other }), { code: 'STORE_KEY_INVALID' }, 'another key');
});
