/**
 * The batch inquiry runner (一括照会, spec §5). A batch is stored in chunks (≤ batch.chunkSize
 * entries: one OQSmuquc01req each); at most `concurrency` chunks are worked on toward central at
 * once. A chunk goes pending → submitted (its reception number committed before anything else
 * happens) → done | failed (all its results committed in one transaction). Everything the runner
 * needs to go on is in the store, so after a restart a submitted chunk is fetched by its reception
 * number, a pending one is submitted under the same idempotency key (central replays its receipt if
 * it had taken it), and a settled one is never touched again.
 */
import { EventEmitter } from 'node:events';
import { codeOf, OnshiError } from '../core/errors.js';
import {
  batchOutcome,
  pairBatchResults,
  type BatchReceipt,
  type BatchResult,
  type BatchResultUnit,
  type BatchSubmitRequest,
  type NumbersQuery,
} from '../oqs/index.js';
import type { BatchChunkRecord, BatchEntryResultInput, GatewayStore } from '../cache/index.js';
import type { CallOptions } from '../sync/central-client.js';
import { toInquiryResult, type InquiryResult } from './result.js';

export interface BatchCentral {
  submitBatch(req: BatchSubmitRequest, call: CallOptions): Promise<BatchReceipt>;
  fetchBatch(
    receptionNumber: string,
    institutionCode: string,
    call: Pick<CallOptions, 'deadline'>,
  ): Promise<BatchResult>;
}

export type BatchRunnerStore = Pick<GatewayStore, 'batches'>;

export type BatchErrorCode =
  | 'BATCH_CHUNK_REFUSED' // central refused the chunk's submission (SegmentOfResult 9, or a 4xx)
  | 'BATCH_CENTRAL_FAILED' // central answered the fetch with SegmentOfResult 9 (e.g. it lost the reception number)
  | 'BATCH_ENTRY_UNANSWERED' // central's finished answer had no unit for this entry
  | 'BATCH_ANSWER_UNUSABLE'; // central's answer to the fetch could not be read, several times

/** One entry's result as the API delivers it (also stored, encrypted, as the entry's result). */
export interface BatchEntryResult {
  index: number;
  arbitraryId: string;
  /** answered: central answered this entry (`result`, which may be a per-person error, status 2); error: see `error` */
  state: 'answered' | 'error';
  result?: InquiryResult & { referenceNumber?: string; limitChanged?: '0' | '1' };
  error?: { code: string; message: string; retryable: boolean; details?: Record<string, unknown> };
}

export interface BatchProgress {
  batchId: string;
  client: string;
  state: string;
  total: number;
  finished: number;
  errors: number;
  chunk: number;
  chunks: number;
}

export interface BatchRunnerOptions {
  store: BatchRunnerStore;
  central: BatchCentral;
  institutionCode: string;
  concurrency: number;
  pollMs: number;
  pollMaxMs: number;
  /** the longest one request to central may take */
  timeoutMs: number;
  /** while it says no, nothing is sent (the line is down); checked before every request */
  allowRequest?: () => boolean;
  /** injectable for tests */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Non-transient fetch failures in a row after which a chunk is given up. */
const MAX_UNUSABLE_ANSWERS = 5;

const abortableSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** The line's fault, not the chunk's: wait and try again (as the outbox relay does). */
function transient(e: unknown): boolean {
  if (!(e instanceof OnshiError)) return false;
  return e.retryable || e.code === 'CENTRAL_AUTH_FAILED' || e.code === 'CENTRAL_TLS_FAILED';
}

const errorOf = (
  code: BatchErrorCode | string,
  message: string,
  details?: Record<string, unknown>,
): NonNullable<BatchEntryResult['error']> => ({
  code,
  message,
  retryable: false,
  ...(details && Object.keys(details).length > 0 ? { details } : {}),
});

type ChunkQueries = Array<{ seq: number; query: NumbersQuery }>;

interface Work {
  batchId: string;
  chunk: number;
  state: BatchChunkRecord['state'];
  receptionNumber?: string;
  idempotencyKey: string;
  /** read (and decrypted) ahead, while another chunk waits for central */
  queries?: ChunkQueries;
}

/**
 * Events: 'progress' (BatchProgress, after each chunk settles), 'results' ({ batchId, client, chunk,
 * results: BatchEntryResult[] }), 'done' (BatchProgress, once a batch is settled), 'error' (the store
 * refused a write; the chunk is tried again later).
 */
export class BatchRunner extends EventEmitter {
  private readonly queue: Work[] = [];
  private readonly known = new Set<string>();
  private readonly workers = new Set<Promise<void>>();
  /** the workers still working toward central (≤ concurrency); a chunk leaves once central gave its last answer */
  private readonly slots = new Set<Promise<void>>();
  private readonly ac = new AbortController();
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private stopped = false;

