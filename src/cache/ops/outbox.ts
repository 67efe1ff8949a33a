/**
 * The outbox's writes: queue (idempotent, bounded), take the due entries, settle one — and settle
 * together with the replay's cache writes, in the caller's savepoint, so that an entry is done only
 * if they are durable too.
 */
import type Database from 'better-sqlite3';
import { OnshiError } from '../../core/errors.js';
import { AAD } from '../aad.js';
import type { CacheKeys } from '../crypto.js';
import type { WireOutboxEntry } from '../protocol.js';
import type { StoreErrorCode } from '../types.js';
import type { createEligibilityOps } from './eligibility.js';
import { MAX_ERROR_LEN, type Op } from './op.js';

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

function prepare(db: Database.Database) {
  return {
    byIdem: db.prepare('SELECT id FROM outbox WHERE idempotency_key = ?').pluck(),
    depth: db.prepare('SELECT depth FROM outbox_depth').pluck(), // kept by triggers (schema v6)
    insert:
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
    prune: db.prepare(`DELETE FROM outbox WHERE state = 'done' AND updated_at < ?`),
  };
}

export function createOutboxOps(
  db: Database.Database,
  keys: CacheKeys,
  outboxMax: number,
  eligibility: ReturnType<typeof createEligibilityOps>,
) {
  const s = prepare(db);

  const enqueue: Op<'enqueue'> = ({ idempotencyKey, kind, payloadJson, now }) => {
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
    const id = Number(s.insert.run(idempotencyKey, kind, now, now, now).lastInsertRowid);
    // The row id is bound into the AAD, so the payload is sealed once the id is known (same transaction).
    s.setPayload.run(keys.seal(Buffer.from(payloadJson, 'utf8'), AAD.outbox(id)), id);
    return { id, depth: depth + 1, duplicate: false };
  };

  const nextDue: Op<'nextDue'> = ({ limit, now }) => {
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
  };

  const complete: Op<'complete'> = ({ id, outcome, now }) => {
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
  };

  const settleOutbox: Op<'settleOutbox'> = ({ id, outcome, eligibility: writes, next, now }) => {
    // All in the caller's savepoint: the entry is done only together with its cache writes.
    for (const e of writes) eligibility.putEligibility(e);
    complete({ id, outcome, now });
    return next > 0 ? nextDue({ limit: next, now }) : { entries: [], corruptIds: [] };
  };

  const pruneOutbox: Op<'pruneOutbox'> = ({ before }) => ({ deleted: s.prune.run(before).changes });

  return { enqueue, nextDue, complete, settleOutbox, pruneOutbox };
}
