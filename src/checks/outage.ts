/**
 * The outage path: what the counter is told when central cannot be reached, and the durable
 * promise to ask central again later.
 *
 * Order matters: the re-verification is committed to the outbox (synchronous=FULL) *before* the
 * answer is returned, so an answer that says `recheck.queued: true` is never lost, whatever
 * happens to the box next. If the outbox refuses (full, disk full), the answer says so instead.
 * A cached answer is always marked `source: "cache"` with the time central confirmed it; without
 * one within the maximum age the answer is `source: "none"` with the fallback guidance.
 */
import { codeOf, OnshiError, isOnshiError } from '../core/errors.js';
import type { GatewayStore, LookupInput } from '../cache/index.js';
import type { LinkMonitor } from '../sync/link.js';
import type { EventHub } from '../protocol/events.js';
import type { InquiryResult } from './result.js';
import { ADVICE_FIELDS } from './counter-advice.js';
import type { Logger } from '../core/logger.js';
import { summarize } from './outcome.js';

export const FALLBACK_GUIDANCE = [
  '資格確認書（または有効期限内の被保険者証）で資格を確認してください。',
  'お持ちでない場合は「被保険者資格申立書」に記入していただき、回線の復旧後にゲートウェイが自動で再確認します。',
  'Check eligibility with the 資格確認書 (or a still-valid 被保険者証); without one, have the patient fill in the 被保険者資格申立書 — the gateway re-verifies with central when the line is back.',
];

/**
 * What is cached of central's answer: not when or how this particular answer was given, nor the
 * advice that depends on what the request knew (recomputed for every answer, see withAdvice).
 */
export function cacheable(result: InquiryResult): Omit<InquiryResult, 'answeredAt' | 'recheck'> {
  const { answeredAt, recheck, ...answer } = result;
  void answeredAt;
  void recheck;
  const out = answer as Partial<InquiryResult>;
  for (const f of ADVICE_FIELDS) delete out[f];
  return out as Omit<InquiryResult, 'answeredAt' | 'recheck'>;
}

/** The fraction of the outbox at which staff are warned. */
export const OUTBOX_ALERT_RATIO = 0.8;

/** True when a failed live request should be answered on the outage path rather than as an error. */
export function shouldFallBack(e: unknown): e is OnshiError {
  if (!(e instanceof OnshiError)) return false;
  if (e.code === 'CENTRAL_REJECTED') return e.retryable; // 処理中: central may answer later
  // A refusal is central's answer about this request (bad numbers, revoked card): the counter must see it.
  return e.code.startsWith('CENTRAL_') && e.code !== 'CENTRAL_REFUSED';
}

export interface OutageOptions {
  store: GatewayStore;
  link: LinkMonitor;
  events: EventHub;
  logger: Logger;
  cacheMaxAgeMs: number;
  /** of each deadline, kept for the cache lookup and the outbox commit */
  offlineReserveMs: number;
  /** something was queued: wake the relay */
  onQueued?: () => void;
}

export interface OutageAnswerInput {
  lookup: LookupInput;
  referenceClassification: '1' | '2';
  confirmationDate: string;
  /** why central was not asked or did not answer (a CENTRAL_* code, or LINE_DOWN) */
  cause: string;
  entry: { idempotencyKey: string; kind: 'numbers' | 'card'; payload: Record<string, unknown> };
  /** extra notices for the counter (e.g. the revocation list's age on a card check) */
  notices?: string[];
}

export class OutagePath {
  private nearlyFullAlerted = false;

  constructor(private readonly o: OutageOptions) {}

  get link(): LinkMonitor {
    return this.o.link;
  }

  /** The deadline for the live attempt: the caller's, less what the outage path needs. */
  liveDeadline(deadline: number, now = Date.now()): number {
    const budget = deadline - now;
    return deadline - Math.min(this.o.offlineReserveMs, Math.max(0, budget * 0.4));
  }

  /**
   * Caches central's answer for outages. Not awaited by the counter: a lost cache write is refetched.
   * Deferred: it shares a commit with the writes of the checks around it (a commit per live check
   * was most of the writer thread's CPU per check).
   */
  remember(lookup: LookupInput, result: InquiryResult): void {
    const answer = cacheable(result);
    const verifiedAt = new Date(result.verifiedAt ?? result.answeredAt);
    // After the counter's answer is on its way (setImmediate runs after this turn's socket writes):
    // the key derivation, encryption and hand-off to the writer are not the patient's wait.
    setImmediate(() => {
      this.o.store.eligibility.put(lookup, answer, verifiedAt, 'central', { defer: true }).catch((e: unknown) => {
        this.o.logger.warn('could not cache an answer', { event: 'cache_write_failed', code: codeOf(e) });
      });
    });
  }

