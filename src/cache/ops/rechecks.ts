/** The time-lag rechecks' writes: schedule one (one open recheck per patient), record an attempt or the end. */
import type Database from 'better-sqlite3';
import { OnshiError } from '../../core/errors.js';
import { AAD } from '../aad.js';
import type { CacheKeys } from '../crypto.js';
import type { StoreErrorCode } from '../types.js';
import { MAX_ERROR_LEN, type Op } from './op.js';

export function createRecheckOps(db: Database.Database, keys: CacheKeys) {
  const s = {
    open: db.prepare(`SELECT id FROM rechecks WHERE lookup = ? AND state = 'scheduled' ORDER BY id LIMIT 1`).pluck(),
    insert:
      db.prepare(`INSERT INTO rechecks (lookup, client, created_at, until_at, next_at, state, first_validity, personal, updated_at)
      VALUES (?, ?, ?, ?, ?, 'scheduled', ?, x'', ?)`),
    setPersonal: db.prepare('UPDATE rechecks SET personal = ? WHERE id = ?'),
    state: db.prepare('SELECT state FROM rechecks WHERE id = ?').pluck(),
    update:
      db.prepare(`UPDATE rechecks SET state = ?, attempts = attempts + ?, last_validity = COALESCE(?, last_validity), last_error = ?,
      next_at = ?, found = ?, settled_at = ?, updated_at = ? WHERE id = ?`),
  };

  const addRecheck: Op<'addRecheck'> = ({ lookupHex, client, validity, until, nextAt, personalJson, now }) => {
    const lookup = Buffer.from(lookupHex, 'hex');
    // One open recheck per patient: a second 無効 answer for the same numbers joins the first.
    const existing = s.open.get(lookup) as number | undefined;
    if (existing !== undefined) return { id: existing, duplicate: true };
    const id = Number(s.insert.run(lookup, client, now, until, nextAt, validity, now).lastInsertRowid);
    s.setPersonal.run(keys.seal(Buffer.from(personalJson, 'utf8'), AAD.recheckPersonal(id)), id);
    return { id, duplicate: false };
  };

  const updateRecheck: Op<'updateRecheck'> = ({ id, attempted, state, validity, error, nextAt, foundJson, now }) => {
    const current = s.state.get(id) as string | undefined;
    if (current === undefined)
      throw new OnshiError<StoreErrorCode>('RECHECK_NOT_FOUND', `no recheck ${id}`, { details: { id } });
    // A settled recheck stays settled (a late job run never reopens it).
    if (current !== 'scheduled') return null;
    const found = foundJson === null ? null : keys.seal(Buffer.from(foundJson, 'utf8'), AAD.recheckFound(id));
    s.update.run(
      state,
      attempted ? 1 : 0,
      validity,
      error === null ? null : error.slice(0, MAX_ERROR_LEN),
      nextAt,
      found,
      state === 'scheduled' ? null : now,
      now,
      id,
    );
    return null;
  };

  return { addRecheck, updateRecheck };
}
