/**
 * The batch inquiry: a batch received in parts, split into chunks central works on, each entry's
 * result kept (sealed) until retention drops the batch. Writes are durable before they resolve.
 */
import { BATCH_AAD } from '../aad.js';
import { toJson } from '../crypto.js';
import type {
  BatchChunkRecord,
  BatchChunkState,
  BatchEntryInput,
  BatchEntryRecord,
  BatchEntryResultInput,
  BatchRecord,
  BatchState,
} from '../types.js';
import { err, read, type StoreContext, validDate } from './inputs.js';

interface BatchRow {
  id: string;
  client: string;
  confirmation_date: string;
  run: 'now' | 'scheduled';
  state: BatchState;
  total: number;
  finished: number;
  errors: number;
  chunks: number;
  submitted_at: number;
  started_at: number | null;
  finished_at: number | null;
}
interface BatchChunkRow {
  batch_id: string;
  chunk: number;
  state: BatchChunkState;
  idempotency_key: string;
  reception_number: string | null;
  entries: number;
  last_error: string | null;
}

/** The admin page's batch row (src/admin/backend.ts BatchItem is this type). */
export interface BatchListItem {
  id: string;
  submittedAt: string;
  state: 'queued' | 'running' | 'done' | 'failed';
  total: number;
  done: number;
  errors: number;
  finishedAt?: string;
  client?: string;
}

function batchRecord(r: BatchRow): BatchRecord {
  const b: BatchRecord = {
    id: r.id,
    client: r.client,
    confirmationDate: r.confirmation_date,
    run: r.run,
    state: r.state,
    total: r.total,
    finished: r.finished,
    errors: r.errors,
    chunks: r.chunks,
    submittedAt: new Date(r.submitted_at),
  };
  if (r.started_at !== null) b.startedAt = new Date(r.started_at);
  if (r.finished_at !== null) b.finishedAt = new Date(r.finished_at);
  return b;
}

