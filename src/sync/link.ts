/**
 * The state of the closed line to central, learned from real traffic and from a probe, and the
 * circuit breaker it drives.
 *
 * - up: the last exchange with central succeeded in good time.
 * - degraded: central answered slowly, or one or more exchanges failed but fewer than the
 *   threshold; requests still go out, and a probe is sent at once to settle the question.
 * - down: the breaker is open: `failureThreshold` failures in a row, or central asked us to wait
 *   (Retry-After). Live checks do not wait on central at all (they are answered from the cache),
 *   the relay pauses, and only the probe goes out, with full-jitter backoff (1 s … 30 s). The
 *   first probe that succeeds closes the breaker.
 *
 * Where the gateway terminates the tunnel itself (IPsec), the line says so first: `lineDown` opens
 * the breaker at once, before any request fails, and holds it (no probe: nothing can pass the
 * tunnel) until `lineUp`, which probes at once; that probe's success closes the breaker and the relay
 * replays.
 */
import { EventEmitter } from 'node:events';
import { fullJitter, DEFAULT_BACKOFF, type BackoffOptions } from '../core/backoff.js';

export type LinkState = 'up' | 'degraded' | 'down';

export interface LinkStatus {
  state: LinkState;
  since: Date;
  /** why the state is what it is, in words for staff and logs */
  reason: string;
  consecutiveFailures: number;
  lastSuccessAt?: Date;
  lastFailureAt?: Date;
  lastFailureCode?: string;
  lastLatencyMs?: number;
  /** central asked us not to call before this time */
  retryAfterUntil?: Date;
  nextProbeAt?: Date;
}

export interface LinkOptions {
  /** one cheap exchange with central that costs it no login (a TLS handshake); throws on failure */
  probe(deadline: number): Promise<void>;
  failureThreshold?: number;
  /** an answer slower than this makes the line degraded */
  slowMs?: number;
  /** while up, probe when there was no successful traffic for this long */
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
  backoff?: BackoffOptions;
  random?: () => number;
}

/** The part of an error the monitor looks at (a CentralError fits). */
export interface LinkFailure {
  code: string;
  details?: Record<string, unknown>;
}

/** Of the budget a line failure needs: a timeout within 90 % of it (auth steps, clock) still counts. */
const FULL_BUDGET_SHARE = 0.9;

/**
 * Whether a failed exchange says the line (or central) is in trouble. Two failures say nothing:
 * - CENTRAL_IN_FLIGHT: central answered (409: the same key is still being worked on);
 * - CENTRAL_TIMEOUT on a budget the caller cut short: central not answering within a caller's
 *   150 ms is no news when a healthy answer may take up to `slowMs`. A timeout counts only when
 *   the request had (nearly) the time the line is judged by: min(slowMs, central's own timeout).
 */
export function isLineFailure(f: LinkFailure, slowMs: number): boolean {
  if (f.code === 'CENTRAL_IN_FLIGHT') return false;
  if (f.code !== 'CENTRAL_TIMEOUT') return true;
  const budget = f.details?.budgetMs;
  if (typeof budget !== 'number') return true;
  const timeout = f.details?.timeoutMs;
  const judgeMs = Math.min(slowMs, typeof timeout === 'number' ? timeout : slowMs);
  return budget >= judgeMs * FULL_BUDGET_SHARE;
}

export interface LinkEvents {
  state: [status: LinkStatus];
  /** central answered a check or a replay in `latencyMs` (not the probe's handshake): the admin page's history */
  answer: [latencyMs: number];
}

export class LinkMonitor extends EventEmitter<LinkEvents> {
  private readonly o: Required<Omit<LinkOptions, 'probe'>> & Pick<LinkOptions, 'probe'>;
  private st: LinkStatus;
  private timer: NodeJS.Timeout | undefined;
  private probeAttempt = 0;
  private probing = false;
  private running = false;
  /** the line's own account of why it is down (IPsec CHILD_SA gone); no probe while set */
  private lineHeld: string | undefined;

  constructor(opts: LinkOptions) {
    super();
    this.o = {
      failureThreshold: 3,
      slowMs: 5000,
      probeIntervalMs: 30_000,
      probeTimeoutMs: 3000,
      backoff: DEFAULT_BACKOFF,
      random: Math.random,
      ...opts,
    };
    // Until something is known the line counts as up: the first check tries central.
    this.st = { state: 'up', since: new Date(), reason: 'starting', consecutiveFailures: 0 };
  }