  constructor(private readonly o: BatchRunnerOptions) {
    super();
    this.sleep = o.sleep ?? abortableSleep;
  }

  get activeChunks(): number {
    return this.workers.size;
  }

  /** Resumes every batch that was queued to run now or was running (after a restart). */
  start(): void {
    for (const id of this.o.store.batches.runnable()) this.enqueue(id);
  }

  /** Starts a complete batch now (a `now` batch when it is accepted; a scheduled one on the schedule). */
  async run(batchId: string): Promise<void> {
    // Chunks first: the state flip (queued → running) is for display, the chunks' states drive the work.
    this.enqueue(batchId);
    await this.o.store.batches.start(batchId);
  }

  /** The batch schedule's tick: starts every batch waiting for it. */
  async runScheduled(): Promise<number> {
    const ids = this.o.store.batches.scheduled();
    for (const id of ids) await this.run(id);
    return ids.length;
  }

  /** Stops taking work, wakes every waiting chunk and waits for the requests in flight to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.ac.abort();
    await Promise.allSettled([...this.workers]);
  }

  private enqueue(batchId: string): void {
    for (const c of this.o.store.batches.chunks(batchId)) {
      if (c.state !== 'pending' && c.state !== 'submitted') continue;
      const key = `${batchId}/${c.chunk}`;
      if (this.known.has(key)) continue;
      this.known.add(key);
      const w: Work = { batchId, chunk: c.chunk, state: c.state, idempotencyKey: c.idempotencyKey };
      if (c.receptionNumber !== undefined) w.receptionNumber = c.receptionNumber;
      this.queue.push(w);
    }
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.slots.size < this.o.concurrency && this.queue.length > 0) {
      const w = this.queue.shift()!;
      // Committing a chunk's results (decrypt, encrypt, fsync) needs no slot toward central: the next
      // chunk is submitted meanwhile. The chunk still counts in `workers` until its results are durable.
      const release = (): void => {
        if (this.slots.delete(p)) this.pump();
      };
      const p: Promise<void> = this.work(w, release)
        .then(
          () => {
            this.known.delete(`${w.batchId}/${w.chunk}`);
          },
          (e: unknown) => {
            this.emit('error', e);
            // The store refused a write: the chunk's durable state is unchanged, try it again later.
            if (!this.stopped)
              void this.sleep(this.o.pollMaxMs, this.ac.signal).then(() => {
                if (!this.stopped) {
                  this.queue.push(w);
                  this.pump();
                }
              });
          },
        )
        .finally(() => {
          this.workers.delete(p);
          this.slots.delete(p);
          this.pump();
        });
      this.workers.add(p);
      this.slots.add(p);
    }
  }

  private queriesOf(w: Work): ChunkQueries {
    return this.o.store.batches
      .chunkQueries(w.batchId, w.chunk)
      .map((e) => ({ seq: e.seq, query: e.query as NumbersQuery }));
  }

  /**
   * Reads the next waiting chunk's queries while this one waits for central: decrypting 200 entries
   * takes ~10 ms of the event loop, which would otherwise sit between a slot freeing and the next submit.
   */
  private readAhead(): void {
    setImmediate(() => {
      const next = this.queue.find((x) => x.queries === undefined);
      if (next === undefined || this.stopped) return;
      try {
        next.queries = this.queriesOf(next);
      } catch {
        // The chunk's own work reads them again and reports what went wrong.
      }
    });
  }

