/**
 * The inquiry flow: a receipt computer's question → a validated OQS request → central → the answer
 * the counter sees. Pure orchestration; the transport (WebSocket, CLI) lives elsewhere.
 */
import { randomUUID } from 'node:crypto';
import { OnshiError } from '../errors.js';
import { validateNumbersQuery, VALIDITY_LABEL } from '../oqs/index.js';
import type { NumbersQuery, QualificationRequest, QualificationResponse, QualificationResult, Validity } from '../oqs/types.js';
import type { CentralClient } from '../sync/central-client.js';
import { todayJst } from '../oqs/dates.js';
import type { LookupInput } from '../cache/index.js';
import type { NumbersQueryInput } from './api-schema.js';
import { shouldFallBack, type OutagePath } from './outage.js';
import { adviseAnswer, type ConsentFlags, type ConsentName, type CounterAdvice, type ResultWarning } from './counter-advice.js';
import type { KnownPatientFacts, NameTarget } from '../oqs/advice.js';
import type { RecheckOutcome } from './rechecks.js';

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
export function withAdvice(result: InquiryResult, ctx: CheckContext, sentToCentral: ConsentName[], extraWarnings: ResultWarning[] = []): InquiryResult {
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

export interface InquiryDeps {
  central: CentralClient;
  institutionCode: string;
  /** the outage path (cache, outbox, link state); without it a line failure is an error */
  outage?: OutagePath;
  /** time-lag rechecks; without it none are scheduled */
  rechecks?: RecheckScheduler;
}

/** The part of the recheck job the flows use (rechecks.ts). */
export interface RecheckScheduler {
  consider(result: InquiryResult, check: { request?: QualificationRequest; clientId?: string | undefined; inquiryId: string; changedInsurer: boolean }): Promise<void>;
}

export function numbersLookup(q: NumbersQuery): LookupInput {
  return {
    kind: 'numbers', insurerNumber: q.insurerNumber, number: q.number, birthdate: q.birthdate,
    ...(q.symbol !== undefined ? { symbol: q.symbol } : {}), ...(q.branch !== undefined ? { branch: q.branch } : {}),
  };
}

export function toNumbersQuery(input: NumbersQueryInput): NumbersQuery {
  const q: NumbersQuery = {
    insurerNumber: input.insurerNumber,
    number: input.number,
    birthdate: input.birthdate,
    limitConsent: input.limitConsent ? '1' : '0',
  };
  if (input.symbol !== undefined && input.symbol !== '') q.symbol = input.symbol;
  // validateNumbersQuery pads the insurer number and the branch to their wire forms.
  if (input.branch !== undefined && input.branch !== '') q.branch = input.branch;
  if (input.arbitraryId !== undefined) q.arbitraryId = input.arbitraryId;
  return validateNumbersQuery(q);
}

export async function inquireByNumbers(
  deps: InquiryDeps,
  input: {
    query: NumbersQueryInput; confirmationDate?: string; requestId: string; clientId?: string; deadline: number; context?: CheckContext;
    /** a key the caller kept from an earlier attempt at the same check (the file exchange after a restart) */
    idempotencyKey?: string;
  },
): Promise<InquiryResult> {
  const query = toNumbersQuery(input.query);
  const ctx: CheckContext = { ...input.context, consent: { ...input.context?.consent, limit: query.limitConsent === '1' } };
  // 照会区分 2 carries the 限度額 consent only; the other flags are echoed, not sent.
  const advise = (r: InquiryResult): InquiryResult => withAdvice(r, ctx, ['limit']);
  const request: QualificationRequest = {
    confirmationDate: input.confirmationDate ?? todayJst(),
    institutionCode: deps.institutionCode,
    fileId: input.requestId.replace(/[^\x21-\x7e]/g, '').slice(0, 50),
    query,
  };
  // One key for the live attempt and any replay of it: central never acts twice on one check.
  const idempotencyKey = input.idempotencyKey ?? randomUUID();
  const { outage } = deps;
  const offline = async (cause: string): Promise<InquiryResult> => advise(await outage!.answer({
    lookup: numbersLookup(query), referenceClassification: '2', confirmationDate: request.confirmationDate, cause,
    entry: {
      idempotencyKey, kind: 'numbers',
      payload: { request, inquiryId: input.requestId, ...(input.clientId ? { clientId: input.clientId } : {}), ...(ctx.changedInsurer ? { changedInsurer: true } : {}) },
    },
  }));
  if (outage && !outage.link.allowRequest()) return offline('LINE_DOWN');
  const started = performance.now();
  let result: InquiryResult;
  try {
    const deadline = outage ? outage.liveDeadline(input.deadline) : input.deadline;
    result = toInquiryResult(await deps.central.searchByNumbers(request, { deadline, idempotencyKey }));
  } catch (e) {
    if (!outage || !shouldFallBack(e)) throw e;
    outage.link.recordFailure(e);
    return offline(e.code);
  }
  if (outage) {
    outage.link.recordSuccess(performance.now() - started);
    outage.remember(numbersLookup(query), result);
  }
  const advised = advise(result);
  await deps.rechecks?.consider(advised, { request, clientId: input.clientId, inquiryId: input.requestId, changedInsurer: ctx.changedInsurer === true });
  return advised;
}

/** What the counter sees. A SegmentOfResult other than 1 is a failure of the whole request. */
export function toInquiryResult(response: QualificationResponse): InquiryResult {
  const { header, body } = response;
  if (header.segmentOfResult !== '1') {
    throw new OnshiError<InquiryErrorCode>('CENTRAL_REJECTED', `central could not process the request${header.errorMessage ? `: ${header.errorMessage}` : ''}`, {
      retryable: header.segmentOfResult === '2',
      details: { segmentOfResult: header.segmentOfResult, ...(header.errorCode ? { errorCode: header.errorCode } : {}) },
    });
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
