/**
 * The audit trail and the check counters: every check, admin action and token change goes to the
 * store's hash chain (a check with its method as the mode); every check is counted in the metrics,
 * every successful one in the store's use counts (the admin page's マイナ保険証 use). A failed append is logged loudly but
 * never turns an answer the counter needs into an error.
 */
import type { AuditInput, GatewayStore, UsageMethod, UsagePatient } from '../cache/index.js';
import { codeOf } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { RequestContext } from '../api/ws-server.js';
import type { CheckKind, CheckSource, GatewayMetrics } from '../ops/metrics.js';

type CheckAnswer = {
  source?: string;
  status?: string;
  validity?: string;
  /** who central's answer names (the first result is the patient counted in the use counts) */
  results?: readonly Partial<UsagePatient>[];
};

/** What a check asked: a card request says how the card was confirmed (PIN or visual check). */
type CheckRequest = { id: string; mode?: 'pin' | 'visual' };

/** The method a check is counted under, in the use counts and (as the audit's mode) in the history. */
export function checkMethod(kind: CheckKind, req: CheckRequest): UsageMethod {
  if (kind === 'numbers') return 'numbers';
  return req.mode === 'visual' ? 'card_visual' : 'card_pin';
}

const AUDIT_MODE = { card_pin: 'card', card_visual: 'card-visual', numbers: 'numbers' } as const;

/**
 * A use of the insurance check in the use counts: answered by central or the cache about a
 * patient it found — not a per-person error (status 2), not 該当資格なし (validity 4: no one
 * matched, e.g. a mistyped number). Its patient: the first result's.
 */
export function usageOf(result: CheckAnswer | undefined): { patient?: UsagePatient } | undefined {
  if (
    !result ||
    (result.source !== 'central' && result.source !== 'cache') ||
    result.status === '2' ||
    result.validity === '4'
  )
    return undefined;
  const r = result.results?.[0];
  return r?.insurerNumber
    ? {
        patient: {
          insurerNumber: r.insurerNumber,
          ...(r.symbol ? { symbol: r.symbol } : {}),
          ...(r.number ? { number: r.number } : {}),
          ...(r.branch ? { branch: r.branch } : {}),
          ...(r.birthdate ? { birthdate: r.birthdate } : {}),
        },
      }
    : {};
}

/** What a check's audit entry records as its outcome: a validity, a per-person error, or an error code. */
export function checkOutcome(result: CheckAnswer | undefined, error: unknown): string {
  if (error) return codeOf(error);
  if (result?.status === '2') return 'status:2';
  return result?.validity ? `validity:${result.validity}` : 'ok';
}

export class AuditRecorder {
  constructor(private readonly o: { store: GatewayStore; logger: Logger; metrics: GatewayMetrics }) {}

  /**
   * Appends in the background; a failure is logged, never thrown. Nobody waits for it, so it may
   * share a commit with the entries and cache writes of the next few milliseconds (deferred); its
   * time is taken now.
   */
  readonly append = (entry: AuditInput): void => {
    this.o.store.audit.append(entry, new Date(), { defer: true }).catch(
      (e: unknown) =>
        void this.o.logger.error('could not append to the audit log', {
          event: 'audit_failed',
          code: codeOf(e),
          action: entry.action,
        }),
    );
  };

  /** Runs a check, then counts it and audits it (whether it answered or threw). */
  async checked<R extends CheckAnswer>(
    kind: CheckKind,
    req: CheckRequest,
    ctx: RequestContext,
    run: () => Promise<R>,
  ): Promise<R> {
    const started = Date.now();
    try {
      const result = await run();
      this.recordCheck(kind, req, ctx, started, result);
      return result;
    } catch (e) {
      this.recordCheck(kind, req, ctx, started, undefined, e);
      throw e;
    }
  }

  private recordCheck(
    kind: CheckKind,
    req: CheckRequest,
    ctx: RequestContext,
    started: number,
    result: CheckAnswer | undefined,
    error?: unknown,
  ): void {
    const source = (result?.source ?? 'none') as CheckSource;
    const outcome = checkOutcome(result, error);
    this.o.metrics.recordCheck({
      kind,
      outcome: error ? outcome : 'ok',
      source,
      seconds: (Date.now() - started) / 1000,
    });
    const method = checkMethod(kind, req);
    // The use count (a keyed hash, a hand-off to the writer) and the audit append (hash,
    // encryption, hand-off) after the answer has been sent: neither was ever awaited, so nothing
    // changes for them but the counter's wait. The count keeps the check's time (its JST day).
    setImmediate(this.count, method, usageOf(result), Date.now());
    setImmediate(this.append, {
      kind: 'check',
      actor: ctx.client.id,
      action: `inquiry.${kind}`,
      remote: ctx.remote.slice(0, 64),
      mode: AUDIT_MODE[method],
      outcome,
      ...(source === 'central' || source === 'cache' ? { source } : {}),
      personal: { requestId: req.id },
    });
  }

  private readonly count = (method: UsageMethod, use: ReturnType<typeof usageOf>, at: number): void => {
    if (!use) return;
    this.o.store.usage.record({ method, ...use }, at).catch(
      (e: unknown) =>
        void this.o.logger.error('could not count the check in the use counts', {
          event: 'usage_failed',
          code: codeOf(e),
        }),
    );
  };
}