  private delay(attempt: number): number {
    return Math.min(this.o.pollMaxMs, this.o.pollMs * 2 ** Math.min(attempt, 20));
  }

  /** Waits while the line is down; false once the runner stops. */
  private async lineAllows(): Promise<boolean> {
    let attempt = 0;
    while (!this.stopped && this.o.allowRequest && !this.o.allowRequest())
      await this.sleep(this.delay(attempt++), this.ac.signal);
    return !this.stopped;
  }

  private async work(w: Work, release: () => void): Promise<void> {
    const { store } = this.o;
    const batch = store.batches.get(w.batchId);
    if (!batch) return;
    const queries = w.queries ?? this.queriesOf(w);
    let receptionNumber = w.receptionNumber;
    let firstWait: Promise<void> | undefined;
    for (let attempt = 0; receptionNumber === undefined; attempt++) {
      if (attempt > 0) await this.sleep(this.delay(attempt - 1), this.ac.signal);
      if (!(await this.lineAllows())) return;
      let receipt: BatchReceipt;
      try {
        receipt = await this.o.central.submitBatch(
          {
            confirmationDate: batch.confirmationDate,
            institutionCode: this.o.institutionCode,
            fileId: `B${w.batchId}-${w.chunk}`,
            entries: queries.map((q) => q.query),
          },
          { deadline: Date.now() + this.o.timeoutMs, idempotencyKey: w.idempotencyKey },
        );
      } catch (e) {
        if (transient(e)) {
          await store.batches.chunkError(w.batchId, w.chunk, codeOf(e));
          continue;
        }
        const code = e instanceof OnshiError ? e.code : 'INTERNAL';
        return this.settle(
          w,
          batch.client,
          queries,
          'failed',
          code,
          undefined,
          errorOf('BATCH_CHUNK_REFUSED', `central refused this part of the batch (${code})`, { cause: code }),
        );
      }
      if (receipt.header.segmentOfResult !== '1' || receipt.receptionNumber === undefined) {
        const { errorCode, errorMessage } = receipt.header;
        return this.settle(
          w,
          batch.client,
          queries,
          'failed',
          errorCode ?? 'REFUSED',
          undefined,
          errorOf(
            'BATCH_CHUNK_REFUSED',
            `central refused this part of the batch${errorMessage ? `: ${errorMessage}` : ''}`,
            { ...(errorCode ? { centralCode: errorCode } : {}) },
          ),
        );
      }
      receptionNumber = receipt.receptionNumber;
      // The first poll wait runs while the reception number commits: both end before any fetch.
      firstWait = this.sleep(this.delay(0), this.ac.signal);
      this.readAhead();
      await store.batches.chunkSubmitted(w.batchId, w.chunk, receptionNumber);
    }

    let unusable = 0;
    for (let attempt = 0; ; attempt++) {
      // Central is not ready right after the submit: wait first, then double the wait while it says 処理中.
      await (attempt === 0 && firstWait ? firstWait : this.sleep(this.delay(attempt), this.ac.signal));
      if (!(await this.lineAllows())) return;
      let result: BatchResult;
      try {
        result = await this.o.central.fetchBatch(receptionNumber, this.o.institutionCode, {
          deadline: Date.now() + this.o.timeoutMs,
        });
      } catch (e) {
        const code = e instanceof OnshiError ? e.code : 'INTERNAL';
        if (!transient(e) && ++unusable >= MAX_UNUSABLE_ANSWERS) {
          return this.settle(
            w,
            batch.client,
            queries,
            'failed',
            code,
            undefined,
            errorOf(
              'BATCH_ANSWER_UNUSABLE',
              `central's answer for this part of the batch could not be used (${code})`,
              { cause: code, receptionNumber },
            ),
          );
        }
        await store.batches.chunkError(w.batchId, w.chunk, code);
        continue;
      }
      const outcome = batchOutcome(result);
      if (outcome.state === 'pending') continue;
      release(); // central has answered this chunk for good
      if (outcome.state === 'failed') {
        return this.settle(
          w,
          batch.client,
          queries,
          'failed',
          outcome.errorCode ?? 'FAILED',
          undefined,
          errorOf(
            'BATCH_CENTRAL_FAILED',
            `central could not process this part of the batch${outcome.errorMessage ? `: ${outcome.errorMessage}` : ''}`,
            {
              ...(outcome.errorCode ? { centralCode: outcome.errorCode } : {}),
              receptionNumber,
            },
          ),
        );
      }
      return this.settle(w, batch.client, queries, 'done', undefined, result, undefined);
    }
  }

