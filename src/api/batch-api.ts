/**
 * The batch inquiry's WebSocket requests (batch.submit, batch.status, batch.results) and events
 * (topic `batches`: batch.progress, batch.results, batch.done — only to the client that submitted
 * the batch). A batch belongs to the client that submitted it; another client gets BATCH_NOT_FOUND.
 */
import { randomBytes } from 'node:crypto';
import { OnshiError } from '../core/errors.js';
import type { BatchRecord, GatewayStore } from '../cache/index.js';
import type { AnswerBodyOf, BatchEntryResultWire } from '../protocol/answers.js';
import type { ApiRequest } from '../protocol/schema.js';
import type { BatchEntryResult, BatchProgress, BatchRunner } from '../checks/batch-runner.js';
import type { EventHub } from '../protocol/events.js';
import { toNumbersQuery } from '../checks/numbers.js';

export type BatchApiErrorCode = 'BATCH_INVALID' | 'BATCH_ENTRY_INVALID' | 'BATCH_NOT_FOUND';

/** Answers and events stay well under the 64 KiB frame limit: a results page is cut at this many bytes. */
export const BATCH_PAGE_BYTES = 48 * 1024;

type Req<T extends ApiRequest['type']> = Extract<ApiRequest, { type: T }>;

export interface BatchApiOptions {
  store: GatewayStore;
  runner: BatchRunner;
  events: EventHub;
  chunkSize: number;
  maxEntries: number;
  onError?: (e: unknown) => void;
}

/** A batch as batch.status answers it. */
export function batchView(b: BatchRecord, chunks: Record<string, number>) {
  return {
    batchId: b.id,
    state: b.state,
    run: b.run,
    confirmationDate: b.confirmationDate,
    total: b.total,
    finished: b.finished,
    errors: b.errors,
    chunks: {
      total: b.chunks,
      pending: chunks.pending ?? 0,
      submitted: chunks.submitted ?? 0,
      done: chunks.done ?? 0,
      failed: chunks.failed ?? 0,
    },
    submittedAt: b.submittedAt.toISOString(),
    ...(b.startedAt ? { startedAt: b.startedAt.toISOString() } : {}),
    ...(b.finishedAt ? { finishedAt: b.finishedAt.toISOString() } : {}),
  };
}

/** Splits results into pages of at most `maxBytes` of JSON (at least one entry each). */
export function pageBySize<T>(items: readonly T[], maxBytes: number): T[][] {
  const pages: T[][] = [];
  let page: T[] = [];
  let size = 0;
  for (const item of items) {
    const n = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (page.length > 0 && size + n > maxBytes) {
      pages.push(page);
      page = [];
      size = 0;
    }
    page.push(item);
    size += n;
  }
  if (page.length > 0) pages.push(page);
  return pages;
}

export class BatchApi {
  constructor(private readonly o: BatchApiOptions) {
    const { runner, events } = o;
    runner.on('progress', (p: BatchProgress) =>
      events.publish('batches', 'batch.progress', progressData(p), { to: p.client }),
    );
    runner.on('done', (p: BatchProgress) => events.publish('batches', 'batch.done', progressData(p), { to: p.client }));
    runner.on('results', (r: { batchId: string; client: string; chunk: number; results: BatchEntryResult[] }) => {
      // Paging serializes every result (a few ms for 200, on the chunk's way to its slot's next
      // submit): only when the client listens.
      if (!events.hasSubscriber('batches', r.client)) return;
      for (const page of pageBySize(r.results, BATCH_PAGE_BYTES)) {
        events.publish(
          'batches',
          'batch.results',
          { batchId: r.batchId, chunk: r.chunk, results: page },
          { to: r.client },
        );
      }
    });
  }

  private owned(batchId: string, client: string): BatchRecord {
    const b = this.o.store.batches.get(batchId);
    if (!b || b.client !== client)
      throw new OnshiError<BatchApiErrorCode>('BATCH_NOT_FOUND', `no batch ${batchId}`, { details: { batchId } });
    return b;
  }

