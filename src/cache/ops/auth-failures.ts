/** The WebSocket API's failed-authentication counts: one row per source address, expired rows dropped as we go. */
import type Database from 'better-sqlite3';
import type { Op } from './op.js';

export function createAuthFailureOps(db: Database.Database) {
  const s = {
    put: db.prepare(
      `INSERT INTO auth_failures (source, window_start, failures, locked_until, expires_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (source) DO UPDATE SET window_start = excluded.window_start, failures = excluded.failures,
         locked_until = excluded.locked_until, expires_at = excluded.expires_at`,
    ),
    prune: db.prepare('DELETE FROM auth_failures WHERE expires_at <= ?'),
  };

  const putAuthFailure: Op<'putAuthFailure'> = (r) => {
    s.prune.run(r.now);
    if (r.expiresAt > r.now) s.put.run(r.source, r.windowStart, r.failures, r.lockedUntil, r.expiresAt);
    return null;
  };

  return { putAuthFailure };
}
