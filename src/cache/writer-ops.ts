/**
 * The write operations, run by the writer worker inside its batch transaction (see writer-worker.ts).
 * Each op is synchronous and throws OnshiError for refusals; the caller wraps it in a savepoint.
 */
import type Database from 'better-sqlite3';
import { OnshiError } from '../core/errors.js';
import { createAuditOps } from './audit.js';
import { createBatchOps } from './batch-ops.js';
import type { CacheKeys } from './crypto.js';
import type { OpArgs, OpName, OpResult, WireOutboxEntry } from './protocol.js';
import type { StoreErrorCode } from './types.js';

export const AAD = {
  eligibility: (lookupHex: string, verifiedAt: number, source: string) => ({
    table: 'eligibility',
    purpose: 'answer',
    row: `${lookupHex}|${verifiedAt}|${source}`,
  }),
  outbox: (id: number) => ({ table: 'outbox', purpose: 'payload', row: String(id) }),
  reconBefore: (id: number) => ({ table: 'reconciliation', purpose: 'before', row: String(id) }),
  reconAfter: (id: number) => ({ table: 'reconciliation', purpose: 'after', row: String(id) }),
  recheckPersonal: (id: number) => ({ table: 'rechecks', purpose: 'personal', row: String(id) }),
  recheckFound: (id: number) => ({ table: 'rechecks', purpose: 'found', row: String(id) }),
  keyCheck: { table: 'meta', purpose: 'key_check', row: 'store.key_check' },
} as const;

export const KEY_CHECK_PLAIN = 'onshi-cache key check';
export const META_REVOCATION_FETCHED_AT = 'store.revocation_fetched_at';

const MAX_ERROR_LEN = 200;

interface OutboxRow {
  id: number;
  idempotency_key: string;
  kind: string;
  payload: Buffer;
  created_at: number;
  attempts: number;
  last_error: string | null;
  state: string;
}

type Handlers = { [K in OpName]: (args: OpArgs<K>) => OpResult<K> };

