/** The small clear-text writes: the certificate revocation list (replaced whole) and meta values. */
import type Database from 'better-sqlite3';
import { META_REVOCATION_FETCHED_AT, META_REVOCATION_INFO } from '../aad.js';
import type { CacheKeys } from '../crypto.js';
import type { Op } from './op.js';

export function createMetaOps(db: Database.Database, keys: CacheKeys) {
  const s = {
    clearRevoked: db.prepare('DELETE FROM revoked_serials'),
    addRevoked: db.prepare('INSERT OR IGNORE INTO revoked_serials (serial) VALUES (?)'),
    setMeta: db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
  };

  const setRevocationList: Op<'setRevocationList'> = ({ serials, fetchedAt, info }) => {
    s.clearRevoked.run();
    let count = 0;
    for (const serial of serials) count += s.addRevoked.run(keys.serialKey(serial)).changes;
    s.setMeta.run(META_REVOCATION_FETCHED_AT, String(fetchedAt));
    if (info) s.setMeta.run(META_REVOCATION_INFO, JSON.stringify(info));
    return { count };
  };

  const setMeta: Op<'setMeta'> = ({ key, value }) => {
    s.setMeta.run(key, value);
    return null;
  };

  return { setRevocationList, setMeta };
}
