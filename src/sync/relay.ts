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
import { fullJitter, DEFAULT_BACKOFF, type BackoffOptions } from '../core/backoff.js';
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

/** As the store's CompleteOutcome: `unsent` gives back the attempt of an entry taken but never sent. */
export type RelayOutcome = 'done' | { retryAt: Date; error: string; unsent?: true } | { dead: string };

/** `W`: the replay's own writes (the gateway's cache writes), committed with the entry's outcome. */
export interface RelayStore<W = never> {
  nextDue(limit: number, now?: Date): Promise<RelayEntry[]>;
  /**
   * Settles an inflight entry with `writes` in the same transaction (done only if they are durable
   * too), then takes up to `next` due entries (marked inflight, as nextDue): one round trip per replay.
   */
  settle(
    id: number,
    outcome: RelayOutcome,
    o: { writes?: readonly W[]; next: number },
    now?: Date,
  ): Promise<RelayEntry[]>;
  stats(): { depth: number; oldestAt?: Date; dead: number; fillRatio: number };
  /** pending/inflight entries created before `before` */
  overdueCount?(before: Date): number;
}

/**
 * Replays one entry; resolves when central's answer was handled, throws a typed error otherwise.
 * It may hand back writes to commit together with the entry's 'done', and what to do once that is
 * durable (e.g. tell subscribers).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: most replays are plain `async () => {}` functions
export type ReplayFn<W = never> = (entry: RelayEntry) => Promise<void | ReplayDone<W>>;
export interface ReplayDone<W> {
  writes?: W[];
  onSettled?: () => void;
}

export interface RelayOptions<W = never> {
  store: RelayStore<W>;
  link: LinkMonitor;
  budget: RetryBudget;
  replay: ReplayFn<W>;
  maxInFlight?: number;
  /** entries older than this are reported as overdue */
  ttlMs?: number;
  backoff?: BackoffOptions;
  /** how often due retries and overdue entries are looked for */
  tickMs?: number;
  random?: () => number;
}

export interface RelayEvents {
  /** ms: the whole replay; settleMs: of it, the commit of its outcome (with the slot's next entry) */
  replayed: [info: { id: number; kind: string; attempts: number; ms: number; settleMs: number }];
  retry: [info: { id: number; kind: string; attempts: number; code: string; retryAt: Date }];
  dead: [info: { id: number; kind: string; attempts: number; code: string; message: string }];
  /** the outbox became empty after replaying */
  drained: [info: { replayed: number }];
  overdue: [info: { oldestAt: Date; ttlMs: number; count?: number }];
  /** the store failed while relaying (e.g. disk full); the relay tries again on the next tick */
  error: [error: Error];
}

const round1 = (ms: number): number => Math.round(ms * 10) / 10;
/** the most entries a relay slot keeps taken ahead of the one it sends */
const MAX_AHEAD = 4;

/** Errors whose code means the line or central is at fault, not the entry. */
const LINE_CODES = /^CENTRAL_(UNREACHABLE|TIMEOUT|TLS_FAILED|UNAVAILABLE|AUTH_FAILED|MALFORMED|IN_FLIGHT)$/;

export class OutboxRelay<W = never> extends EventEmitter<RelayEvents> {
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

  constructor(private readonly o: RelayOptions<W>) {
    super();
    this.maxInFlight = Math.min(5, Math.max(1, o.maxInFlight ?? 5));
    this.ttlMs = o.ttlMs ?? 7 * 24 * 3600_000;
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
    this.random = o.random ?? Math.random;
    o.link.on('state', (s) => {
      if (s.state !== 'down') this.kick();
    });
  }

