/** The reconciliation list: replayed checks whose answer differs from what the counter was told. */
import { AAD } from '../aad.js';
import { toJson } from '../crypto.js';
import type { ReconciliationEntry, ReconciliationInput } from '../types.js';
import { err, read, type StoreContext, validDate } from './inputs.js';

interface ReconRow {
  id: number;
  outbox_id: number;
  before: Buffer | null;
  after: Buffer;
  changed_fields: string;
  created_at: number;
  handled_at: number | null;
}

export class ReconciliationStore {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    const db = ctx.reader;
    this.s = {
      all: db.prepare('SELECT * FROM reconciliation ORDER BY id LIMIT ?'),
      open: db.prepare('SELECT * FROM reconciliation WHERE handled_at IS NULL ORDER BY id LIMIT ?'),
      byOutbox: db.prepare('SELECT * FROM reconciliation WHERE outbox_id = ? ORDER BY id LIMIT 1'),
      openCount: db.prepare('SELECT COUNT(*) FROM reconciliation WHERE handled_at IS NULL').pluck(),
    };
  }

  async add(r: ReconciliationInput, now = new Date()): Promise<{ id: number }> {
    if (!Array.isArray(r.changedFields) || !r.changedFields.every((f) => typeof f === 'string'))
      throw err('STORE_INPUT_INVALID', 'changedFields must be field names');
    return this.ctx.call('addReconciliation', {
      outboxId: r.outboxId,
      beforeJson: r.before === undefined ? null : toJson(r.before),
      afterJson: toJson(r.after),
      changedFields: r.changedFields,
      now: validDate(now, 'now'),
    });
  }

  /** Oldest first; by default only the entries not yet handled. */
  list(o: { includeHandled?: boolean; limit?: number } = {}): ReconciliationEntry[] {
    this.ctx.assertOpen();
    const stmt = o.includeHandled ? this.s.all : this.s.open;
    return (read(() => stmt.all(o.limit ?? 1000)) as ReconRow[]).map((row) => this.entry(row));
  }

  /** The item filed for an outbox entry, if any (an indexed read: replays check it every time). */
  forOutbox(outboxId: number): ReconciliationEntry | undefined {
    this.ctx.assertOpen();
    const row = read(() => this.s.byOutbox.get(outboxId)) as ReconRow | undefined;
    return row ? this.entry(row) : undefined;
  }

  /** Items not yet marked handled. */
  openCount(): number {
    this.ctx.assertOpen();
    return read(() => this.s.openCount.get()) as number;
  }

  async markHandled(id: number, now = new Date()): Promise<void> {
    await this.ctx.call('markHandled', { id, now: validDate(now, 'now') });
  }

  private entry(row: ReconRow): ReconciliationEntry {
    const keys = this.ctx.keys;
    const e: ReconciliationEntry = {
      id: row.id,
      outboxId: row.outbox_id,
      before: row.before === null ? undefined : keys.openJson(row.before, AAD.reconBefore(row.id)),
      after: keys.openJson(row.after, AAD.reconAfter(row.id)),
      changedFields: JSON.parse(row.changed_fields) as string[],
      createdAt: new Date(row.created_at),
    };
    if (row.handled_at !== null) e.handledAt = new Date(row.handled_at);
    return e;
  }
}
