/**
 * The outbox: checks taken while central was unreachable, durable (synchronous=FULL commit) before
 * the client is answered, replayed in order and settled one by one.
 */
import { toJson } from '../crypto.js';
import { type OpResult, outcomeToWire } from '../protocol.js';
import type { CompleteOutcome, OutboxEntry, OutboxStats } from '../types.js';
import type { EligibilityWrite } from './eligibility.js';
import { err, read, type StoreContext, validDate } from './inputs.js';

/** An outbox entry parked dead: which, when (ms) and the code it was refused with. */
export interface DeadLetter {
  id: number;
  kind: string;
  at: number;
  error?: string;
}

export class OutboxStore {
  private readonly s;

  constructor(
    private readonly ctx: StoreContext,
    /** Pending + inflight entries at which enqueue refuses with OUTBOX_FULL. */
    readonly max: number,
  ) {
    const db = ctx.reader;
    this.s = {
      // the depth is kept by triggers (schema v6); the oldest comes from the partial index outbox_open_age
      depth: db.prepare(
        `SELECT (SELECT depth FROM outbox_depth) AS depth, (SELECT created_at FROM outbox INDEXED BY outbox_open_age WHERE state IN ('pending', 'inflight') ORDER BY created_at LIMIT 1) AS oldest`,
      ),
      dead: db.prepare(`SELECT COUNT(*) FROM outbox WHERE state = 'dead'`).pluck(),
      deadList: db.prepare(
        `SELECT id, kind, last_error AS error, updated_at AS at FROM outbox WHERE state = 'dead' AND updated_at >= ? AND updated_at < ? ORDER BY updated_at DESC, id DESC LIMIT ?`,
      ),
      overdue: db
        .prepare(`SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'inflight') AND created_at < ?`)
        .pluck(),
    };
  }

  /**
   * Queues an entry; resolves after its synchronous=FULL commit. The idempotency key must be opaque
   * (it is stored in clear). Enqueueing a key already present returns that entry's id with
   * `duplicate: true` and stores nothing. Refuses with OUTBOX_FULL at `max` pending + inflight
   * entries (old entries are never dropped), STORE_DISK_FULL when the disk is full.
   */
  async enqueue(
    entry: { idempotencyKey: string; kind: string; payload: unknown },
    now = new Date(),
  ): Promise<{ id: number; depth: number; duplicate: boolean }> {
    if (
      typeof entry.idempotencyKey !== 'string' ||
      entry.idempotencyKey.length === 0 ||
      entry.idempotencyKey.length > 200
    ) {
      throw err('STORE_INPUT_INVALID', 'idempotencyKey must be 1–200 characters');
    }
    if (typeof entry.kind !== 'string' || entry.kind.length === 0)
      throw err('STORE_INPUT_INVALID', 'kind must be a non-empty string');
    return this.ctx.call('enqueue', {
      idempotencyKey: entry.idempotencyKey,
      kind: entry.kind,
      payloadJson: toJson(entry.payload),
      now: validDate(now, 'now'),
    });
  }

  /**
   * Up to `limit` pending entries due at `now`, oldest first, marked inflight (attempts + 1). Each
   * must be settled with complete(); inflight entries left by a crash return to pending at open.
   * A payload that fails authentication parks its entry as dead and rejects with STORE_CORRUPT
   * (details.ids); the next call returns the others.
   */
  async nextDue(limit: number, now = new Date()): Promise<OutboxEntry[]> {
    if (!Number.isInteger(limit) || limit < 1) throw err('STORE_INPUT_INVALID', 'limit must be a positive integer');
    return dueEntries(await this.ctx.call('nextDue', { limit, now: validDate(now, 'now') }));
  }

  /**
   * complete() of an inflight entry together with the replay's cache writes (`writes`, from
   * eligibility.write) in one transaction — the entry is done only if they are durable too — and
   * then nextDue(`next`) (none for 0): a replay's whole bookkeeping in one round trip to the writer.
   * Rejects like complete() (nothing of it stands) or, after the commit, with nextDue's STORE_CORRUPT
   * (details.settled = true).
   */
  async settle(
    id: number,
    outcome: CompleteOutcome,
    o: { writes?: readonly EligibilityWrite[]; next: number },
    now = new Date(),
  ): Promise<OutboxEntry[]> {
    if (typeof outcome === 'object' && 'retryAt' in outcome) validDate(outcome.retryAt, 'retryAt');
    if (!Number.isInteger(o.next) || o.next < 0)
      throw err('STORE_INPUT_INVALID', 'next must be a non-negative integer');
    const r = await this.ctx.call('settleOutbox', {
      id,
      outcome: outcomeToWire(outcome),
      eligibility: [...(o.writes ?? [])],
      next: o.next,
      now: validDate(now, 'now'),
    });
    // A STORE_CORRUPT here comes after the commit: the entry's own outcome stands, only taking the next ones failed.
    return dueEntries(r, { settled: true });
  }

  /** Settles an inflight entry: done, retry later (error = a code, no personal data), or dead (kept and counted). */
  async complete(id: number, outcome: CompleteOutcome, now = new Date()): Promise<void> {
    if (typeof outcome === 'object' && 'retryAt' in outcome) validDate(outcome.retryAt, 'retryAt');
    await this.ctx.call('complete', { id, outcome: outcomeToWire(outcome), now: validDate(now, 'now') });
  }

  stats(): OutboxStats {
    this.ctx.assertOpen();
    const { depth, oldest } = read(() => this.s.depth.get()) as { depth: number; oldest: number | null };
    const dead = read(() => this.s.dead.get()) as number;
    const stats: OutboxStats = { depth, dead, fillRatio: depth / this.max };
    if (oldest !== null) stats.oldestAt = new Date(oldest);
    return stats;
  }

  /** Entries parked dead with from <= parked at < to, newest first: the admin page's event log (no payload). */
  deadLetters(o: { from?: number; to?: number; limit: number }): DeadLetter[] {
    this.ctx.assertOpen();
    const rows = read(() => this.s.deadList.all(o.from ?? 0, o.to ?? Number.MAX_SAFE_INTEGER, o.limit)) as (Omit<
      DeadLetter,
      'error'
    > & { error: string | null })[];
    return rows.map(({ error, ...r }) => (error === null ? r : { ...r, error }));
  }

  /** Pending or inflight entries created before `before` (past their time-to-live). */
  overdueCount(before: Date): number {
    this.ctx.assertOpen();
    return read(() => this.s.overdue.get(validDate(before, 'before'))) as number;
  }

  /** Deletes done entries settled before `before` (retention). Pending, inflight and dead are never pruned. */
  async prune(before: Date): Promise<number> {
    return (await this.ctx.call('pruneOutbox', { before: validDate(before, 'before') })).deleted;
  }
}

/** nextDue's wire answer → entries; corrupt entries (already parked as dead) reject with STORE_CORRUPT (plus `details`). */
function dueEntries(r: OpResult<'nextDue'>, details: Record<string, unknown> = {}): OutboxEntry[] {
  if (r.corruptIds.length > 0) {
    throw err(
      'STORE_CORRUPT',
      `outbox entries ${r.corruptIds.join(', ')} could not be decrypted and were marked dead`,
      { ids: r.corruptIds, ...details },
    );
  }
  return r.entries.map((e) => {
    const out: OutboxEntry = {
      id: e.id,
      idempotencyKey: e.idempotencyKey,
      kind: e.kind,
      payload: JSON.parse(e.payloadJson) as unknown,
      createdAt: new Date(e.createdAt),
      attempts: e.attempts,
    };
    if (e.lastError !== undefined) out.lastError = e.lastError;
    return out;
  });
}
