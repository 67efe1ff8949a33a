/**
 * The check by numbers: a receipt computer's question → a validated OQS request → central → the answer
 * the counter sees. Pure orchestration; the transport (WebSocket, CLI) lives elsewhere.
 */
import { randomUUID } from 'node:crypto';
import { validateNumbersQuery } from '../oqs/index.js';
import type { NumbersQuery, QualificationRequest } from '../oqs/types.js';
import type { CentralClient } from '../sync/central-client.js';
import { todayJst } from '../oqs/dates.js';
import type { NumbersQueryInput } from '../protocol/schema.js';
import { shouldFallBack, type OutagePath } from './outage.js';
import {
  type CheckContext,
  type InquiryResult,
  numbersLookup,
  type RecheckScheduler,
  toInquiryResult,
  withAdvice,
} from './result.js';

export interface InquiryDeps {
  central: CentralClient;
  institutionCode: string;
  /** the outage path (cache, outbox, link state); without it a line failure is an error */
  outage?: OutagePath;
  /** time-lag rechecks; without it none are scheduled */
  rechecks?: RecheckScheduler;
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
    query: NumbersQueryInput;
    confirmationDate?: string;
    requestId: string;
    clientId?: string;
    deadline: number;
    context?: CheckContext;
    /** a key the caller kept from an earlier attempt at the same check (the file exchange after a restart) */
    idempotencyKey?: string;
  },
): Promise<InquiryResult> {
  const query = toNumbersQuery(input.query);
  const ctx: CheckContext = {
    ...input.context,
    consent: { ...input.context?.consent, limit: query.limitConsent === '1' },
  };
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
  const offline = async (cause: string): Promise<InquiryResult> =>
    advise(
      await outage!.answer({
        lookup: numbersLookup(query),
        referenceClassification: '2',
        confirmationDate: request.confirmationDate,
        cause,
        entry: {
          idempotencyKey,
          kind: 'numbers',
          payload: {
            request,
            inquiryId: input.requestId,
            ...(input.clientId ? { clientId: input.clientId } : {}),
            ...(ctx.changedInsurer ? { changedInsurer: true } : {}),
          },
        },
      }),
    );
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
  await deps.rechecks?.consider(advised, {
    request,
    clientId: input.clientId,
    inquiryId: input.requestId,
    changedInsurer: ctx.changedInsurer === true,
  });
  return advised;
}
