/**
 * Opens the write connection (in the worker): creates the file private, checks it, moves a
 * corrupt file aside, migrates, verifies the key, and puts crashed inflight entries back.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { OnshiError, isOnshiError } from '../core/errors.js';
import type { CacheKeys } from './crypto.js';
import { ensureAuditHead } from './audit.js';
import { migrate } from './schema.js';
import { isCorruption, toStoreError } from './sqlite-errors.js';
import type { StoreAlert, StoreErrorCode } from './types.js';
import { AAD, KEY_CHECK_PLAIN } from './aad.js';

export const WRITER_PRAGMAS = [
  'journal_mode = WAL',
  // FULL: the WAL is fsynced at every commit, so an acknowledged outbox entry survives a power cut.
  'synchronous = FULL',
  'busy_timeout = 5000',
  // Keep the -wal from staying huge on a small card after a burst (truncated after checkpoints).
  'journal_size_limit = 8388608',
  'trusted_schema = OFF',
  // Purged audit fields (and other deleted rows) are zeroed in their pages, not left as free space.
  'secure_delete = FAST',
] as const;

export function openWriter(
  dbPath: string,
  keys: CacheKeys,
  now = Date.now(),
): { db: Database.Database; alerts: StoreAlert[] } {
  const alerts: StoreAlert[] = [];
  let db: Database.Database | undefined;
  try {
    db = openChecked(dbPath);
  } catch (e) {
    if (!isCorruption(e) && !isOnshiError(e, 'STORE_CORRUPT')) throw toStoreError(e, 'opening the database');
    const movedTo = moveAside(dbPath, now);
    alerts.push({
      code: 'STORE_CORRUPT',
      message: `the database was corrupt (${e instanceof Error ? e.message : String(e)}); it was moved to ${movedTo} and a fresh one created. Cached answers, queued checks and reconciliation items in the old file are not in the new one; the old file is kept for recovery (sqlite3 .recover).`,
      details: { movedTo },
    });
    try {
      db = openChecked(dbPath);
    } catch (e2) {
      throw toStoreError(e2, 'creating a fresh database');
    }
  }
  try {
    checkKey(db, keys);
    ensureAuditHead(db, keys);
    const reset = db
      .prepare(`UPDATE outbox SET state = 'pending', updated_at = ? WHERE state = 'inflight'`)
      .run(now).changes;
    if (reset > 0)
      alerts.push({
        code: 'OUTBOX_INFLIGHT_RESET',
        message: `${reset} outbox entries were inflight at the last stop and will be sent again`,
        details: { count: reset },
      });
  } catch (e) {
    db.close();
    throw toStoreError(e, 'opening the database');
  }
  return { db, alerts };
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Checked before SQLite touches the file: on close SQLite would checkpoint or delete a -wal next
 * to a file it cannot read, and the -wal may be what a recovery needs.
 */
function assertHeader(dbPath: string): void {
  const size = statSync(dbPath).size;
  if (size === 0) return; // new
  const head = Buffer.alloc(SQLITE_MAGIC.length);
  const fd = openSync(dbPath, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 100 || !head.equals(SQLITE_MAGIC)) {
    throw new OnshiError<StoreErrorCode>('STORE_CORRUPT', 'file is not a database (bad header)');
  }
}

function openChecked(dbPath: string): Database.Database {
  // Created 0600 before SQLite sees it: SQLite gives the -wal and -shm the database file's mode.
  if (!existsSync(dbPath)) closeSync(openSync(dbPath, 'a', 0o600));
  assertHeader(dbPath);
  const db = new Database(dbPath);
  try {
    for (const p of WRITER_PRAGMAS) db.pragma(p); // the first read of the header: throws SQLITE_NOTADB on garbage
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    if (rows.length !== 1 || rows[0]?.integrity_check !== 'ok') {
      throw new OnshiError<StoreErrorCode>(
        'STORE_CORRUPT',
        `integrity_check: ${rows
          .slice(0, 3)
          .map((r) => r.integrity_check)
          .join('; ')}`,
      );
    }
    migrate(db);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** A new database gets a key check value; an existing one must open it, else the key is wrong. */
function checkKey(db: Database.Database, keys: CacheKeys): void {
  const stored = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(AAD.keyCheck.row) as string | undefined;
  if (stored === undefined) {
    const blob = keys.seal(Buffer.from(KEY_CHECK_PLAIN, 'utf8'), AAD.keyCheck);
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(AAD.keyCheck.row, blob.toString('base64'));
    return;
  }
  try {
    if (keys.open(Buffer.from(stored, 'base64'), AAD.keyCheck).toString('utf8') === KEY_CHECK_PLAIN) return;
  } catch {
    /* below */
  }
  throw new OnshiError<StoreErrorCode>(
    'STORE_KEY_INVALID',
    'the cache key does not match this database (was the key file replaced?); nothing was changed',
  );
}

/** Renames the database and its -wal/-shm to `<name>.corrupt-<timestamp>[-wal|-shm]` (sqlite3 can open the pair). */
function moveAside(dbPath: string, now: number): string {
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  let target = `${dbPath}.corrupt-${stamp}`;
  for (let i = 1; existsSync(target); i++) target = `${dbPath}.corrupt-${stamp}.${i}`;
  for (const suffix of ['-wal', '-shm']) if (existsSync(dbPath + suffix)) renameSync(dbPath + suffix, target + suffix);
  renameSync(dbPath, target);
  const fd = openSync(dirname(dbPath), 'r');
  try {
    fsyncSync(fd);
  } catch {
    /* some file systems refuse */
  } finally {
    closeSync(fd);
  }
  return basename(target);
}