  start(): void {
    this.running = true;
    this.tick = setInterval(() => {
      this.kick();
      this.checkOverdue();
    }, this.o.tickMs ?? 1000);
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
      for (const f of this.idleWaiters.splice(0)) f();
      if (this.replayedSinceEmpty > 0 && this.running) {
        let depth = -1;
        try {
          depth = this.o.store.stats().depth;
        } catch {
          /* store closing */
        }
        if (depth === 0) {
          this.emit('drained', { replayed: this.replayedSinceEmpty });
          this.replayedSinceEmpty = 0;
        }
      }
    }
  }

  /**
   * One slot: at most one request to central at a time. Its entries come from the commits that
   * settle its replays (one round trip each), taken ahead: the slot sends its next request as soon
   * as central answered, while the commit of that answer (an fsync, milliseconds; tens on an SD
   * card) runs meanwhile. When the commits are slower than central the slot had to wait for one,
   * and it keeps one more taken ahead (up to MAX_AHEAD). An entry is still done only once its
   * outcome is durable; an entry taken ahead is marked inflight like any taken one (a crash
   * returns it to pending).
   */
  private async run(first: RelayEntry): Promise<void> {
    const held: RelayEntry[] = [first];
    let ahead = 1; // entries to keep taken behind the one being sent
    let coming = 0; // entries asked for by the commits still running
    let running = 0; // those commits
    let wake: (() => void) | undefined;
    const commitDone = (): Promise<void> =>
      new Promise<void>((r) => {
        wake = r;
      });
    const track = (settled: Promise<RelayEntry[]>, asked: number): void => {
      running++;
      coming += asked;
      void settled.then((taken) => {
        // never rejects
        held.push(...taken);
        running--;
        coming -= asked;
        wake?.();
      });
    };
    const putBack = async (entries: RelayEntry[]): Promise<void> => {
      // Stopped, or the line went down since they were taken: back to pending, unsent (their
      // attempt given back, so that a first attempt is not later counted as a retry).
      for (const h of entries) await this.settle(h, { retryAt: new Date(), error: 'RELAY_PAUSED', unsent: true }, 0);
    };
    let sent = 0;
    try {
      for (;;) {
        if (held.length === 0) {
          if (running === 0) break;
          if (sent > 1 && ahead < MAX_AHEAD) ahead++; // waiting for a commit: keep more ahead
          await commitDone();
          continue;
        }
        const e = held.shift()!;
        if (!this.running || !this.o.link.allowRequest()) {
          held.unshift(e);
          break;
        }
        const want = Math.max(0, ahead + 1 - held.length - coming);
        sent++;
        const { settled } = await this.runOne(e, want);
        track(settled, want);
      }
    } finally {
      while (running > 0) await commitDone();
      if (held.length > 0) await putBack(held.splice(0));
    }
  }

  /**
   * Replays one entry; resolves once central answered (or failed) with its settling commit, which
   * resolves with the entries it took (`next`).
   */
  private async runOne(e: RelayEntry, next: number): Promise<{ settled: Promise<RelayEntry[]> }> {
    const isRetry = e.attempts > 1;
    if (isRetry && !this.o.budget.tryRetry()) {
      // Over budget: put it back without sending; it is tried again once first attempts refill the budget.
      return {
        settled: this.settle(
          e,
          { retryAt: new Date(Date.now() + this.delayFor(e.attempts)), error: 'RETRY_BUDGET', unsent: true },
          next,
        ),
      };
    }
    if (!isRetry) this.o.budget.onRequest();
    const started = performance.now();
    // biome-ignore lint/suspicious/noConfusingVoidType: what a ReplayFn resolves to
    let done: void | ReplayDone<W>;
    try {
      done = await this.o.replay(e);
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
        return {
          settled: this.settle(e, { retryAt, error: code }, next, () =>
            this.emit('retry', { id: e.id, kind: e.kind, attempts: e.attempts, code, retryAt }),
          ),
        };
      }
      return {
        settled: this.settle(e, { dead: code }, next, () =>
          this.emit('dead', {
            id: e.id,
            kind: e.kind,
            attempts: e.attempts,
            code,
            message: (err as Error).message ?? String(err),
          }),
        ),
      };
    }
    const answered = performance.now();
    return {
      settled: this.settle(
        e,
        'done',
        next,
        () => {
          done?.onSettled?.();
          this.replayedSinceEmpty++;
          const end = performance.now();
          this.emit('replayed', {
            id: e.id,
            kind: e.kind,
            attempts: e.attempts,
            ms: Math.round(end - started),
            settleMs: round1(end - answered),
          });
        },
        done?.writes,
      ),
    };
  }

  private delayFor(attempts: number): number {
    return fullJitter(attempts - 1, this.backoff, this.random);
  }

  /**
   * Commits the entry's outcome (with the replay's writes), taking up to `next` entries in the same
   * round trip while the relay runs and the line allows; `onCommitted` runs once the outcome is
   * durable. Store errors are reported, never thrown: the promise resolves with what was taken.
   */
  private settle(
    e: RelayEntry,
    outcome: RelayOutcome,
    next: number,
    onCommitted?: () => void,
    writes?: W[],
  ): Promise<RelayEntry[]> {
    const take = next > 0 && this.running && this.o.link.allowRequest() ? next : 0;
    const committed = (): void => {
      // a listener's failure must not lose the entries this commit took for the slot
      try {
        onCommitted?.();
      } catch (err) {
        this.emit('error', err as Error);
      }
    };
    return this.o.store.settle(e.id, outcome, { ...(writes ? { writes } : {}), next: take }).then(
      (taken) => {
        committed();
        return taken;
      },
      (err: unknown) => {
        // Unless the store says the outcome committed (details.settled: only taking the next failed),
        // the entry stays inflight in the file and returns to pending at the next start: not lost.
        if ((err as { details?: { settled?: unknown } }).details?.settled === true) committed();
        this.emit('error', err as Error);
        return [];
      },
    );
  }

  private checkOverdue(): void {
    let stats: ReturnType<RelayStore['stats']>;
    try {
      stats = this.o.store.stats();
    } catch {
      return;
    }
    const oldest = stats.oldestAt?.getTime();
    if (oldest === undefined || Date.now() - oldest <= this.ttlMs) {
      this.overdueReportedFor = undefined;
      return;
    }
    if (this.overdueReportedFor === oldest) return; // once per oldest entry, not every tick
    this.overdueReportedFor = oldest;
    let count: number | undefined;
    try {
      count = this.o.store.overdueCount?.(new Date(Date.now() - this.ttlMs));
    } catch {
      /* closing */
    }
    this.emit('overdue', { oldestAt: new Date(oldest), ttlMs: this.ttlMs, ...(count !== undefined ? { count } : {}) });
  }
}
