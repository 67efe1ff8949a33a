/**
 * A retry budget: retries may add at most `ratio` extra load on top of first attempts. Every first
 * attempt deposits `ratio` of a token, every retry spends a whole one; the bucket starts full and
 * holds at most `maxTokens`, which allows a short burst after a quiet spell. Over any stretch,
 * retries ≤ maxTokens + ratio × first attempts.
 */
export interface RetryBudgetOptions {
  /** extra load allowed for retries (0.1 = 10 %) */
  ratio?: number;
  maxTokens?: number;
}

export interface RetryBudgetStats { requests: number; retries: number; refused: number; tokens: number }

export class RetryBudget {
  private readonly ratio: number;
  private readonly maxTokens: number;
  private tokens: number;
  private requests = 0;
  private retries = 0;
  private refused = 0;

  constructor(o: RetryBudgetOptions = {}) {
    this.ratio = o.ratio ?? 0.1;
    this.maxTokens = o.maxTokens ?? 10;
    this.tokens = this.maxTokens;
  }

  /** A first attempt was sent. */
  onRequest(): void {
    this.requests++;
    this.tokens = Math.min(this.maxTokens, this.tokens + this.ratio);
  }

  /** May a retry be sent now? Spends a token when it may. */
  tryRetry(): boolean {
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.retries++;
      return true;
    }
    this.refused++;
    return false;
  }

  stats(): RetryBudgetStats {
    return { requests: this.requests, retries: this.retries, refused: this.refused, tokens: Math.round(this.tokens * 100) / 100 };
  }
}
