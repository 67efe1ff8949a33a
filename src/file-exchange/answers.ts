/**
 * What a request file is answered with: 資格確認 through the inquiry flow, a batch submitted to
 * central or fetched from it, and for anything that cannot be processed an error answer
 * (SegmentOfResult 9) — never silence, never a crash.
 */
import { OnshiError, isOnshiError } from '../core/errors.js';
import {
  type BatchResult,
  batchOutcome,
  declaredEncoding,
  decodeBatchFetchXml,
  decodeBatchSubmitXml,
  decodeRequestXml,
  encodeBatchReceiptXml,
  encodeBatchResultXml,
  encodeErrorAnswer,
  encodeResponseXml,
  type ExchangeName,
  shiftJisSafeBody,
  shiftJisSafeResponse,
  shiftJisSafeText,
} from '../oqs/index.js';
import { timestampJst, todayJst } from '../oqs/dates.js';
import type { CharacterCode, NumbersQuery } from '../oqs/types.js';
import type { NumbersQueryInput } from '../protocol/schema.js';
import { responseOf } from './response-file.js';
import { type Answer, type FileExchangeDeps, type FileExchangeErrorCode, ShuttingDown, sleep } from './types.js';

const CLIENT_ID = 'file-exchange';

/** What an error answer repeats of its request, filled in as far as the request was read. */
interface ErrorContext {
  kind: ExchangeName['kind'];
  characterCode: CharacterCode;
  confirmationDate?: string;
  fileId?: string;
  receptionNumber?: string;
}

export class RequestAnswers {
  constructor(
    private readonly d: FileExchangeDeps,
    /** aborts batch waits at shutdown */
    private readonly signal: AbortSignal,
  ) {}

  /** Never throws for a bad request or a failed check: those are answered with SegmentOfResult 9. */
  async answer(name: ExchangeName, content: Buffer | undefined, idempotencyKey: string): Promise<Answer> {
    const characterCode = this.characterCodeFor(content);
    const ctx: ErrorContext = { kind: name.kind, characterCode };
    try {
      if (content === undefined) {
        throw new OnshiError('OQS_XML_TOO_LARGE', `the request file is larger than ${this.d.options.maxBytes} bytes`);
      }
      switch (name.kind) {
        case 'single':
          return await this.single(content, idempotencyKey, ctx);
        case 'batchSubmit':
          return await this.batchSubmit(content, idempotencyKey, ctx);
        case 'batchFetch':
          return await this.batchFetch(content, ctx);
        case 'unsupported':
          throw new OnshiError<FileExchangeErrorCode>(
            'FX_UNSUPPORTED',
            `${name.prefix}${name.scope}${name.job}${name.step} files are not answered by the gateway; use the 資格確認端末 for them`,
          );
      }
    } catch (e) {
      if (e instanceof ShuttingDown) throw e;
      return this.errorAnswer(ctx, e);
    }
  }

  /** The error answer for a request the gateway will not read (a symbolic link, a FIFO…). */
  refuse(name: ExchangeName, e: OnshiError): Answer {
    return this.errorAnswer({ kind: name.kind, characterCode: this.characterCodeFor(undefined) }, e);
  }

  private characterCodeFor(content: Buffer | undefined): CharacterCode {
    const e = this.d.options.encoding;
    if (e === 'UTF-8') return '0';
    if (e === 'Shift_JIS') return '1';
    return content !== undefined && declaredEncoding(content) === 'Shift_JIS' ? '1' : '0';
  }

  private errorAnswer(ctx: ErrorContext, e: unknown): Answer {
    let errorCode = isOnshiError(e) ? e.code : 'INTERNAL';
    let errorMessage = e instanceof Error ? e.message : String(e);
    // Central's own 別紙6-1 code, when it answered 異常終了, passes through verbatim (spec §8).
    if (isOnshiError(e, 'CENTRAL_REJECTED') && typeof e.details.errorCode === 'string') errorCode = e.details.errorCode;
    if (!isOnshiError(e)) {
      errorMessage = 'internal error while answering the request';
      this.d.logger.error('unexpected error while answering a request file', {
        event: 'fx_internal_error',
        error: e instanceof Error ? e.message : String(e),
      });
    }
    const bytes = encodeErrorAnswer({
      kind: ctx.kind,
      processTime: timestampJst(),
      institutionCode: this.d.institutionCode,
      characterCode: ctx.characterCode,
      errorCode,
      errorMessage,
      ...(ctx.confirmationDate ? { confirmationDate: ctx.confirmationDate } : {}),
      ...(ctx.fileId ? { fileId: ctx.fileId } : {}),
      ...(ctx.receptionNumber ? { receptionNumber: ctx.receptionNumber } : {}),
    });
    return { bytes, outcome: { segmentOfResult: '9', errorCode } };
  }