  start(): void {
    this.running = true;
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  status(): LinkStatus {
    return { ...this.st };
  }

  get state(): LinkState {
    return this.st.state;
  }

  /** The breaker: false while it is open (line down, or central's Retry-After not yet over). */
  allowRequest(now = Date.now()): boolean {
    if (this.st.state === 'down') return false;
    return !(this.st.retryAfterUntil && this.st.retryAfterUntil.getTime() > now);
  }

  recordSuccess(latencyMs: number): void {
    this.emit('answer', latencyMs);
    this.succeeded(latencyMs);
  }

  private succeeded(latencyMs: number): void {
    const now = new Date();
    this.st.consecutiveFailures = 0;
    this.st.lastSuccessAt = now;
    this.st.lastLatencyMs = Math.round(latencyMs);
    delete this.st.retryAfterUntil;
    // An answer that was in flight when the tunnel went down: only the line says when it is back.
    if (this.lineHeld !== undefined) return;
    this.probeAttempt = 0;
    if (latencyMs > this.o.slowMs)
      this.transition('degraded', `central answered in ${Math.round(latencyMs)} ms (slow above ${this.o.slowMs} ms)`);
    else this.transition('up', 'central answered');
    this.schedule(this.o.probeIntervalMs);
  }

  /** A failed exchange; one that says nothing about the line (see isLineFailure) changes nothing. */
  recordFailure(f: LinkFailure): void {
    if (!isLineFailure(f, this.o.slowMs)) return;
    const now = new Date();
    this.st.consecutiveFailures++;
    this.st.lastFailureAt = now;
    this.st.lastFailureCode = f.code;
    if (this.lineHeld !== undefined) return; // already down, for the line's own reason
    const retryAfterMs = typeof f.details?.retryAfterMs === 'number' ? f.details.retryAfterMs : undefined;
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      this.st.retryAfterUntil = new Date(now.getTime() + retryAfterMs);
      this.transition('down', `central asked to wait ${Math.ceil(retryAfterMs / 1000)} s (${f.code})`);
      this.schedule(retryAfterMs);
      return;
    }
    if (this.st.consecutiveFailures >= this.o.failureThreshold) {
      if (this.st.state !== 'down') this.probeAttempt = 0;
      this.transition('down', `${this.st.consecutiveFailures} failures in a row (last: ${f.code})`);
      this.schedule(fullJitter(this.probeAttempt++, this.o.backoff, this.o.random));
    } else {
      this.transition('degraded', `${this.st.consecutiveFailures} failure(s) (last: ${f.code})`);
      this.schedule(0); // settle it now rather than on the next patient
    }
  }

  /**
   * The tunnel itself went down (strongSwan's reason): the breaker opens now, before any request
   * fails, and no probe goes out until `lineUp`.
   */
  lineDown(reason: string): void {
    this.lineHeld = reason;
    clearTimeout(this.timer);
    this.timer = undefined;
    delete this.st.nextProbeAt;
    this.st.lastFailureAt = new Date();
    this.st.lastFailureCode = 'LINE_DOWN';
    this.transition('down', `line down: ${reason}`);
  }

  /** The tunnel is back: probe at once (its success closes the breaker; the relay then replays). */
  lineUp(reason: string): void {
    const wasHeld = this.lineHeld !== undefined;
    this.lineHeld = undefined;
    if (wasHeld) this.st.reason = `line up (${reason}): probing central`;
    this.probeAttempt = 0;
    this.schedule(0);
  }

  /** Probe now (e.g. staff pressed "retry" or the relay has work); no-op while a probe runs. */
  probeNow(): void {
    this.schedule(0);
  }

  private transition(state: LinkState, reason: string): void {
    const changed = state !== this.st.state;
    this.st.reason = reason;
    if (changed) {
      this.st.state = state;
      this.st.since = new Date();
    }
    if (changed) this.emit('state', this.status());
  }

  private schedule(delayMs: number): void {
    if (!this.running || this.lineHeld !== undefined) return;
    clearTimeout(this.timer);
    const notBefore = this.st.retryAfterUntil ? this.st.retryAfterUntil.getTime() - Date.now() : 0;
    const delay = Math.max(delayMs, notBefore, 0);
    this.st.nextProbeAt = new Date(Date.now() + delay);
    this.timer = setTimeout(() => void this.runProbe(), delay);
    this.timer.unref();
  }

  private async runProbe(): Promise<void> {
    if (this.probing || !this.running || this.lineHeld !== undefined) return;
    // While up with recent successful traffic there is nothing to learn.
    if (
      this.st.state === 'up' &&
      this.st.lastSuccessAt &&
      Date.now() - this.st.lastSuccessAt.getTime() < this.o.probeIntervalMs
    ) {
      this.schedule(this.o.probeIntervalMs - (Date.now() - this.st.lastSuccessAt.getTime()));
      return;
    }
    this.probing = true;
    const started = performance.now();
    try {
      await this.o.probe(Date.now() + this.o.probeTimeoutMs);
      this.probing = false;
      if (this.lineHeld !== undefined) return;
      this.succeeded(performance.now() - started);
    } catch (e) {
      this.probing = false;
      if (this.lineHeld !== undefined) return; // the line went down meanwhile: it has said why
      const code = (e as { code?: unknown }).code;
      const details = (e as { details?: Record<string, unknown> }).details;
      this.recordFailure({ code: typeof code === 'string' ? code : 'PROBE_FAILED', ...(details ? { details } : {}) });
    }
  }
}