export class BatchStore {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    const db = ctx.reader;
    this.s = {
      get: db.prepare('SELECT * FROM batches WHERE id = ?'),
      list: db.prepare('SELECT * FROM batches ORDER BY submitted_at DESC, id LIMIT ?'),
      runnable: db
        .prepare(
          `SELECT id FROM batches WHERE (state = 'queued' AND run = 'now') OR state = 'running' ORDER BY submitted_at, id`,
        )
        .pluck(),
      scheduled: db
        .prepare(`SELECT id FROM batches WHERE state = 'queued' AND run = 'scheduled' ORDER BY submitted_at, id`)
        .pluck(),
      chunks: db.prepare('SELECT * FROM batch_chunks WHERE batch_id = ? ORDER BY chunk'),
      chunkEntries: db.prepare('SELECT seq, query FROM batch_entries WHERE batch_id = ? AND chunk = ? ORDER BY seq'),
      entries: db.prepare(
        'SELECT seq, query, state, result FROM batch_entries WHERE batch_id = ? AND seq >= ? ORDER BY seq LIMIT ?',
      ),
    };
  }

  /**
   * Adds one part of a batch (the first creates it with `create`); `close` makes it complete and
   * splits it into chunks of `chunkSize`. Resolves after the commit (synchronous=FULL). Refusals:
   * BATCH_EXISTS, BATCH_NOT_FOUND (or another client's), BATCH_NOT_OPEN, BATCH_TOO_LARGE,
   * BATCH_ENTRY_INVALID (a duplicate arbitraryId; details.index is its index in the whole batch).
   * Nothing of a refused part is kept.
   */
  async append(
    o: {
      batchId: string;
      client: string;
      create?: { confirmationDate: string; run: 'now' | 'scheduled' };
      entries: BatchEntryInput[];
      close?: { chunkSize: number };
      maxEntries: number;
    },
    now = new Date(),
  ): Promise<{ total: number; state: BatchState }> {
    if (o.close && (!Number.isInteger(o.close.chunkSize) || o.close.chunkSize < 1))
      throw err('STORE_INPUT_INVALID', 'chunkSize must be a positive integer');
    const entries = o.entries.map((e) => ({ arbitraryId: e.arbitraryId, queryJson: toJson(e.query) }));
    const r = await this.ctx.call('batchAppend', {
      batchId: o.batchId,
      client: o.client,
      entries,
      maxEntries: o.maxEntries,
      now: validDate(now, 'now'),
      ...(o.create ? { create: o.create } : {}),
      ...(o.close ? { close: o.close } : {}),
    });
    return { total: r.total, state: r.state as BatchState };
  }

  async start(batchId: string, now = new Date()): Promise<void> {
    await this.ctx.call('batchStart', { batchId, now: validDate(now, 'now') });
  }

  /** Retention: deletes the batches settled before `before`, entries and results included. */
  async prune(before: Date): Promise<{ batches: number; entries: number }> {
    return this.ctx.call('batchPrune', { before: validDate(before, 'before') });
  }

  /** Central took the chunk: from now on a restart fetches it by this number and never submits it again. */
  async chunkSubmitted(batchId: string, chunk: number, receptionNumber: string, now = new Date()): Promise<void> {
    await this.ctx.call('batchChunkSubmitted', { batchId, chunk, receptionNumber, now: validDate(now, 'now') });
  }

  /** The last failure of a chunk still being worked on (a code, never personal data), for status. */
  async chunkError(batchId: string, chunk: number, error: string, now = new Date()): Promise<void> {
    await this.ctx.call('batchChunkError', { batchId, chunk, error, now: validDate(now, 'now') });
  }

  /**
   * Stores a chunk's results and settles it in one transaction; entries the results leave out get
   * `unanswered` as their (error) result. A chunk already settled is left as it is. The batch is
   * settled with its last chunk (failed when a chunk failed as a whole).
   */
  async finishChunk(
    o: {
      batchId: string;
      chunk: number;
      chunkState: 'done' | 'failed';
      error?: string;
      results: BatchEntryResultInput[];
      unanswered: unknown;
    },
    now = new Date(),
  ) {
    return this.ctx.call('batchChunkFinish', {
      batchId: o.batchId,
      chunk: o.chunk,
      chunkState: o.chunkState,
      ...(o.error !== undefined ? { error: o.error } : {}),
      results: o.results.map((r) => ({ seq: r.seq, state: r.state, isError: r.isError, resultJson: toJson(r.result) })),
      unansweredJson: toJson(o.unanswered),
      now: validDate(now, 'now'),
    });
  }

  get(batchId: string): BatchRecord | undefined {
    this.ctx.assertOpen();
    const r = read(() => this.s.get.get(batchId)) as BatchRow | undefined;
    return r ? batchRecord(r) : undefined;
  }

  /** Batches that should be worked on now: queued to run at once, or running (also after a restart). */
  runnable(): string[] {
    this.ctx.assertOpen();
    return read(() => this.s.runnable.all()) as string[];
  }

  /** Complete batches waiting for the batch schedule. */
  scheduled(): string[] {
    this.ctx.assertOpen();
    return read(() => this.s.scheduled.all()) as string[];
  }

  chunks(batchId: string): BatchChunkRecord[] {
    this.ctx.assertOpen();
    return (read(() => this.s.chunks.all(batchId)) as BatchChunkRow[]).map((r) => {
      const c: BatchChunkRecord = {
        batchId: r.batch_id,
        chunk: r.chunk,
        state: r.state,
        idempotencyKey: r.idempotency_key,
        entries: r.entries,
      };
      if (r.reception_number !== null) c.receptionNumber = r.reception_number;
      if (r.last_error !== null) c.lastError = r.last_error;
      return c;
    });
  }

  /** The queries of one chunk, in order (decrypted). */
  chunkQueries(batchId: string, chunk: number): { seq: number; query: unknown }[] {
    this.ctx.assertOpen();
    const rows = read(() => this.s.chunkEntries.all(batchId, chunk)) as { seq: number; query: Buffer }[];
    return rows.map((r) => ({ seq: r.seq, query: this.ctx.keys.openJson(r.query, BATCH_AAD.query(batchId, r.seq)) }));
  }

  /** Entries from `fromSeq` on, in order, with their results once they have one (decrypted). */
  entries(batchId: string, fromSeq: number, limit: number): BatchEntryRecord[] {
    this.ctx.assertOpen();
    const keys = this.ctx.keys;
    const rows = read(() => this.s.entries.all(batchId, fromSeq, limit)) as {
      seq: number;
      query: Buffer;
      state: BatchEntryRecord['state'];
      result: Buffer | null;
    }[];
    return rows.map((r) => {
      const query = keys.openJson(r.query, BATCH_AAD.query(batchId, r.seq)) as { arbitraryId?: string };
      const e: BatchEntryRecord = { seq: r.seq, arbitraryId: query.arbitraryId ?? '', state: r.state, query };
      if (r.result !== null) e.result = keys.openJson(r.result, BATCH_AAD.result(batchId, r.seq));
      return e;
    });
  }

  /** Newest first, in the admin page's shape (a batch still receiving parts shows as queued). */
  list(o: { limit?: number } = {}): BatchListItem[] {
    this.ctx.assertOpen();
    return (read(() => this.s.list.all(o.limit ?? 200)) as BatchRow[]).map((r) => {
      const item: BatchListItem = {
        id: r.id,
        submittedAt: new Date(r.submitted_at).toISOString(),
        state: r.state === 'open' ? 'queued' : r.state,
        total: r.total,
        done: r.finished,
        errors: r.errors,
        client: r.client,
      };
      if (r.finished_at !== null) item.finishedAt = new Date(r.finished_at).toISOString();
      return item;
    });
  }
}