  private checkInstitution(code: string): void {
    if (code !== this.d.institutionCode) {
      throw new OnshiError<FileExchangeErrorCode>(
        'FX_INSTITUTION_MISMATCH',
        `the request is for 医療機関コード ${code}, this gateway serves ${this.d.institutionCode}`,
      );
    }
  }

  private async single(content: Buffer, idempotencyKey: string, ctx: ErrorContext): Promise<Answer> {
    const { request } = decodeRequestXml(content, { maxBytes: this.d.options.maxBytes });
    ctx.confirmationDate = request.confirmationDate;
    if (request.fileId !== undefined) ctx.fileId = request.fileId;
    this.checkInstitution(request.institutionCode);
    const result = await this.d.inquire({
      query: queryInput(request.query),
      confirmationDate: request.confirmationDate,
      requestId: request.fileId ?? idempotencyKey,
      clientId: CLIENT_ID,
      deadline: Date.now() + this.d.options.deadlineMs,
      idempotencyKey,
    });
    if (result.source === 'none') {
      const u = result.unavailable!;
      const queued = result.recheck?.queued
        ? ' 回線の復旧後に自動で再確認します。'
        : result.recheck
          ? ` ${result.recheck.message}`
          : '';
      throw new OnshiError(u.code, `${u.guidance[0] ?? ''}${queued} (${u.message})`);
    }
    const response = responseOf(result, {
      referenceClassification: '2',
      institutionCode: this.d.institutionCode,
      characterCode: ctx.characterCode,
      processTime: result.processTime ?? timestampJst(),
      query: request.query,
      ...(request.fileId ? { fileId: request.fileId } : {}),
    });
    const bytes = encodeResponseXml(ctx.characterCode === '1' ? shiftJisSafeResponse(response) : response);
    return {
      bytes,
      outcome: {
        segmentOfResult: '1',
        source: result.source,
        ...(result.validity ? { validity: result.validity } : {}),
      },
    };
  }

  private async batchSubmit(content: Buffer, idempotencyKey: string, ctx: ErrorContext): Promise<Answer> {
    const { request } = decodeBatchSubmitXml(content, { maxBytes: this.d.options.maxBytes });
    ctx.confirmationDate = request.confirmationDate;
    if (request.fileId !== undefined) ctx.fileId = request.fileId;
    this.checkInstitution(request.institutionCode);
    const receipt = await this.d.central.submitBatch(request, {
      deadline: Date.now() + this.d.centralTimeoutMs,
      idempotencyKey,
    });
    const header = { ...receipt.header, characterCode: ctx.characterCode };
    if (ctx.characterCode === '1' && header.errorMessage !== undefined)
      header.errorMessage = shiftJisSafeText(header.errorMessage);
    const bytes = encodeBatchReceiptXml({ ...receipt, header });
    return { bytes, outcome: { segmentOfResult: header.segmentOfResult, entries: request.entries.length } };
  }

  /** Fetches the batch, waiting up to batchWaitMs while central says 処理中. */
  private async batchFetch(content: Buffer, ctx: ErrorContext): Promise<Answer> {
    const { request } = decodeBatchFetchXml(content, { maxBytes: this.d.options.maxBytes });
    ctx.receptionNumber = request.receptionNumber;
    ctx.confirmationDate = todayJst();
    this.checkInstitution(request.institutionCode);
    const { batchWaitMs, batchPollMs } = this.d.options;
    const waitEnd = Date.now() + batchWaitMs;
    const fetch = (): Promise<BatchResult> =>
      this.d.central.fetchBatch(request.receptionNumber, request.institutionCode, {
        deadline: Date.now() + this.d.centralTimeoutMs,
      });
    let result = await fetch();
    while (batchOutcome(result).state === 'pending' && Date.now() + batchPollMs <= waitEnd) {
      await sleep(batchPollMs, this.signal);
      result = await fetch();
    }
    const header = { ...result.header, characterCode: ctx.characterCode };
    let units = result.units;
    if (ctx.characterCode === '1') {
      if (header.errorMessage !== undefined) header.errorMessage = shiftJisSafeText(header.errorMessage);
      units = units.map((u) => shiftJisSafeBody(u));
    }
    const bytes = encodeBatchResultXml({ ...result, header, units });
    return { bytes, outcome: { segmentOfResult: header.segmentOfResult, units: units.length } };
  }
}

/** A request block as the API's input (the inquiry flow validates and normalizes it again). */
function queryInput(q: NumbersQuery): NumbersQueryInput {
  return {
    insurerNumber: q.insurerNumber,
    number: q.number,
    birthdate: q.birthdate,
    limitConsent: q.limitConsent === '1',
    ...(q.symbol !== undefined ? { symbol: q.symbol } : {}),
    ...(q.branch !== undefined ? { branch: q.branch } : {}),
    ...(q.arbitraryId !== undefined ? { arbitraryId: q.arbitraryId } : {}),
  };
}
