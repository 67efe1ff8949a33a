/**
 * What a check answers, whichever flow made it (numbers, card, cache, replay): the counter's
 * InquiryResult, its advice, and the shapes the flows share. No I/O.
 */
import { OnshiError } from '../core/errors.js';
import { VALIDITY_LABEL } from '../oqs/index.js';
import type {
  NumbersQuery,
  QualificationRequest,
  QualificationResponse,
  QualificationResult,
  Validity,
} from '../oqs/types.js';
import type { LookupInput } from '../cache/index.js';
import {
  adviseAnswer,
  type ConsentFlags,
  type ConsentName,
  type CounterAdvice,
  type ResultWarning,
} from './counter-advice.js';
import type { KnownPatientFacts, NameTarget } from '../oqs/advice.js';

export type RecheckOutcome =
  | { scheduled: true; id: number; until: string; duplicate: boolean }
  | { scheduled: false; code: 'RECHECK_NO_NUMBERS' | 'RECHECK_NOT_STORED'; message: string };

export interface InquiryResult {
  /** 照会区分: '2' by numbers, '1' by card */
  referenceClassification: '1' | '2';
  /**
   * where the answer came from: 'central' = asked just now; 'cache' = central could not be reached
   * and this is what central said at `verifiedAt`; 'none' = nothing is known (see `unavailable`)
   */
  source: 'central' | 'cache' | 'none';
  /** when this answer was given to the counter (ISO 8601) */
  answeredAt: string;
  /** when central confirmed this answer (ISO 8601); absent when source is 'none' */
  verifiedAt?: string;
  /** central's 処理実行日時 (JST, YYYYMMDDHHmmss) */
  processTime?: string;
  confirmationDate: string;
  /** 処理結果状況: '1' answered, '2' a per-person error (see resultCode/resultMessage); absent when source is 'none' */
  status?: '1' | '2';
  validity?: Validity;
  validityLabel?: string;
  resultCode?: string;
  resultMessage?: string;
  /** things staff should read, never errors (e.g. a ProcessingResultCode on a successful answer) */
  notices: string[];
  results: QualificationResult[];
  query?: NumbersQuery;
  /** source 'none': why, and what the counter can do instead */
  unavailable?: { code: string; message: string; guidance: string[] };
  /**
   * An outage check is re-verified with central when the line returns. `queued: true` means it is
   * durably in the outbox (committed before this answer was sent); `queued: false` says why not.
   */
  recheck?: { queued: true; outboxId: number } | { queued: false; code: string; message: string };
  /** what staff must look at before relying on the answer (typed; see docs/api.md) */
  warnings: ResultWarning[];
  /** the advice fields (counter-advice.ts): names, known facts, 複数該当, consent echo */
  nameFallback?: CounterAdvice['nameFallback'];
  nameTarget?: CounterAdvice['nameTarget'];
  knownFacts?: CounterAdvice['knownFacts'];
  possibleMisregistration?: boolean;
  multipleMatches?: CounterAdvice['multipleMatches'];
  consent?: CounterAdvice['consent'];
  /** a 無効 / 該当資格なし answer after a change of insurer: rechecked daily (see rechecks.ts) */
  timeLagRecheck?: RecheckOutcome;
}

/** What a check adds to its question beyond the identifiers: used for the advice and the rechecks. */
export interface CheckContext {
  knownFacts?: KnownPatientFacts;
  changedInsurer?: boolean;
  consent?: ConsentFlags;
  nameTarget?: NameTarget;
}

/**
 * Adds the counter advice to an answer (central's or the cache's). `extraWarnings` come first
 * (e.g. the card certificate's). An answer with nothing known (source none) gets warnings only.
 */
export function withAdvice(
  result: InquiryResult,
  ctx: CheckContext,
  sentToCentral: ConsentName[],
  extraWarnings: ResultWarning[] = [],
): InquiryResult {
  if (result.source === 'none') return { ...result, warnings: [...extraWarnings] };
  const { advice, results } = adviseAnswer({
    ...(result.validity !== undefined ? { validity: result.validity } : {}),
    results: result.results,
    ...(ctx.knownFacts ? { knownFacts: ctx.knownFacts } : {}),
    consent: ctx.consent ?? {},
    sentToCentral,
    ...(ctx.nameTarget ? { nameTarget: ctx.nameTarget } : {}),
  });
  const out: InquiryResult = { ...result, results, ...advice, warnings: [...extraWarnings, ...advice.warnings] };
  if (advice.knownFacts === undefined) delete out.knownFacts;
  return out;
}

export type InquiryErrorCode = 'CENTRAL_REJECTED';

/** The part of the recheck job the flows use (rechecks.ts). */
export interface RecheckScheduler {
  consider(
    result: InquiryResult,
    check: {
      request?: QualificationRequest;
      clientId?: string | undefined;
      inquiryId: string;
      changedInsurer: boolean;
    },
  ): Promise<void>;
}

export function numbersLookup(q: NumbersQuery): LookupInput {
  return {
    kind: 'numbers',
    insurerNumber: q.insurerNumber,
    number: q.number,
    birthdate: q.birthdate,
    ...(q.symbol !== undefined ? { symbol: q.symbol } : {}),
    ...(q.branch !== undefined ? { branch: q.branch } : {}),
  };
}

/** What the counter sees. A SegmentOfResult other than 1 is a failure of the whole request. */
export function toInquiryResult(response: QualificationResponse): InquiryResult {
  const { header, body } = response;
  if (header.segmentOfResult !== '1') {
    throw new OnshiError<InquiryErrorCode>(
      'CENTRAL_REJECTED',
      `central could not process the request${header.errorMessage ? `: ${header.errorMessage}` : ''}`,
      {
        retryable: header.segmentOfResult === '2',
        details: {
          segmentOfResult: header.segmentOfResult,
          ...(header.errorCode ? { errorCode: header.errorCode } : {}),
        },
      },
    );
  }
  const now = new Date().toISOString();
  const result: InquiryResult = {
    referenceClassification: header.referenceClassification,
    source: 'central',
    answeredAt: now,
    verifiedAt: now,
    processTime: header.processTime,
    confirmationDate: header.confirmationDate,
    status: body.status,
    notices: [],
    results: body.results,
    warnings: [],
  };
  if (body.validity !== undefined) {
    result.validity = body.validity;
    result.validityLabel = VALIDITY_LABEL[body.validity];
  }
  if (body.resultCode !== undefined) result.resultCode = body.resultCode;
  if (body.resultMessage !== undefined) result.resultMessage = body.resultMessage;
  // spec §8 (6): a ProcessingResultCode on success is informational — show it, never fail on it.
  if (body.status === '1' && (body.resultCode !== undefined || body.resultMessage !== undefined)) {
    result.notices.push([body.resultCode, body.resultMessage].filter(Boolean).join(' '));
  }
  if (body.query !== undefined) result.query = body.query;
  return result;
}