  /** Commits the part (synchronous=FULL) before answering; a complete `now` batch is started at once. */
  async submit(req: Req<'batch.submit'>, client: string): Promise<AnswerBodyOf<'batch.submit'>> {
    const { store, runner } = this.o;
    let batchId = req.batchId;
    let offset = 0;
    let run: 'now' | 'scheduled';
    if (batchId === undefined) {
      if (req.confirmationDate === undefined)
        throw new OnshiError<BatchApiErrorCode>(
          'BATCH_INVALID',
          'the first part of a batch needs its confirmationDate',
        );
      batchId = randomBytes(8).toString('hex');
      run = req.run ?? 'now';
    } else {
      const b = this.owned(batchId, client);
      if (req.confirmationDate !== undefined && req.confirmationDate !== b.confirmationDate) {
        throw new OnshiError<BatchApiErrorCode>(
          'BATCH_INVALID',
          `batch ${batchId} is for ${b.confirmationDate}; a later part cannot change it`,
        );
      }
      if (req.run !== undefined && req.run !== b.run)
        throw new OnshiError<BatchApiErrorCode>(
          'BATCH_INVALID',
          `batch ${batchId} runs "${b.run}"; a later part cannot change it`,
        );
      offset = b.total;
      run = b.run;
    }
    const entries = req.entries.map((e, i) => {
      try {
        return { arbitraryId: e.arbitraryId, query: toNumbersQuery(e) };
      } catch (err) {
        const d = (err as OnshiError).details ?? {};
        throw new OnshiError<BatchApiErrorCode>(
          'BATCH_ENTRY_INVALID',
          `entries[${i}] (entry ${offset + i} of the batch): ${(err as Error).message}`,
          {
            details: {
              index: offset + i,
              partIndex: i,
              ...(typeof d.path === 'string' ? { field: d.path } : {}),
              ...(typeof d.reason === 'string' ? { reason: d.reason } : {}),
            },
          },
        );
      }
    });
    const r = await store.batches.append({
      batchId,
      client,
      entries,
      maxEntries: this.o.maxEntries,
      ...(req.batchId === undefined ? { create: { confirmationDate: req.confirmationDate!, run } } : {}),
      ...(req.final ? { close: { chunkSize: this.o.chunkSize } } : {}),
    });
    // The batch is durable now: a failure to mark it running must not turn the acknowledgement into
    // an error (the client would submit it twice); its chunks are already queued in the runner.
    if (req.final && run === 'now') await runner.run(batchId).catch((e: unknown) => this.o.onError?.(e));
    const state = store.batches.get(batchId)?.state ?? r.state;
    return { type: 'batch.accepted', batchId, total: r.total, state, run };
  }

  status(req: Req<'batch.status'>, client: string): AnswerBodyOf<'batch.status'> {
    const b = this.owned(req.batchId, client);
    const chunks: Record<string, number> = {};
    let lastError: string | undefined;
    for (const c of this.o.store.batches.chunks(b.id)) {
      chunks[c.state] = (chunks[c.state] ?? 0) + 1;
      if (c.lastError !== undefined && (c.state === 'pending' || c.state === 'submitted')) lastError ??= c.lastError;
    }
    // lastError: why a chunk still being worked on is waiting (e.g. CENTRAL_UNREACHABLE while the line is down)
    return {
      type: 'batch.status',
      batch: { ...batchView(b, chunks), ...(lastError !== undefined ? { lastError } : {}) },
    };
  }

  /** One page of entries from `from`, each with its result (or state pending); `next` when more follow. */
  results(req: Req<'batch.results'>, client: string): AnswerBodyOf<'batch.results'> {
    const b = this.owned(req.batchId, client);
    const rows = this.o.store.batches.entries(b.id, req.from, req.limit);
    // A stored result is what the batch runner wrote (BatchEntryResult), read back from the store.
    const items = rows.map(
      (e): BatchEntryResultWire =>
        e.result === undefined
          ? { index: e.seq, arbitraryId: e.arbitraryId, state: 'pending' }
          : {
              ...(e.result as Omit<BatchEntryResultWire, 'index' | 'arbitraryId'>),
              index: e.seq,
              arbitraryId: e.arbitraryId,
            },
    );
    const page = pageBySize(items, BATCH_PAGE_BYTES)[0] ?? [];
    const last = page.length > 0 ? page[page.length - 1]!.index : req.from - 1;
    const answer: AnswerBodyOf<'batch.results'> = {
      type: 'batch.results',
      batchId: b.id,
      state: b.state,
      total: b.total,
      from: req.from,
      results: page,
    };
    if (last + 1 < b.total) answer.next = last + 1;
    return answer;
  }
}

function progressData(p: BatchProgress): Record<string, unknown> {
  return {
    batchId: p.batchId,
    state: p.state,
    total: p.total,
    finished: p.finished,
    errors: p.errors,
    chunk: p.chunk,
    chunks: p.chunks,
  };
}
