/** The eligibility cache's write: an answer sealed under its lookup key; a fresher answer is never overwritten. */
import type Database from 'better-sqlite3';
import { AAD } from '../aad.js';
import type { CacheKeys } from '../crypto.js';
import type { Op } from './op.js';

export function createEligibilityOps(db: Database.Database, keys: CacheKeys) {
  const put =
    db.prepare(`INSERT INTO eligibility (lookup, answer, verified_at, source, stored_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (lookup) DO UPDATE SET answer = excluded.answer, verified_at = excluded.verified_at,
        source = excluded.source, stored_at = excluded.stored_at
      WHERE excluded.verified_at >= eligibility.verified_at`);

  const putEligibility: Op<'putEligibility'> = ({ lookupHex, answerJson, verifiedAt, source }) => {
    const blob = keys.seal(Buffer.from(answerJson, 'utf8'), AAD.eligibility(lookupHex, verifiedAt, source));
    // An older answer (a late batch result) never overwrites a fresher one.
    const r = put.run(Buffer.from(lookupHex, 'hex'), blob, verifiedAt, source, Date.now());
    return { stored: r.changes > 0 };
  };

  return { putEligibility };
}
