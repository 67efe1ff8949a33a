/**
 * The outbox relay: replays the checks made while central could not be reached, once the line is
 * back. Oldest first, at most `maxInFlight` at a time, only while the breaker is closed. A failed
 * replay that may succeed later is retried after a full-jitter delay (or central's Retry-After,
 * whichever is longer) and only while the retry budget allows; one that never will (central
 * refused it) goes to the dead-letter list with an alert instead of looping. Nothing is removed:
 * entries older than their time-to-live are reported, and still replayed.
 *
 * What a replay *does* (which request, how its answer is compared with what the counter was told)
 * is the gateway's business: it passes `replay`. The relay only needs the outbox operations, so it
 * takes them as an interface (the gateway passes its GatewayStore).
 */
import { EventEmitter } from 'node:events';
import { fullJitter, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import type { LinkMonitor } from './link.js';
import type { RetryBudget } from './retry-budget.js';

export interface RelayEntry {
  id: number;
  idempotencyKey: string;
  kind: string;
  payload: unknown;
  createdAt: Date;
  /** attempts started, including this one */
  attempts: number;
}

export type RelayOutcome = 'done' | { retryAt: Date; error: string } | { dead: string };

export interface RelayStore {
  nextDue(limit: number, now?: Date): Promise<RelayEntry[]>;
  complete(id: number, outcome: RelayOutcome, now?: Date): Promise<void>;
  outboxStats(): { depth: number; oldestAt?: Date; dead: number; fillRatio: number };
  /** pending/inflight entries created before `before` */
  overdueCount?(before: Date): number;
}

/** Replays one entry; resolves when central's answer was handled, throws a typed error otherwise. */
export type ReplayFn = (entry: RelayEntry) => Promise<void>;

export interface RelayOptions {
  store: RelayStore;
  link: LinkMonitor;
  budget: RetryBudget;
  replay: ReplayFn;
  maxInFlight?: number;
  /** entries older than this are reported as overdue */
  ttlMs?: number;
  backoff?: BackoffOptions;
  /** how often due retries and overdue entries are looked for */
  tickMs?: number;
  random?: () => number;
}

export interface RelayEvents {
  replayed: [info: { id: number; kind: string; attempts: number; ms: number }];
  retry: [info: { id: number; kind: string; attempts: number; code: string; retryAt: Date }];
  dead: [info: { id: number; kind: string; attempts: number; code: string; message: string }];
  /** the outbox became empty after replaying */
  drained: [info: { replayed: number }];
  overdue: [info: { oldestAt: Date; ttlMs: number; count?: number }];
  /** the store failed while relaying (e.g. disk full); the relay tries again on the next tick */
  error: [error: Error];
}

/** Errors whose code means the line or central is at fault, not the entry. */
const LINE_CODES = /^CENTRAL_(UNREACHABLE|TIMEOUT|TLS_FAILED|UNAVAILABLE|AUTH_FAILED|MALFORMED|IN_FLIGHT)$/;

export class OutboxRelay extends EventEmitter<RelayEvents> {
  private readonly maxInFlight: number;
  private readonly ttlMs: number;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private inflight = 0;
  private pumping = false;
  private again = false;
  private running = false;
  private tick: NodeJS.Timeout | undefined;
  private replayedSinceEmpty = 0;
  private overdueReportedFor: number | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: RelayOptions) {
    super();
    this.maxInFlight = Math.min(5, Math.max(1, o.maxInFlight ?? 5));
    this.ttlMs = o.ttlMs ?? 7 * 24 * 3600_000;
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
    this.random = o.random ?? Math.random;
    o.link.on('state', (s) => { if (s.state !== 'down') this.kick(); });
  }

  start(): void {
    this.running = true;
    this.tick = setInterval(() => { this.kick(); this.checkOverdue(); }, this.o.tickMs ?? 1000);
    this.tick.unref();
    this.checkOverdue();
    this.kick();
  }

  /** Stops taking entries; resolves when the replays in flight have settled. */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.tick);
    if (this.inflight > 0 || this.pumping) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  get inFlight(): number {
    return this.inflight;
  }

  /** Something was queued or the line changed: look for work now. */
  kick(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.again = false;
        while (this.running && this.inflight < this.maxInFlight && this.o.link.allowRequest()) {
          const entries = await this.o.store.nextDue(this.maxInFlight - this.inflight);
          if (entries.length === 0) break;
          for (const e of entries) {
            this.inflight++;
            void this.run(e).finally(() => {
              this.inflight--;
              this.checkIdle();
              this.kick(); // a slot is free
            });
          }
        }
      } while (this.again && this.running);
    } catch (e) {
      this.emit('error', e as Error);
    } finally {
      this.pumping = false;
      this.checkIdle();
    }
  }

  private checkIdle(): void {
    if (this.inflight === 0 && !this.pumping) {
      this.idleWaiters.splice(0).forEach((f) => f());
      if (this.replayedSinceEmpty > 0 && this.running) {
        let depth = -1;
        try { depth = this.o.store.outboxStats().depth; } catch { /* store closing */ }
        if (depth === 0) {
          this.emit('drained', { replayed: this.replayedSinceEmpty });
          this.replayedSinceEmpty = 0;
        }
      }
    }
  }

  private async run(e: RelayEntry): Promise<void> {
    const isRetry = e.attempts > 1;
    if (isRetry && !this.o.budget.tryRetry()) {
      // Over budget: put it back without sending; it is tried again once first attempts refill the budget.
      await this.settle(e, { retryAt: new Date(Date.now() + this.delayFor(e.attempts)), error: 'RETRY_BUDGET' });
      return;
    }
    if (!isRetry) this.o.budget.onRequest();
    const started = performance.now();
    try {
      await this.o.replay(e);
      this.o.link.recordSuccess(performance.now() - started);
    } catch (err) {
      const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'INTERNAL';
      const details = (err as { details?: Record<string, unknown> }).details;
      // A line or central fault (even one that needs IT, like a refused login) is never the entry's fault: retry it.
      const lineFault = LINE_CODES.test(code);
      const retryable = lineFault || (err as { retryable?: unknown }).retryable === true;
      if (lineFault) this.o.link.recordFailure({ code, ...(details ? { details } : {}) });
      if (retryable) {
        const retryAfterMs = typeof details?.retryAfterMs === 'number' ? details.retryAfterMs : 0;
        const retryAt = new Date(Date.now() + Math.max(this.delayFor(e.attempts), retryAfterMs));
        await this.settle(e, { retryAt, error: code });
        this.emit('retry', { id: e.id, kind: e.kind, attempts: e.attempts, code, retryAt });
      } else {
        await this.settle(e, { dead: code });
        this.emit('dead', { id: e.id, kind: e.kind, attempts: e.attempts, code, message: (err as Error).message ?? String(err) });
      }
      return;
    }
    await this.settle(e, 'done');
    this.replayedSinceEmpty++;
    this.emit('replayed', { id: e.id, kind: e.kind, attempts: e.attempts, ms: Math.round(performance.now() - started) });
  }

  private delayFor(attempts: number): number {
    return fullJitter(attempts - 1, this.backoff, this.random);
  }

  private async settle(e: RelayEntry, outcome: RelayOutcome): Promise<void> {
    try {
      await this.o.store.complete(e.id, outcome);
    } catch (err) {
      // The entry stays inflight in the file and returns to pending at the next start: not lost.
      this.emit('error', err as Error);
    }
  }

  private checkOverdue(): void {
    let stats;
    try { stats = this.o.store.outboxStats(); } catch { return; }
    const oldest = stats.oldestAt?.getTime();
    if (oldest === undefined || Date.now() - oldest <= this.ttlMs) {
      this.overdueReportedFor = undefined;
      return;
    }
    if (this.overdueReportedFor === oldest) return; // once per oldest entry, not every tick
    this.overdueReportedFor = oldest;
    let count: number | undefined;
    try { count = this.o.store.overdueCount?.(new Date(Date.now() - this.ttlMs)); } catch { /* closing */ }
    this.emit('overdue', { oldestAt: new Date(oldest), ttlMs: this.ttlMs, ...(count !== undefined ? { count } : {}) });
  }
}
