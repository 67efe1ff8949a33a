/**
 * A retry budget: retries may add at most `ratio` extra load on top of first attempts. Every first
 * attempt deposits `ratio` of a token, every retry spends a whole one; the bucket starts full and
 * holds at most `maxTokens`, which allows a short burst after a quiet spell. A small floor of
 * `minPerSecond` tokens keeps a queue that only has retries left from starving when no new checks
 * come in (as in Finagle's budget). Over a stretch of T seconds,
 * retries ≤ maxTokens + ratio × first attempts + minPerSecond × T.
 */
export interface RetryBudgetOptions {
  /** extra load allowed for retries (0.1 = 10 %) */
  ratio?: number;
  maxTokens?: number;
  /** tokens added per second whatever the traffic (default 1) */
  minPerSecond?: number;
  now?: () => number;
}

export interface RetryBudgetStats {
  requests: number;
  retries: number;
  refused: number;
  tokens: number;
}

export class RetryBudget {
  private readonly ratio: number;
  private readonly maxTokens: number;
  private readonly minPerSecond: number;
  private readonly now: () => number;
  private refilledAt: number;
  private tokens: number;
  private requests = 0;
  private retries = 0;
  private refused = 0;

  constructor(o: RetryBudgetOptions = {}) {
    this.ratio = o.ratio ?? 0.1;
    this.maxTokens = o.maxTokens ?? 10;
    this.minPerSecond = o.minPerSecond ?? 1;
    this.now = o.now ?? Date.now;
    this.refilledAt = this.now();
    this.tokens = this.maxTokens;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.maxTokens, this.tokens + ((t - this.refilledAt) / 1000) * this.minPerSecond);
    this.refilledAt = t;
  }

  /** A first attempt was sent. */
  onRequest(): void {
    this.requests++;
    this.refill();
    this.tokens = Math.min(this.maxTokens, this.tokens + this.ratio);
  }

  /** May a retry be sent now? Spends a token when it may. */
  tryRetry(): boolean {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.retries++;
      return true;
    }
    this.refused++;
    return false;
  }

  stats(): RetryBudgetStats {
    return {
      requests: this.requests,
      retries: this.retries,
      refused: this.refused,
      tokens: Math.round(this.tokens * 100) / 100,
    };
  }
}