  async answer(input: OutageAnswerInput): Promise<InquiryResult> {
    const result = this.fromCache(input) ?? this.unavailable(input);
    if (input.notices) result.notices.push(...input.notices);
    const payload = { ...input.entry.payload, told: summarize(result), toldAt: result.answeredAt };
    try {
      const { id, depth } = await this.o.store.outbox.enqueue({
        idempotencyKey: input.entry.idempotencyKey,
        kind: input.entry.kind,
        payload,
      });
      result.recheck = { queued: true, outboxId: id };
      this.checkFill(depth);
      this.o.onQueued?.();
    } catch (e) {
      const code = isOnshiError(e) ? e.code : 'INTERNAL';
      const message =
        code === 'OUTBOX_FULL'
          ? 'The re-verification queue is full: this check was NOT queued. Note it and check again when the line is back.'
          : code === 'STORE_DISK_FULL'
            ? "The gateway's disk is full: this check was NOT queued. Note it and check again when the line is back."
            : `This check could not be queued (${code}). Note it and check again when the line is back.`;
      result.recheck = { queued: false, code, message };
      this.o.logger.error('outbox refused a re-verification', { event: 'outbox_refused', code });
      this.o.events.publish('outbox', 'outbox.alert', { code, message });
    }
    this.o.logger.debug('answered during outage', {
      event: 'outage_answer',
      source: result.source,
      cause: input.cause,
      queued: result.recheck.queued,
    });
    return result;
  }

  private fromCache(input: OutageAnswerInput): InquiryResult | undefined {
    let hit: ReturnType<GatewayStore['eligibility']['get']>;
    try {
      hit = this.o.store.eligibility.get(input.lookup, this.o.cacheMaxAgeMs);
    } catch (e) {
      // A tampered or unreadable row is no answer; say so in the log, never serve it.
      this.o.logger.error('a cached answer failed its integrity check', {
        event: 'cache_read_failed',
        code: codeOf(e),
      });
      return undefined;
    }
    if (!hit) return undefined;
    const cached = hit.answer as InquiryResult;
    const verifiedAt = hit.verifiedAt.toISOString();
    return {
      ...cached,
      warnings: [],
      source: 'cache',
      answeredAt: new Date().toISOString(),
      verifiedAt,
      notices: [
        ...(cached.notices ?? []),
        `中央に接続できないため、${verifiedAt} に中央で確認された結果を表示しています（回線の復旧後に再確認します）。 Central is unreachable: this is central's answer of ${verifiedAt}; it is re-verified when the line is back.`,
      ],
    };
  }

  private unavailable(input: OutageAnswerInput): InquiryResult {
    return {
      referenceClassification: input.referenceClassification,
      source: 'none',
      answeredAt: new Date().toISOString(),
      confirmationDate: input.confirmationDate,
      notices: [],
      results: [],
      warnings: [],
      unavailable: {
        code: 'ELIGIBILITY_UNAVAILABLE',
        message: `Central cannot be reached (${input.cause}) and no answer for this patient confirmed within the last ${Math.round(this.o.cacheMaxAgeMs / 3600_000)} h is cached.`,
        guidance: FALLBACK_GUIDANCE,
      },
    };
  }

  private checkFill(depth: number): void {
    const ratio = depth / this.o.store.outboxMax;
    if (ratio >= OUTBOX_ALERT_RATIO && !this.nearlyFullAlerted) {
      this.nearlyFullAlerted = true;
      const message = `The re-verification queue is ${Math.round(ratio * 100)} % full (${depth} of ${this.o.store.outboxMax}); at 100 % new outage checks are refused.`;
      this.o.logger.warn(message, { event: 'outbox_nearly_full', depth, max: this.o.store.outboxMax });
      this.o.events.publish(
        'outbox',
        'outbox.alert',
        { code: 'OUTBOX_NEARLY_FULL', depth, max: this.o.store.outboxMax, message },
        { retain: true },
      );
    } else if (ratio < OUTBOX_ALERT_RATIO * 0.9) {
      this.nearlyFullAlerted = false;
    }
  }
}
