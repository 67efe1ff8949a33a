/**
 * The admin page's pictures of the past: every 5 minutes, checks answered by central, from the
 * cache and with nothing (counted from the audit chain's clear fields) and the outbox depth. No
 * personal data; kept for `retentionDays`.
 */
import { read, type StoreContext } from './inputs.js';

export const HISTORY_STEP_MS = 5 * 60_000;

export interface HistoryRow {
  /** start of the interval (ms) */
  at: number;
  central: number;
  cache: number;
  none: number;
  outbox: number;
}

export class HistoryStore {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    this.s = {
      checks: ctx.reader.prepare(
        "SELECT COALESCE(source, 'none') AS source, COUNT(*) AS n FROM audit WHERE kind = 'check' AND at >= ? AND at < ? GROUP BY 1",
      ),
      list: ctx.reader.prepare('SELECT at, central, cache, none, outbox FROM history WHERE at >= ? ORDER BY at'),
    };
  }

  /** Records the interval that ended at or before `now` (sampling it again replaces it). */
  async sample(outboxDepth: number, now = Date.now(), retentionDays = 30): Promise<HistoryRow> {
    this.ctx.assertOpen();
    const at = Math.floor(now / HISTORY_STEP_MS) * HISTORY_STEP_MS - HISTORY_STEP_MS;
    const counts = read(() => this.s.checks.all(at, at + HISTORY_STEP_MS)) as { source: string; n: number }[];
    const by = (k: string): number => counts.find((c) => c.source === k)?.n ?? 0;
    const row: HistoryRow = { at, central: by('central'), cache: by('cache'), none: by('none'), outbox: outboxDepth };
    await this.ctx.call('historyPut', { ...row, pruneBefore: now - retentionDays * 86_400_000 });
    return row;
  }

  list(since: number): HistoryRow[] {
    this.ctx.assertOpen();
    return read(() => this.s.list.all(since)) as HistoryRow[];
  }
}
