/**
 * The batch inquiry's write operations (run by the writer worker inside its group-commit
 * transaction, each in its own savepoint, like the other ops/ modules). A part of a batch, a reception
 * number, a chunk's results: each is durable (synchronous=FULL) before its promise resolves.
 */
import type Database from 'better-sqlite3';
import { OnshiError } from '../../core/errors.js';
import { BATCH_AAD } from '../aad.js';
import type { CacheKeys } from '../crypto.js';
import type { StoreErrorCode } from '../types.js';
import { MAX_ERROR_LEN, type Op } from './op.js';

const fail = (code: StoreErrorCode, message: string, details: Record<string, unknown>): OnshiError<StoreErrorCode> =>
  new OnshiError<StoreErrorCode>(code, message, { details });

interface BatchRow {
  id: string;
  client: string;
  state: string;
  total: number;
}

type Statements = ReturnType<typeof prepare>;

function prepare(db: Database.Database) {
  return {
    get: db.prepare('SELECT id, client, state, total FROM batches WHERE id = ?'),
    insert: db.prepare(
      `INSERT INTO batches (id, client, confirmation_date, run, state, submitted_at) VALUES (?, ?, ?, ?, 'open', ?)`,
    ),
    idTaken: db.prepare('SELECT seq FROM batch_entries WHERE batch_id = ? AND id_key = ?').pluck(),
    insertEntry: db.prepare(
      `INSERT INTO batch_entries (batch_id, seq, id_key, query, state) VALUES (?, ?, ?, ?, 'pending')`,
    ),
    setTotal: db.prepare('UPDATE batches SET total = ? WHERE id = ?'),
    assignChunks: db.prepare('UPDATE batch_entries SET chunk = seq / CAST(? AS INTEGER) WHERE batch_id = ?'),
    insertChunk: db.prepare(
      `INSERT INTO batch_chunks (batch_id, chunk, state, idempotency_key, entries, updated_at) VALUES (?, ?, 'pending', ?, ?, ?)`,
    ),
    queue: db.prepare(`UPDATE batches SET state = 'queued', chunks = ? WHERE id = ?`),
    start: db.prepare(
      `UPDATE batches SET state = 'running', started_at = COALESCE(started_at, ?) WHERE id = ? AND state IN ('queued', 'running')`,
    ),
    submitted: db.prepare(
      `UPDATE batch_chunks SET state = 'submitted', reception_number = ?, last_error = NULL, updated_at = ? WHERE batch_id = ? AND chunk = ? AND state = 'pending'`,
    ),
    chunkError: db.prepare('UPDATE batch_chunks SET last_error = ?, updated_at = ? WHERE batch_id = ? AND chunk = ?'),
    chunkState: db.prepare('SELECT state FROM batch_chunks WHERE batch_id = ? AND chunk = ?').pluck(),
    finishChunk: db.prepare(
      'UPDATE batch_chunks SET state = ?, last_error = ?, updated_at = ? WHERE batch_id = ? AND chunk = ?',
    ),
    setResult: db.prepare(
      `UPDATE batch_entries SET state = ?, result = ? WHERE batch_id = ? AND seq = ? AND chunk = ? AND state = 'pending'`,
    ),
    leftInChunk: db
      .prepare(`SELECT seq FROM batch_entries WHERE batch_id = ? AND chunk = ? AND state = 'pending'`)
      .pluck(),
    count: db.prepare('UPDATE batches SET finished = finished + ?, errors = errors + ? WHERE id = ?'),
    openChunks: db
      .prepare(`SELECT COUNT(*) FROM batch_chunks WHERE batch_id = ? AND state IN ('pending', 'submitted')`)
      .pluck(),
    failedChunks: db.prepare(`SELECT COUNT(*) FROM batch_chunks WHERE batch_id = ? AND state = 'failed'`).pluck(),
    finish: db.prepare('UPDATE batches SET state = ?, finished_at = ? WHERE id = ?'),
    totals: db.prepare('SELECT state, total, finished, errors FROM batches WHERE id = ?'),
    settledBefore: db.prepare(`SELECT id FROM batches WHERE state IN ('done', 'failed') AND finished_at < ?`).pluck(),
    dropEntries: db.prepare('DELETE FROM batch_entries WHERE batch_id = ?'),
    dropChunks: db.prepare('DELETE FROM batch_chunks WHERE batch_id = ?'),
    dropBatch: db.prepare('DELETE FROM batches WHERE id = ?'),
  };
}

/**
 * Stores a chunk's results; every entry leaves a finished chunk with exactly one result, so one
 * central did not answer gets `unansweredJson` (a typed error). Returns the counts to add.
 */
function storeChunkResults(
  s: Statements,
  keys: CacheKeys,
  a: Pick<Parameters<Op<'batchChunkFinish'>>[0], 'batchId' | 'chunk' | 'results' | 'unansweredJson'>,
): { finished: number; errors: number } {
  const { batchId, chunk } = a;
  let finished = 0;
  let errors = 0;
  for (const r of a.results) {
    const blob = keys.seal(Buffer.from(r.resultJson, 'utf8'), BATCH_AAD.result(batchId, r.seq));
    if (s.setResult.run(r.state, blob, batchId, r.seq, chunk).changes === 0) continue; // already has its one result
    finished++;
    if (r.isError || r.state === 'error') errors++;
  }
  for (const seq of s.leftInChunk.all(batchId, chunk) as number[]) {
    s.setResult.run(
      'error',
      keys.seal(Buffer.from(a.unansweredJson, 'utf8'), BATCH_AAD.result(batchId, seq)),
      batchId,
      seq,
      chunk,
    );
    finished++;
    errors++;
  }
  return { finished, errors };
}