  private async settle(
    w: Work,
    client: string,
    queries: { seq: number; query: NumbersQuery }[],
    chunkState: 'done' | 'failed',
    error: string | undefined,
    result: BatchResult | undefined,
    failure: BatchEntryResult['error'] | undefined,
  ): Promise<void> {
    const bySeq = new Map<string, number>();
    for (const q of queries) bySeq.set(q.query.arbitraryId ?? '', q.seq);
    const out: BatchEntryResult[] = [];
    if (result) {
      const pairing = pairBatchResults(
        queries.map((q) => q.query),
        result.units,
      );
      for (const { entry, unit } of pairing.paired) {
        out.push({
          index: bySeq.get(entry.arbitraryId!)!,
          arbitraryId: entry.arbitraryId!,
          state: 'answered',
          result: entryResult(result, unit),
        });
      }
    } else {
      for (const q of queries)
        out.push({ index: q.seq, arbitraryId: q.query.arbitraryId ?? '', state: 'error', error: failure! });
    }
    const unanswered: BatchEntryResult['error'] = errorOf(
      'BATCH_ENTRY_UNANSWERED',
      'central answered this part of the batch without a result for this entry',
      {},
    );
    const inputs: BatchEntryResultInput[] = out.map((r) => ({
      seq: r.index,
      state: r.state,
      isError: r.state === 'error' || r.result?.status === '2',
      result: r,
    }));
    const answeredIds = new Set(out.map((r) => r.index));
    // The entries central left out get the typed error as their one result (the store fills them the same way).
    for (const q of queries) {
      if (!answeredIds.has(q.seq))
        out.push({ index: q.seq, arbitraryId: q.query.arbitraryId ?? '', state: 'error', error: unanswered });
    }
    const unansweredFor = { state: 'error', error: unanswered };
    const t = await this.o.store.batches.finishChunk({
      batchId: w.batchId,
      chunk: w.chunk,
      chunkState,
      ...(error !== undefined ? { error } : {}),
      results: inputs,
      unanswered: unansweredFor,
    });
    out.sort((a, b) => a.index - b.index);
    this.emit('results', { batchId: w.batchId, client, chunk: w.chunk, results: out });
    const batch = this.o.store.batches.get(w.batchId);
    const progress: BatchProgress = {
      batchId: w.batchId,
      client,
      state: t.state,
      total: t.total,
      finished: t.finished,
      errors: t.errors,
      chunk: w.chunk,
      chunks: batch?.chunks ?? 0,
    };
    this.emit('progress', progress);
    if (t.complete) this.emit('done', progress);
  }
}

/** A unit as the counter sees a single answer (the same InquiryResult as inquiry.numbers), plus the unit's extras. */
function entryResult(result: BatchResult, unit: BatchResultUnit): NonNullable<BatchEntryResult['result']> {
  const h = result.header;
  const { referenceNumber, limitChanged, ...body } = unit;
  const r: NonNullable<BatchEntryResult['result']> = toInquiryResult({
    header: {
      processTime: h.processTime,
      confirmationDate: h.confirmationDate ?? '',
      institutionCode: h.institutionCode,
      referenceClassification: '2',
      segmentOfResult: '1',
      characterCode: h.characterCode,
    },
    body,
  });
  if (referenceNumber !== undefined) r.referenceNumber = referenceNumber;
  if (limitChanged !== undefined) r.limitChanged = limitChanged;
  return r;
}