export function createWriterOps(db: Database.Database, keys: CacheKeys, outboxMax: number): Handlers {
  const s = {
    putElig: db.prepare(`INSERT INTO eligibility (lookup, answer, verified_at, source, stored_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (lookup) DO UPDATE SET answer = excluded.answer, verified_at = excluded.verified_at,
        source = excluded.source, stored_at = excluded.stored_at
      WHERE excluded.verified_at >= eligibility.verified_at`),
    byIdem: db.prepare('SELECT id FROM outbox WHERE idempotency_key = ?').pluck(),
    depth: db.prepare('SELECT depth FROM outbox_depth').pluck(), // kept by triggers (schema v6)
    insertOutbox:
      db.prepare(`INSERT INTO outbox (idempotency_key, kind, payload, created_at, next_attempt_at, state, updated_at)
      VALUES (?, ?, x'', ?, ?, 'pending', ?)`),
    setPayload: db.prepare('UPDATE outbox SET payload = ? WHERE id = ?'),
    due: db.prepare(`SELECT id, idempotency_key, kind, payload, created_at, attempts, last_error, state FROM outbox
      WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?`),
    markInflight: db.prepare(
      `UPDATE outbox SET state = 'inflight', attempts = attempts + 1, updated_at = ? WHERE id = ?`,
    ),
    markDeadCorrupt: db.prepare(
      `UPDATE outbox SET state = 'dead', last_error = 'STORE_CORRUPT', updated_at = ? WHERE id = ?`,
    ),
    stateOf: db.prepare('SELECT state FROM outbox WHERE id = ?').pluck(),
    done: db.prepare(`UPDATE outbox SET state = 'done', updated_at = ? WHERE id = ?`),
    retry: db.prepare(
      `UPDATE outbox SET state = 'pending', next_attempt_at = ?, last_error = ?, updated_at = ? WHERE id = ?`,
    ),
    // Taken, never sent: the attempt counted when it was taken is given back; its last error stands.
    putBack: db.prepare(
      `UPDATE outbox SET state = 'pending', next_attempt_at = ?, attempts = MAX(attempts - 1, 0), updated_at = ? WHERE id = ?`,
    ),
    dead: db.prepare(`UPDATE outbox SET state = 'dead', last_error = ?, updated_at = ? WHERE id = ?`),
    insertRecon: db.prepare(
      `INSERT INTO reconciliation (outbox_id, before, after, changed_fields, created_at) VALUES (?, NULL, x'', ?, ?)`,
    ),
    setRecon: db.prepare('UPDATE reconciliation SET before = ?, after = ? WHERE id = ?'),
    handle: db.prepare('UPDATE reconciliation SET handled_at = ? WHERE id = ? AND handled_at IS NULL'),
    reconExists: db.prepare('SELECT 1 FROM reconciliation WHERE id = ?').pluck(),
    openRecheck: db
      .prepare(`SELECT id FROM rechecks WHERE lookup = ? AND state = 'scheduled' ORDER BY id LIMIT 1`)
      .pluck(),
    insertRecheck:
      db.prepare(`INSERT INTO rechecks (lookup, client, created_at, until_at, next_at, state, first_validity, personal, updated_at)
      VALUES (?, ?, ?, ?, ?, 'scheduled', ?, x'', ?)`),
    setRecheckPersonal: db.prepare('UPDATE rechecks SET personal = ? WHERE id = ?'),
    recheckState: db.prepare('SELECT state FROM rechecks WHERE id = ?').pluck(),
    updateRecheck:
      db.prepare(`UPDATE rechecks SET state = ?, attempts = attempts + ?, last_validity = COALESCE(?, last_validity), last_error = ?,
      next_at = ?, found = ?, settled_at = ?, updated_at = ? WHERE id = ?`),
    clearRevoked: db.prepare('DELETE FROM revoked_serials'),
    addRevoked: db.prepare('INSERT OR IGNORE INTO revoked_serials (serial) VALUES (?)'),
    setMeta: db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    prune: db.prepare(`DELETE FROM outbox WHERE state = 'done' AND updated_at < ?`),
  };
  const audit = createAuditOps(db, keys);
  const batch = createBatchOps(db, keys);

  const ops: Handlers = {
    putEligibility({ lookupHex, answerJson, verifiedAt, source }) {
      const blob = keys.seal(Buffer.from(answerJson, 'utf8'), AAD.eligibility(lookupHex, verifiedAt, source));
      // An older answer (a late batch result) never overwrites a fresher one.
      const r = s.putElig.run(Buffer.from(lookupHex, 'hex'), blob, verifiedAt, source, Date.now());
      return { stored: r.changes > 0 };
    },

    enqueue({ idempotencyKey, kind, payloadJson, now }) {
      const existing = s.byIdem.get(idempotencyKey) as number | undefined;
      const depth = s.depth.get() as number;
      // Idempotent: the same key returns the entry already stored (whatever its state), no second row.
      if (existing !== undefined) return { id: existing, depth, duplicate: true };
      if (depth >= outboxMax) {
        throw new OnshiError<StoreErrorCode>(
          'OUTBOX_FULL',
          `the outbox holds ${depth} entries (max ${outboxMax}); nothing was queued`,
          {
            retryable: true,
            details: { depth, max: outboxMax },
          },
        );
      }
      const id = Number(s.insertOutbox.run(idempotencyKey, kind, now, now, now).lastInsertRowid);
      // The row id is bound into the AAD, so the payload is sealed once the id is known (same transaction).
      s.setPayload.run(keys.seal(Buffer.from(payloadJson, 'utf8'), AAD.outbox(id)), id);
      return { id, depth: depth + 1, duplicate: false };
    },

    nextDue({ limit, now }) {
      const rows = s.due.all(now, limit) as OutboxRow[];
      const opened: { r: OutboxRow; payloadJson: string }[] = [];
      const corruptIds: number[] = [];
      for (const r of rows) {
        try {
          opened.push({ r, payloadJson: keys.open(r.payload, AAD.outbox(r.id)).toString('utf8') });
        } catch {
          corruptIds.push(r.id);
        }
      }
      if (corruptIds.length > 0) {
        // Parked as dead (kept, counted) so one bad row cannot block the queue; the caller gets a
        // typed error this time and the good entries, untouched, on the next call.
        for (const id of corruptIds) s.markDeadCorrupt.run(now, id);
        return { entries: [], corruptIds };
      }
      const entries = opened.map(({ r, payloadJson }): WireOutboxEntry => {
        s.markInflight.run(now, r.id);
        const e: WireOutboxEntry = {
          id: r.id,
          idempotencyKey: r.idempotency_key,
          kind: r.kind,
          payloadJson,
          createdAt: r.created_at,
          attempts: r.attempts + 1,
        };
        if (r.last_error !== null) e.lastError = r.last_error;
        return e;
      });
      return { entries, corruptIds };
    },

    complete({ id, outcome, now }) {
      const state = s.stateOf.get(id) as string | undefined;
      if (state === undefined)
        throw new OnshiError<StoreErrorCode>('OUTBOX_NOT_FOUND', `no outbox entry ${id}`, { details: { id } });
      if (state !== 'inflight')
        throw new OnshiError<StoreErrorCode>('OUTBOX_NOT_INFLIGHT', `outbox entry ${id} is ${state}, not inflight`, {
          details: { id, state },
        });
      if (outcome === 'done') s.done.run(now, id);
      else if ('dead' in outcome) s.dead.run(outcome.dead.slice(0, MAX_ERROR_LEN), now, id);
      else if (outcome.unsent) s.putBack.run(outcome.retryAt, now, id);
      else s.retry.run(outcome.retryAt, outcome.error.slice(0, MAX_ERROR_LEN), now, id);
      return null;
    },

    settleOutbox({ id, outcome, eligibility, next, now }) {
      // All in the caller's savepoint: the entry is done only together with its cache writes.
      for (const e of eligibility) ops.putEligibility(e);
      ops.complete({ id, outcome, now });
      return next > 0 ? ops.nextDue({ limit: next, now }) : { entries: [], corruptIds: [] };
    },

    addReconciliation({ outboxId, beforeJson, afterJson, changedFields, now }) {
      const id = Number(s.insertRecon.run(outboxId, JSON.stringify(changedFields), now).lastInsertRowid);
      const before = beforeJson === null ? null : keys.seal(Buffer.from(beforeJson, 'utf8'), AAD.reconBefore(id));
      s.setRecon.run(before, keys.seal(Buffer.from(afterJson, 'utf8'), AAD.reconAfter(id)), id);
      return { id };
    },

    markHandled({ id, now }) {
      if (s.reconExists.get(id) === undefined)
        throw new OnshiError<StoreErrorCode>('RECONCILIATION_NOT_FOUND', `no reconciliation entry ${id}`, {
          details: { id },
        });
      s.handle.run(now, id); // already handled: keeps the first time
      return null;
    },

    addRecheck({ lookupHex, client, validity, until, nextAt, personalJson, now }) {
      const lookup = Buffer.from(lookupHex, 'hex');
      // One open recheck per patient: a second 無効 answer for the same numbers joins the first.
      const existing = s.openRecheck.get(lookup) as number | undefined;
      if (existing !== undefined) return { id: existing, duplicate: true };
      const id = Number(s.insertRecheck.run(lookup, client, now, until, nextAt, validity, now).lastInsertRowid);
      s.setRecheckPersonal.run(keys.seal(Buffer.from(personalJson, 'utf8'), AAD.recheckPersonal(id)), id);
      return { id, duplicate: false };
    },

    updateRecheck({ id, attempted, state, validity, error, nextAt, foundJson, now }) {
      const current = s.recheckState.get(id) as string | undefined;
      if (current === undefined)
        throw new OnshiError<StoreErrorCode>('RECHECK_NOT_FOUND', `no recheck ${id}`, { details: { id } });
      // A settled recheck stays settled (a late job run never reopens it).
      if (current !== 'scheduled') return null;
      const found = foundJson === null ? null : keys.seal(Buffer.from(foundJson, 'utf8'), AAD.recheckFound(id));
      s.updateRecheck.run(
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
    },

    setRevocationList({ serials, fetchedAt }) {
      s.clearRevoked.run();
      let count = 0;
      for (const serial of serials) count += s.addRevoked.run(keys.serialKey(serial)).changes;
      s.setMeta.run(META_REVOCATION_FETCHED_AT, String(fetchedAt));
      return { count };
    },

    setMeta({ key, value }) {
      s.setMeta.run(key, value);
      return null;
    },

    pruneOutbox({ before }) {
      return { deleted: s.prune.run(before).changes };
    },

    appendAudit: audit.appendAudit,
    purgeAuditPersonal: audit.purgeAuditPersonal,
    ...batch,

    close() {
      return null;
    },
  };
  return ops;
}