export function createBatchOps(db: Database.Database, keys: CacheKeys) {
  const s = prepare(db);

  const own = (batchId: string, client: string): BatchRow => {
    const b = s.get.get(batchId) as BatchRow | undefined;
    if (!b || b.client !== client) throw fail('BATCH_NOT_FOUND', `no batch ${batchId}`, { batchId });
    return b;
  };

  const batchAppend: Op<'batchAppend'> = ({ batchId, client, create, entries, close, maxEntries, now }) => {
    if (create) {
      if (s.get.get(batchId)) throw fail('BATCH_EXISTS', `batch ${batchId} exists already`, { batchId });
      s.insert.run(batchId, client, create.confirmationDate, create.run, now);
    }
    const b = own(batchId, client);
    if (b.state !== 'open')
      throw fail('BATCH_NOT_OPEN', `batch ${batchId} is complete (${b.state}); no entries can be added`, {
        batchId,
        state: b.state,
      });
    const total = b.total + entries.length;
    if (total > maxEntries)
      throw fail('BATCH_TOO_LARGE', `a batch holds at most ${maxEntries} entries (this part would make ${total})`, {
        max: maxEntries,
        total,
      });
    entries.forEach((e, i) => {
      const seq = b.total + i;
      const idKey = keys.batchIdKey(batchId, e.arbitraryId);
      const prior = s.idTaken.get(batchId, idKey) as number | undefined;
      if (prior !== undefined) {
        throw fail(
          'BATCH_ENTRY_INVALID',
          `entries[${seq}]: arbitraryId is the same as entries[${prior}]'s; each entry needs its own`,
          { index: seq, field: 'arbitraryId', reason: 'duplicate-identifier', sameAs: prior },
        );
      }
      s.insertEntry.run(
        batchId,
        seq,
        idKey,
        keys.seal(Buffer.from(e.queryJson, 'utf8'), BATCH_AAD.query(batchId, seq)),
      );
    });
    s.setTotal.run(total, batchId);
    if (!close) return { total, state: 'open' };
    if (total === 0)
      throw fail('BATCH_ENTRY_INVALID', 'a batch needs at least one entry', { index: 0, reason: 'missing' });
    const size = close.chunkSize;
    s.assignChunks.run(size, batchId);
    const chunks = Math.ceil(total / size);
    for (let c = 0; c < chunks; c++)
      s.insertChunk.run(batchId, c, `batch-${batchId}-${c}`, Math.min(size, total - c * size), now);
    s.queue.run(chunks, batchId);
    return { total, state: 'queued' };
  };

  const batchStart: Op<'batchStart'> = ({ batchId, now }) => {
    s.start.run(now, batchId);
    return null;
  };

  const batchChunkSubmitted: Op<'batchChunkSubmitted'> = ({ batchId, chunk, receptionNumber, now }) => {
    s.submitted.run(receptionNumber, now, batchId, chunk);
    s.start.run(now, batchId);
    return null;
  };

  const batchChunkError: Op<'batchChunkError'> = ({ batchId, chunk, error, now }) => {
    s.chunkError.run(error.slice(0, MAX_ERROR_LEN), now, batchId, chunk);
    return null;
  };

  const batchChunkFinish: Op<'batchChunkFinish'> = ({
    batchId,
    chunk,
    chunkState,
    error,
    results,
    unansweredJson,
    now,
  }) => {
    const state = s.chunkState.get(batchId, chunk) as string | undefined;
    if (state === undefined) throw fail('BATCH_NOT_FOUND', `no chunk ${chunk} in batch ${batchId}`, { batchId, chunk });
    if (state === 'pending' || state === 'submitted') {
      const { finished, errors } = storeChunkResults(s, keys, { batchId, chunk, results, unansweredJson });
      s.count.run(finished, errors, batchId);
      s.finishChunk.run(chunkState, error === undefined ? null : error.slice(0, MAX_ERROR_LEN), now, batchId, chunk);
    }
    let complete = false;
    if ((s.openChunks.get(batchId) as number) === 0) {
      const t = s.totals.get(batchId) as { state: string };
      if (t.state !== 'done' && t.state !== 'failed')
        s.finish.run((s.failedChunks.get(batchId) as number) > 0 ? 'failed' : 'done', now, batchId);
      complete = true;
    }
    const t = s.totals.get(batchId) as { state: string; total: number; finished: number; errors: number };
    return { ...t, complete };
  };

  /** Retention: settled batches finished before `before` go, with their (personal) entries. */
  const batchPrune: Op<'batchPrune'> = ({ before }) => {
    let entries = 0;
    const ids = s.settledBefore.all(before) as string[];
    for (const id of ids) {
      entries += s.dropEntries.run(id).changes;
      s.dropChunks.run(id);
      s.dropBatch.run(id);
    }
    return { batches: ids.length, entries };
  };

  return { batchAppend, batchStart, batchPrune, batchChunkSubmitted, batchChunkError, batchChunkFinish };
}
