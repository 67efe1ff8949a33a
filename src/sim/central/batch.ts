/**
 * The central simulator's batch inquiry (一括照会, spec §5): submit a list of checks by numbers →
 * a reception number; fetch by that number → 処理中 until the simulated processing time has
 * passed, then one BulkConfirmUnit per entry. Eligibility is population.ts's, evaluated when
 * processing completes (the first fetch after it is ready) on the simulated day of that moment, and
 * then kept: fetching again gives the same answer, as a finished batch at central would.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  decodeBatchFetchJson,
  decodeBatchSubmitJson,
  encodeBatchReceiptJson,
  encodeBatchResultJson,
  isOqsError,
  validateNumbersQuery,
  type BatchReceipt,
  type BatchResult,
  type BatchResultUnit,
  type BatchSubmitRequest,
  type NumbersQuery,
} from '../../oqs/index.js';
import { timestampJst } from '../../oqs/dates.js';
import { HttpError, objectBody, readJson, sendJson } from '../http.js';
import { eligibilityByNumbers, toResult, type SimPerson } from './population.js';

export interface BatchSettings {
  /** a batch answers 処理中 until this long after it was submitted */
  readyAfterMs: number;
  /** and this much longer per entry */
  perEntryMs: number;
  /** a larger batch is refused with SegmentOfResult 9 (the real limit is not public) */
  maxEntries: number;
}

export interface BatchStats {
  submits: number;
  /** entries accepted over all batches */
  entries: number;
  fetches: number;
  /** fetches answered 処理中 */
  pending: number;
  /** fetches for a reception number the simulator does not know (or another institution's) */
  unknown: number;
  refused: number;
  /** batches started per ArbitraryFileIdentifier (idempotent replays are not counted): > 1 means a part was submitted twice */
  submitsByFileId: Record<string, number>;
  /** fetches per reception number (processing or not) */
  fetchesByReception: Record<string, number>;
}

/** What the batch module needs from the simulator. */
export interface BatchHost {
  readonly people: SimPerson[];
  /** the simulated processing day, YYYYMMDD */
  today(): string;
}

interface StoredBatch {
  receptionNumber: string;
  request: BatchSubmitRequest;
  receptionTime: string;
  readyAt: number;
  result?: BatchResult;
  /** the result in its JSON form, encoded once */
  answer?: unknown;
}

/** The simulator's own codes: the real ones come from 別紙6-1, which is not public. */
export const SIM_BATCH_CODES = {
  tooLarge: 'SIM-E-BATCH-TOO-LARGE',
  unknownReception: 'SIM-E-RECEPTION-UNKNOWN',
  queryInvalid: 'SIM-E-QUERY-INVALID',
} as const;

/** Finished batches kept for fetching; the oldest go first. */
const MAX_STORED = 1000;

export class SimBatches {
  readonly settings: BatchSettings = { readyAfterMs: 2000, perEntryMs: 0, maxEntries: 2000 };
  stats: BatchStats = SimBatches.emptyStats();
  private readonly batches = new Map<string, StoredBatch>();
  /** differs per simulator process, so a number from before a restart is unknown rather than someone else's batch */
  private readonly tag = randomBytes(2).toString('hex').toUpperCase();
  private counter = 0;

  constructor(private readonly host: BatchHost) {}

  static emptyStats(): BatchStats {
    return {
      submits: 0,
      entries: 0,
      fetches: 0,
      pending: 0,
      unknown: 0,
      refused: 0,
      submitsByFileId: {},
      fetchesByReception: {},
    };
  }

  reset(): void {
    this.batches.clear();
    this.stats = SimBatches.emptyStats();
  }

