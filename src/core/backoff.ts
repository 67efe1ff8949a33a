/**
 * Full-jitter exponential backoff: a delay drawn uniformly from [0, min(cap, base · 2^attempt)).
 * Jitter spreads the retries of many gateways (and of many queued entries) over the window instead
 * of letting them hit central in lockstep when the line comes back.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, capMs: 30_000 };

/** `attempt` counts from 0 (the first retry). `random` is injectable for tests. */
export function fullJitter(
  attempt: number,
  o: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exp = Math.min(o.capMs, o.baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.floor(random() * exp);
}
