/** The admin page's history: one row per interval, replaced when sampled again; old rows pruned. */
import type Database from 'better-sqlite3';
import type { Op } from './op.js';

export function createHistoryOps(db: Database.Database) {
  const s = {
    put: db.prepare(
      'INSERT OR REPLACE INTO history (at, central, cache, none, outbox, latency, card_pin, card_visual, numbers) VALUES (@at, @central, @cache, @none, @outbox, @latency, @card_pin, @card_visual, @numbers)',
    ),
    prune: db.prepare('DELETE FROM history WHERE at < ?'),
  };
  const historyPut: Op<'historyPut'> = ({ pruneBefore, ...row }) => {
    s.put.run(row);
    return { pruned: s.prune.run(pruneBefore).changes };
  };
  return { historyPut };
}