  /** OQSmuquc01req (JSON form) → OQSmuquc01res. Runs behind the simulator's Idempotency-Key handling. */
  submit(body: unknown): { status: number; body: unknown } {
    let request: BatchSubmitRequest;
    try {
      request = decodeBatchSubmitJson(body);
    } catch (e) {
      throw new HttpError(400, 'REQUEST_INVALID', (e as Error).message);
    }
    const now = this.stamp();
    const receipt: BatchReceipt = {
      header: { processTime: now, institutionCode: request.institutionCode, segmentOfResult: '1', characterCode: '0' },
    };
    if (request.fileId !== undefined) receipt.header.fileId = request.fileId;
    if (request.entries.length > this.settings.maxEntries) {
      this.stats.refused++;
      receipt.header.segmentOfResult = '9';
      receipt.header.errorCode = SIM_BATCH_CODES.tooLarge;
      receipt.header.errorMessage = `一括照会の件数が上限（${this.settings.maxEntries}件）を超えています。分割して送信してください。`;
      return { status: 200, body: encodeBatchReceiptJson(receipt) };
    }
    const receptionNumber = `R${this.tag}${String(++this.counter).padStart(8, '0')}`;
    const readyAt = Date.now() + this.settings.readyAfterMs + this.settings.perEntryMs * request.entries.length;
    const stored: StoredBatch = { receptionNumber, request, receptionTime: now, readyAt };
    this.batches.set(receptionNumber, stored);
    // Central works on a batch between its receipt and its readiness, not while a fetch waits: the
    // results are made (and encoded) when it becomes ready, so that a fetch costs only the latency
    // (200 results took the simulator ~30 ms of CPU, more than the 20 ms the benchmark allows).
    setTimeout(
      () => {
        if (this.batches.get(receptionNumber) === stored) this.answerOf(stored);
      },
      Math.max(0, readyAt - Date.now()),
    ).unref();
    while (this.batches.size > MAX_STORED) this.batches.delete(this.batches.keys().next().value as string);
    this.stats.submits++;
    this.stats.entries += request.entries.length;
    const fileKey = request.fileId ?? '';
    this.stats.submitsByFileId[fileKey] = (this.stats.submitsByFileId[fileKey] ?? 0) + 1;
    receipt.receptionNumber = receptionNumber;
    receipt.receptionTime = now;
    return { status: 200, body: encodeBatchReceiptJson(receipt) };
  }

  /** OQSmuquc02req (JSON form) → OQSmuquc02res: 処理中, the results, or 9 for a number we do not know. */
  fetch(body: unknown): { status: number; body: unknown } {
    let request: ReturnType<typeof decodeBatchFetchJson>;
    try {
      request = decodeBatchFetchJson(body);
    } catch (e) {
      throw new HttpError(400, 'REQUEST_INVALID', (e as Error).message);
    }
    this.stats.fetches++;
    this.stats.fetchesByReception[request.receptionNumber] =
      (this.stats.fetchesByReception[request.receptionNumber] ?? 0) + 1;
    const batch = this.batches.get(request.receptionNumber);
    // Another institution's number is answered exactly like an unknown one.
    if (batch === undefined || batch.request.institutionCode !== request.institutionCode) {
      this.stats.unknown++;
      const unknown: BatchResult = {
        header: {
          processTime: this.stamp(),
          institutionCode: request.institutionCode,
          receptionNumber: request.receptionNumber,
          segmentOfResult: '9',
          errorCode: SIM_BATCH_CODES.unknownReception,
          errorMessage: '受付番号に該当する一括照会がありません。',
          characterCode: '0',
        },
        units: [],
      };
      return { status: 200, body: encodeBatchResultJson(unknown) };
    }
    if (batch.result === undefined && Date.now() < batch.readyAt) {
      this.stats.pending++;
      const pending: BatchResult = { header: { ...this.headerOf(batch), segmentOfResult: '2' }, units: [] };
      return { status: 200, body: encodeBatchResultJson(pending) };
    }
    return { status: 200, body: this.answerOf(batch) };
  }

