/** The reconciliation list's writes: file an item (sealed once its id is known), mark one handled. */
import type Database from 'better-sqlite3';
import { OnshiError } from '../../core/errors.js';
import { AAD } from '../aad.js';
import type { CacheKeys } from '../crypto.js';
import type { StoreErrorCode } from '../types.js';
import type { Op } from './op.js';

export function createReconciliationOps(db: Database.Database, keys: CacheKeys) {
  const s = {
    insert: db.prepare(
      `INSERT INTO reconciliation (outbox_id, before, after, changed_fields, created_at) VALUES (?, NULL, x'', ?, ?)`,
    ),
    seal: db.prepare('UPDATE reconciliation SET before = ?, after = ? WHERE id = ?'),
    handle: db.prepare('UPDATE reconciliation SET handled_at = ? WHERE id = ? AND handled_at IS NULL'),
    exists: db.prepare('SELECT 1 FROM reconciliation WHERE id = ?').pluck(),
  };

  const addReconciliation: Op<'addReconciliation'> = ({ outboxId, beforeJson, afterJson, changedFields, now }) => {
    const id = Number(s.insert.run(outboxId, JSON.stringify(changedFields), now).lastInsertRowid);
    const before = beforeJson === null ? null : keys.seal(Buffer.from(beforeJson, 'utf8'), AAD.reconBefore(id));
    s.seal.run(before, keys.seal(Buffer.from(afterJson, 'utf8'), AAD.reconAfter(id)), id);
    return { id };
  };

  const markHandled: Op<'markHandled'> = ({ id, now }) => {
    if (s.exists.get(id) === undefined)
      throw new OnshiError<StoreErrorCode>('RECONCILIATION_NOT_FOUND', `no reconciliation entry ${id}`, {
        details: { id },
      });
    s.handle.run(now, id); // already handled: keeps the first time
    return null;
  };

  return { addReconciliation, markHandled };
}