  private answerOf(batch: StoredBatch): unknown {
    batch.result ??= this.process(batch);
    // Not read back after encoding: the gateway validates every answer it reads, and reading 200
    // units back cost the simulator as much CPU again as making them (on the cores it shares with the gateway).
    batch.answer ??= encodeBatchResultJson(batch.result, { check: false });
    return batch.answer;
  }

  private headerOf(batch: StoredBatch): BatchResult['header'] {
    const h: BatchResult['header'] = {
      processTime: this.stamp(),
      confirmationDate: batch.request.confirmationDate,
      institutionCode: batch.request.institutionCode,
      receptionNumber: batch.receptionNumber,
      segmentOfResult: '1',
      characterCode: '0',
    };
    if (batch.request.fileId !== undefined) h.fileId = batch.request.fileId;
    return h;
  }

  private process(batch: StoredBatch): BatchResult {
    const today = this.host.today();
    const units = batch.request.entries.map((q) => this.unitFor(q, batch.request.confirmationDate, today));
    const normal = units.filter((u) => u.status === '1').length;
    return { header: { ...this.headerOf(batch), total: units.length, normal, errors: units.length - normal }, units };
  }

  private unitFor(q: NumbersQuery, date: string, today: string): BatchResultUnit {
    const echo: NumbersQuery = { ...q };
    let checked: NumbersQuery;
    try {
      checked = validateNumbersQuery(q);
    } catch (e) {
      if (!isOqsError(e)) throw e;
      // A per-entry error: the rest of the batch is still answered (spec §10.4, the second unit).
      return {
        query: echo,
        status: '2',
        results: [],
        resultCode: SIM_BATCH_CODES.queryInvalid,
        resultMessage: `照会内容に誤りがあります（${String(e.details.reason ?? 'invalid')}）。`,
      };
    }
    const e = eligibilityByNumbers(this.host.people, checked, date, today);
    return {
      query: echo,
      status: '1',
      validity: e.validity,
      results: e.matches.map((m) => toResult(m.person, m.qualification, q.limitConsent === '1')),
    };
  }

  private stamp(): string {
    return this.host.today() + timestampJst().slice(8);
  }

  // ---------------------------------------------------------------- control (loopback)

  /** /control/batch/settings (GET, PUT), /control/batch/stats, /control/batch/list. */
  async control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method === 'GET' && path === '/control/batch/settings') return sendJson(res, 200, this.settings);
    if (req.method === 'PUT' && path === '/control/batch/settings') {
      this.updateSettings(objectBody(await readJson(req)));
      return sendJson(res, 200, this.settings);
    }
    if (req.method === 'GET' && path === '/control/batch/stats') return sendJson(res, 200, this.stats);
    if (req.method === 'GET' && path === '/control/batch/list') {
      const now = Date.now();
      return sendJson(
        res,
        200,
        [...this.batches.values()].map((b) => ({
          receptionNumber: b.receptionNumber,
          fileId: b.request.fileId ?? null,
          confirmationDate: b.request.confirmationDate,
          entries: b.request.entries.length,
          state: b.result !== undefined ? 'done' : now < b.readyAt ? 'processing' : 'ready',
          readyInMs: Math.max(0, b.readyAt - now),
        })),
      );
    }
    throw new HttpError(404, 'NOT_FOUND', `no control endpoint ${req.method} ${path}`);
  }

  updateSettings(patch: Record<string, unknown>): void {
    const limits: Record<keyof BatchSettings, [number, number]> = {
      readyAfterMs: [0, 3_600_000],
      perEntryMs: [0, 60_000],
      maxEntries: [1, 100_000],
    };
    for (const k of Object.keys(patch))
      if (!Object.hasOwn(limits, k)) throw new HttpError(400, 'BAD_SETTING', `unknown batch setting ${k}`);
    for (const [k, [min, max]] of Object.entries(limits) as Array<[keyof BatchSettings, [number, number]]>) {
      const v = patch[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
        throw new HttpError(400, 'BAD_SETTING', `${k} must be a number in ${min}..${max}`);
    }
    Object.assign(this.settings, patch);
  }
}
